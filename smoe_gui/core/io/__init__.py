"""Files in and out: images (Pillow), model files (.npz), atomic writes and output folders.
"""

"""The Qt views: the linked stage views, training plots, the Compare view and the kernel panel.
"""

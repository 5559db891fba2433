"""The edge-aligned initialisation of Determann & Fleig: Canny, the 4-direction segment scan, "
"importance scores and DBSCAN reduction, kernel pairs across each segment."""

#: The edge method's name (``--method edge``; its registry entry is :mod:`.method`).
NAME = "edge"

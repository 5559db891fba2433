"""The segmentation-based initialisations: DBSCAN superpixels, S-SMoE (Li et al., VCIP 2023) and "
"AS-SMoE (Li et al., arXiv 2409.10101)."""

"""tile stage: per-cell tiles and image-on-cell inputs from the segmentation labels and the channels."""

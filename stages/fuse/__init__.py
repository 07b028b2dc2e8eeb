"""fuse stage: per (cell, class), one score from the cell models, image models, YOLO and image-on-cell."""

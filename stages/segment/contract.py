"""What the segment stage writes: the one place its files and table columns are declared.

Per shard folder ``<work>/segment/<fingerprint>/<split>/shard-NNNNN/``; downstream stages (tile, match,
submit) read through these artifacts.
"""

from stages.artifacts import Artifact, table

LABEL_ARRAYS = ("cells", "nuclei")
BBOX_COLUMNS = ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")  # y1/x1 exclusive
CELL_TABLE_DTYPES = {"cell_id": "int64", **{column: "int64" for column in BBOX_COLUMNS},
                     "centroid_y": "float64", "centroid_x": "float64", "area": "int64"}
CELL_TABLE_COLUMNS = tuple(CELL_TABLE_DTYPES)

LABELS = Artifact("{image_id}.npz", "arrays", "per image: uint16 (H, W) label images, 0 = background; cell k "
                  "contains nucleus k", arrays=LABEL_ARRAYS)
CELLS = table("cells.csv", "one row per cell of every image in the shard; bbox y1/x1 exclusive; centroid in "
              "pixels (y = row, x = column)", {"ID": str, **CELL_TABLE_DTYPES})
IMAGES = table("images.csv", "one row per image, including images without a cell",
               {"ID": str, "width": "int64", "height": "int64", "cells": "int64"})
CELLS_COLUMNS = CELLS.columns
IMAGES_COLUMNS = IMAGES.columns

"""What the match stage reads and writes: the one place that names its files and columns.

The output has exactly the shape of every score source the fuse stage combines (fuse.contract): one row
per cell of the segment table, ``ID, cell_id, class_0 .. class_18``.
"""

from stages.detect.contract import BOX_COLUMNS, BOXES_FILE
from stages.fuse.contract import KEY_COLUMNS, TABLE_COLUMNS, TABLE_DTYPES
from stages.segment.contract import CELLS_FILE

INPUTS = {
    "cells": f"segment stage, per shard: {CELLS_FILE} (ID, cell_id, centroid_y = row, centroid_x = column, ...)",
    "boxes": f"detect stage, per shard: {BOXES_FILE} ({', '.join(BOX_COLUMNS)}; x = column, y = row, pixel edges)",
}

# Per shard folder <work>/match/<fingerprint>/<split>/shard-NNNNN/
SCORES_FILE = "scores.csv"
SCORE_TABLE_COLUMNS = TABLE_COLUMNS  # ID, cell_id, class_0 .. class_18
SCORE_TABLE_DTYPES = TABLE_DTYPES
SCORE_KEY_COLUMNS = KEY_COLUMNS

OUTPUTS = {
    SCORES_FILE: "one row per cell of the shard's segment table, in its order; per class the highest "
    "confidence of the boxes whose centre is nearest this cell's centroid, 0 where no box",
}

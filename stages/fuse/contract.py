"""What the fuse stage reads and writes: the one place these names are spelled.

Every score source (cell models, image models, the detector after matching, image-on-cell) hands over the
same table shape, and the fused table has it too: one row per cell, KEY_COLUMNS then SCORE_COLUMNS.
"""

from __future__ import annotations

import numpy as np

from stages.classes import SCORE_COLUMNS

STAGE = "fuse"

KEY_COLUMNS: tuple[str, ...] = ("ID", "cell_id")
TABLE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *SCORE_COLUMNS)
TABLE_DTYPES = {"ID": str, "cell_id": np.int64, **{column: np.float64 for column in SCORE_COLUMNS}}

# Output, per shard folder.
SCORES_FILE = "scores.csv"

# Beside the fused table, each used source's own table (the mean over its models), for the ablation.
SOURCE_FILE = "source_{source}.csv"


def source_file(source: str) -> str:
    return SOURCE_FILE.format(source=source)

"""The one score-table shape every source hands to the fusion, and the fusion writes too.

One row per cell of the segment table: ``ID, cell_id`` then ``class_0 .. class_18`` (probabilities or
confidences in [0, 1]). Cell models, image models (broadcast to their image's cells), image-on-cell
predictions, matched detector boxes and the fused result all share it.
"""

from __future__ import annotations

import numpy as np

from stages.artifacts import table
from stages.classes import SCORE_COLUMNS

KEY_COLUMNS: tuple[str, ...] = ("ID", "cell_id")
TABLE_DTYPES = {"ID": str, "cell_id": np.int64, **{column: np.float64 for column in SCORE_COLUMNS}}
TABLE_COLUMNS: tuple[str, ...] = tuple(TABLE_DTYPES)

SCORES = table("scores.csv", "one row per cell: ID, cell_id, class_0 .. class_18", TABLE_DTYPES)

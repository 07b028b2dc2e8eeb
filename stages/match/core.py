"""Boxes to cells (SPEC 3.8): per image, each box goes to the cell whose centroid is nearest the box's
centre (1-NN on a KD-tree), and per (cell, class) the highest confidence is kept; cells without a box
score 0.

Both point sets are built as (x = column, y = row). The original notebook compared (row, column)
centroids with (column, row) box centres, which silently scrambles the assignment on non-square images;
here every point is made by :func:`centroid_points` and :func:`box_centres`, the only two places that
know the tables' column names.

Frames: the segment table's centroid is a mean of pixel indices (pixel i's centre is i), a box is in
pixel edges (pixel i spans [i, i + 1)); :func:`box_centres` moves box centres into the index frame by
subtracting half a pixel. No I/O, no Luigi.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.detect.contract import BOX_COLUMNS
from stages.scores import TABLE_COLUMNS as SCORE_TABLE_COLUMNS
from stages.scores import TABLE_DTYPES as SCORE_TABLE_DTYPES

CELL_COLUMNS = ("ID", "cell_id", "centroid_y", "centroid_x")


def _require(table: pd.DataFrame, columns, name: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{name} table: missing column(s) {missing} (has {list(table.columns)})")


def centroid_points(cells: pd.DataFrame) -> np.ndarray:
    """``(N, 2)`` cell centroids as (x = column, y = row), pixel-index frame."""
    return np.column_stack([cells["centroid_x"].to_numpy(np.float64), cells["centroid_y"].to_numpy(np.float64)])


def box_centres(boxes: pd.DataFrame) -> np.ndarray:
    """``(M, 2)`` box centres as (x = column, y = row), moved from pixel edges to the pixel-index frame."""
    x = (boxes["x0"].to_numpy(np.float64) + boxes["x1"].to_numpy(np.float64)) / 2 - 0.5
    y = (boxes["y0"].to_numpy(np.float64) + boxes["y1"].to_numpy(np.float64)) / 2 - 0.5
    return np.column_stack([x, y])


def nearest_cells(centroids: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index into ``centroids`` of the nearest centroid of each centre (ties: the lower index)."""
    if len(centres) == 0:
        return np.zeros(0, dtype=np.int64)
    _, index = cKDTree(centroids).query(centres, k=1)
    return np.asarray(index, dtype=np.int64).reshape(-1)


def match_scores(cells: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    """One row per row of ``cells`` (same order): ``ID, cell_id, class_0 .. class_18``.

    ``cells`` needs ``ID, cell_id, centroid_y, centroid_x`` (the segment table); ``boxes`` needs
    ``ID, class, confidence, x0, y0, x1, y1`` (the detect table, original-image pixels). Boxes of an
    image without cells are dropped; an image without boxes gets zeros.
    """
    _require(cells, CELL_COLUMNS, "cells")
    _require(boxes, BOX_COLUMNS, "boxes")
    cells = cells.reset_index(drop=True)
    cell_ids = cells["ID"].astype(str).to_numpy()
    scores = np.zeros((len(cells), NUM_CLASSES), dtype=np.float64)
    if len(boxes) and len(cells):
        classes = boxes["class"].to_numpy()
        if not np.all(np.equal(np.mod(classes, 1), 0)) or classes.min() < 0 or classes.max() >= NUM_CLASSES:
            raise ValueError(f"box classes must be integers in 0..{NUM_CLASSES - 1}")
        confidences = boxes["confidence"].to_numpy(np.float64)
        if np.any(~np.isfinite(confidences)) or confidences.min() < 0 or confidences.max() > 1:
            raise ValueError("box confidences must lie in [0, 1]")
        classes = classes.astype(np.int64)
        rows_of = pd.Series(np.arange(len(cells))).groupby(cell_ids).indices
        centroids = centroid_points(cells)
        centres = box_centres(boxes)
        box_rows_of = pd.Series(np.arange(len(boxes))).groupby(boxes["ID"].astype(str).to_numpy()).indices
        for image_id, box_rows in box_rows_of.items():
            cell_rows = rows_of.get(image_id)
            if cell_rows is None:
                continue
            nearest = cell_rows[nearest_cells(centroids[cell_rows], centres[box_rows])]
            np.maximum.at(scores, (nearest, classes[box_rows]), confidences[box_rows])
    table = pd.DataFrame(scores, columns=list(SCORE_COLUMNS))
    table.insert(0, "cell_id", cells["cell_id"].to_numpy(np.int64))
    table.insert(0, "ID", cell_ids)
    return table[list(SCORE_TABLE_COLUMNS)].astype(SCORE_TABLE_DTYPES)

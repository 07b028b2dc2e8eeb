"""Label-image helpers shared by every backend: the id contract, resizing, and the per-cell table."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from stages.segment.contract import CELL_TABLE_COLUMNS

LABEL_DTYPE = np.uint16


def consistent_labels(cells: np.ndarray, nuclei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells and nuclei with matching ids 1..N: nucleus k lies inside cell k, and a cell without a nucleus
    is dropped (downstream stages and the metric count cells, so a nucleus-less blob would be a false cell)."""
    cells = np.asarray(cells)
    nuclei_inside = (np.asarray(nuclei) > 0) & (cells > 0)
    nucleated = np.flatnonzero(np.bincount(cells[nuclei_inside].ravel(), minlength=int(cells.max(initial=0)) + 1))
    if len(nucleated) > np.iinfo(LABEL_DTYPE).max:
        raise ValueError(f"{len(nucleated)} cells do not fit a {np.dtype(LABEL_DTYPE).name} label image")
    new_id = np.zeros(int(cells.max(initial=0)) + 1, dtype=LABEL_DTYPE)
    new_id[nucleated] = np.arange(1, len(nucleated) + 1)
    cells = new_id[cells]
    return cells, np.where(nuclei_inside, cells, 0).astype(LABEL_DTYPE)


def resize_labels(labels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A label image resampled to ``rows x cols`` by nearest neighbour (no id is ever blended).

    cv2 takes the size as (width, height) = (cols, rows); passing (rows, cols) transposes non-square
    images, the bug hpacellseg itself has. INTER_NEAREST_EXACT samples pixel centres, so a 4x
    up-sampling does not shift the labels by half a pixel the way INTER_NEAREST does.
    """
    if labels.shape[:2] == (rows, cols):
        return labels
    return cv2.resize(labels, (cols, rows), interpolation=cv2.INTER_NEAREST_EXACT)


def cell_table(cells: np.ndarray) -> pd.DataFrame:
    """One row per cell: id, bounding box (y1/x1 exclusive), centroid (row = y, column = x), area in pixels."""
    props = regionprops_table(np.asarray(cells), properties=("label", "bbox", "centroid", "area"))
    table = pd.DataFrame(
        {
            "cell_id": props["label"],
            "bbox_y0": props["bbox-0"],
            "bbox_x0": props["bbox-1"],
            "bbox_y1": props["bbox-2"],
            "bbox_x1": props["bbox-3"],
            "centroid_y": props["centroid-0"],
            "centroid_x": props["centroid-1"],
            "area": props["area"],
        }
    )
    integers = [column for column in CELL_TABLE_COLUMNS if not column.startswith("centroid")]
    return table.astype({column: np.int64 for column in integers})[list(CELL_TABLE_COLUMNS)]


def best_iou(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per truth cell (ids 1..max, in order), the IoU of the predicted cell that overlaps it best (0 if none)."""
    truth = np.asarray(truth, dtype=np.int64).ravel()
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    n_truth, n_predicted = int(truth.max(initial=0)) + 1, int(predicted.max(initial=0)) + 1
    overlap = np.bincount(truth * n_predicted + predicted, minlength=n_truth * n_predicted)
    overlap = overlap.reshape(n_truth, n_predicted)
    union = overlap.sum(axis=1)[:, None] + overlap.sum(axis=0)[None, :] - overlap
    iou = overlap[1:, 1:] / np.maximum(union[1:, 1:], 1)
    return iou.max(axis=1, initial=0.0)

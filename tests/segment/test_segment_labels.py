"""The label contract helpers and the per-cell table, on hand-made label images."""

from __future__ import annotations

import numpy as np
import pytest

from stages.segment.contract import CELL_TABLE_COLUMNS
from stages.segment.labels import best_iou, cell_table, consistent_labels, resize_labels


def test_cell_table_exact_boxes_centroids_and_areas():
    cells = np.zeros((10, 20), np.uint16)
    cells[1:4, 2:8] = 1  # 3 rows x 6 columns
    cells[5:10, 15:20] = 2  # touches the bottom and right edges
    cells[7, 3] = 3  # a single pixel
    table = cell_table(cells)
    assert tuple(table.columns) == CELL_TABLE_COLUMNS
    assert table.to_dict("records") == [
        {"cell_id": 1, "bbox_y0": 1, "bbox_x0": 2, "bbox_y1": 4, "bbox_x1": 8,
         "centroid_y": 2.0, "centroid_x": 4.5, "area": 18},
        {"cell_id": 2, "bbox_y0": 5, "bbox_x0": 15, "bbox_y1": 10, "bbox_x1": 20,
         "centroid_y": 7.0, "centroid_x": 17.0, "area": 25},
        {"cell_id": 3, "bbox_y0": 7, "bbox_x0": 3, "bbox_y1": 8, "bbox_x1": 4,
         "centroid_y": 7.0, "centroid_x": 3.0, "area": 1},
    ]


def test_cell_table_of_an_empty_image_has_the_columns_and_no_row():
    table = cell_table(np.zeros((8, 8), np.uint16))
    assert tuple(table.columns) == CELL_TABLE_COLUMNS
    assert table.empty


def test_consistent_labels_drop_cells_without_nucleus_and_renumber():
    cells = np.zeros((6, 12), np.int32)
    cells[:, 0:4], cells[:, 4:8], cells[:, 8:12] = 3, 7, 9
    nuclei = np.zeros_like(cells)
    nuclei[2:4, 1:3] = 1  # in cell 3
    nuclei[2:4, 9:11] = 5  # in cell 9; cell 7 has none
    out_cells, out_nuclei = consistent_labels(cells, nuclei)
    assert out_cells.dtype == out_nuclei.dtype == np.uint16
    assert np.array_equal(np.unique(out_cells), [0, 1, 2])
    assert (out_cells[:, 4:8] == 0).all()
    assert (out_nuclei[2:4, 1:3] == 1).all() and (out_nuclei[2:4, 9:11] == 2).all()


def test_resize_labels_is_nearest_and_keeps_orientation():
    labels = np.zeros((4, 8), np.uint16)
    labels[:, :2] = 1
    labels[:2, 6:] = 2
    big = resize_labels(labels, 40, 80)
    assert big.shape == (40, 80)
    assert set(np.unique(big)) == {0, 1, 2}
    assert (big[:, :20] == 1).all() and (big[:20, 60:] == 2).all() and (big[20:, 60:] == 0).all()


def test_best_iou_per_truth_cell():
    truth = np.zeros((10, 10), np.uint16)
    truth[:, :5], truth[:, 5:] = 1, 2
    predicted = np.zeros_like(truth)
    predicted[:, :5] = 4  # exact
    predicted[:5, 5:] = 1  # half of truth cell 2
    assert best_iou(truth, predicted) == pytest.approx([1.0, 0.5])
    assert best_iou(truth, np.zeros_like(truth)) == pytest.approx([0.0, 0.0])

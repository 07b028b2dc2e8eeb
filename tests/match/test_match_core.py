"""Boxes to cells on hand-made boxes and centroids (SPEC 3.8), including the non-square guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.detect import core as detect_core
from stages.match import core
from stages.scores import TABLE_COLUMNS
from stages.segment.labels import cell_table


def cells(rows):
    """rows: (ID, cell_id, centroid_y = row, centroid_x = column)."""
    return pd.DataFrame(rows, columns=["ID", "cell_id", "centroid_y", "centroid_x"])


def box(image_id, cls, conf, x, y, half=4.0):
    """A box centred on pixel (x = column, y = row), in pixel edges (the centre pixel spans [x, x+1))."""
    cx, cy = x + 0.5, y + 0.5
    return (image_id, cls, conf, cx - half, cy - half, cx + half, cy + half)


def boxes(rows):
    return pd.DataFrame(rows, columns=["ID", "class", "confidence", "x0", "y0", "x1", "y1"])


def score(table, image_id, cell_id, cls):
    row = table[(table["ID"] == image_id) & (table["cell_id"] == cell_id)]
    assert len(row) == 1
    return float(row[f"class_{cls}"].iloc[0])


def test_output_has_the_score_table_shape_of_every_source():
    table = core.match_scores(cells([("a", 1, 10, 10)]), boxes([box("a", 3, 0.5, 10, 10)]))
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["cell_id"].dtype == np.int64
    assert all(table[column].dtype == np.float64 for column in SCORE_COLUMNS)


def test_two_boxes_on_one_cell_keep_the_larger_confidence():
    table = core.match_scores(
        cells([("a", 1, 10, 10), ("a", 2, 40, 40)]),
        boxes([box("a", 5, 0.3, 11, 9), box("a", 5, 0.8, 9, 11), box("a", 5, 0.1, 10, 10),
               box("a", 7, 0.2, 12, 12)]),
    )
    assert score(table, "a", 1, 5) == pytest.approx(0.8)
    assert score(table, "a", 1, 7) == pytest.approx(0.2)
    assert score(table, "a", 2, 5) == 0.0


def test_a_cell_with_no_box_scores_zero_in_every_class():
    table = core.match_scores(cells([("a", 1, 10, 10), ("a", 2, 90, 90)]), boxes([box("a", 0, 0.9, 12, 8)]))
    assert score(table, "a", 1, 0) == pytest.approx(0.9)
    far = table[table["cell_id"] == 2][list(SCORE_COLUMNS)].to_numpy()
    assert np.all(far == 0.0)


def test_an_image_with_no_boxes_keeps_its_cells_with_all_zeros():
    table = core.match_scores(
        cells([("a", 1, 10, 10), ("b", 1, 10, 10), ("b", 2, 20, 20)]),
        boxes([box("a", 2, 0.7, 10, 10)]),
    )
    assert list(zip(table["ID"], table["cell_id"])) == [("a", 1), ("b", 1), ("b", 2)]
    assert np.all(table[table["ID"] == "b"][list(SCORE_COLUMNS)].to_numpy() == 0.0)
    assert score(table, "a", 1, 2) == pytest.approx(0.7)


def test_no_boxes_at_all_gives_zeros_for_every_cell():
    table = core.match_scores(cells([("a", 1, 10, 10), ("b", 3, 5, 5)]), boxes([]))
    assert len(table) == 2 and np.all(table[list(SCORE_COLUMNS)].to_numpy() == 0.0)


def test_boxes_never_cross_images_and_boxes_of_cell_less_images_are_dropped():
    # Image b's only cell sits exactly where image a's box is; the box must still go to a's far cell.
    table = core.match_scores(
        cells([("a", 1, 90, 90), ("b", 1, 10, 10)]),
        boxes([box("a", 4, 0.6, 10, 10), box("ghost", 4, 0.9, 10, 10)]),
    )
    assert score(table, "a", 1, 4) == pytest.approx(0.6)
    assert score(table, "b", 1, 4) == 0.0


def test_rows_follow_the_cell_table_order():
    given = cells([("b", 2, 5, 5), ("a", 7, 1, 1), ("b", 1, 50, 50)])
    table = core.match_scores(given, boxes([box("b", 1, 0.4, 50, 50)]))
    assert list(zip(table["ID"], table["cell_id"])) == [("b", 2), ("a", 7), ("b", 1)]
    assert score(table, "b", 1, 1) == pytest.approx(0.4)


def test_non_square_image_uses_x_as_column_and_y_as_row():
    """A 60-row x 300-column image. The box centred at column 250, row 10 belongs to cell A (row 10,
    column 250). The original notebook's bug, comparing (row, column) centroids with (column, row) box
    centres, would give it to cell B: |(10, 250) - (250, 10)| = 339 but |(50, 40) - (250, 10)| = 202."""
    table = core.match_scores(
        cells([("wide", 1, 10, 250), ("wide", 2, 50, 40), ("wide", 3, 30, 150)]),
        boxes([box("wide", 9, 0.75, x=250, y=10), box("wide", 1, 0.5, x=40, y=50)]),
    )
    assert score(table, "wide", 1, 9) == pytest.approx(0.75)
    assert score(table, "wide", 2, 9) == 0.0
    assert score(table, "wide", 2, 1) == pytest.approx(0.5)
    assert score(table, "wide", 3, 9) == 0.0


def test_non_square_end_to_end_from_a_label_image_through_detector_frame_boxes():
    """Cells of a 90 x 260 label image -> the segment cell table; the detector "sees" each cell's box in
    its 128-px frame (44 x 128), the box goes back to original pixels and is matched: every cell gets
    exactly its own class. A transposition anywhere (label image, resize, box scaling, matching) breaks it."""
    labels = np.zeros((90, 260), dtype=np.uint16)
    rectangles = {1: (5, 10, 30, 60), 2: (50, 20, 85, 70), 3: (10, 120, 40, 250), 4: (55, 150, 88, 200),
                  5: (60, 215, 80, 255)}
    for cell_id, (y0, x0, y1, x1) in rectangles.items():
        labels[y0:y1, x0:x1] = cell_id
    table = cell_table(labels).assign(ID="img")
    detector_hw = detect_core.detector_shape(*labels.shape, 128)
    assert detector_hw == (44, 128)
    sy, sx = detector_hw[0] / labels.shape[0], detector_hw[1] / labels.shape[1]
    in_detector = np.array([[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for (y0, x0, y1, x1) in rectangles.values()])
    original = detect_core.boxes_to_original(in_detector, detector_hw, labels.shape)
    np.testing.assert_allclose(original, [[x0, y0, x1, y1] for (y0, x0, y1, x1) in rectangles.values()], atol=1e-9)
    classes = np.array(list(rectangles)) + 2  # cell k shows class k + 2
    detected = detect_core.boxes_table("img", original, classes, np.full(len(classes), 0.9))
    scores = core.match_scores(table, detected)
    for cell_id in rectangles:
        row = scores[scores["cell_id"] == cell_id][list(SCORE_COLUMNS)].to_numpy()[0]
        assert row[cell_id + 2] == pytest.approx(0.9)
        assert np.count_nonzero(row) == 1


def test_bad_boxes_fail_loudly():
    good = cells([("a", 1, 10, 10)])
    with pytest.raises(ValueError, match="classes"):
        core.match_scores(good, boxes([box("a", NUM_CLASSES, 0.5, 10, 10)]))
    with pytest.raises(ValueError, match="confidences"):
        core.match_scores(good, boxes([box("a", 0, 1.5, 10, 10)]))
    with pytest.raises(ValueError, match="missing column"):
        core.match_scores(good.drop(columns=["centroid_x"]), boxes([]))


def test_many_images_vectorised_agrees_with_a_brute_force_reference():
    rng = np.random.default_rng(7)
    cell_rows, box_rows = [], []
    for image in range(6):
        height, width = rng.integers(50, 400, 2)
        for cell_id in range(1, rng.integers(0, 12) + 1):
            cell_rows.append((f"im{image}", cell_id, rng.uniform(0, height), rng.uniform(0, width)))
        for _ in range(rng.integers(0, 40)):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            box_rows.append((f"im{image}", int(rng.integers(0, NUM_CLASSES)), float(rng.uniform(0, 1)),
                             x - 3, y - 5, x + 3, y + 5))
    given, detected = cells(cell_rows), boxes(box_rows)
    table = core.match_scores(given, detected)
    expected = np.zeros((len(given), NUM_CLASSES))
    for _, b in detected.iterrows():
        candidates = given.index[given["ID"] == b["ID"]]
        if len(candidates) == 0:
            continue
        x, y = (b["x0"] + b["x1"]) / 2 - 0.5, (b["y0"] + b["y1"]) / 2 - 0.5
        distances = [np.hypot(given.at[i, "centroid_x"] - x, given.at[i, "centroid_y"] - y) for i in candidates]
        nearest = candidates[int(np.argmin(distances))]
        expected[nearest, b["class"]] = max(expected[nearest, b["class"]], b["confidence"])
    np.testing.assert_allclose(table[list(SCORE_COLUMNS)].to_numpy(), expected)

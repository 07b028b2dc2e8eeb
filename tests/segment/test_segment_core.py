"""segment_shard with a fake segmenter: tables, order, one label image handed out at a time."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest

from stages.segment.contract import CELLS_COLUMNS, IMAGES_COLUMNS
from stages.segment.core import cell_table, segment_shard

SHAPES = {"wide": (20, 50), "empty": (16, 16), "tall": (40, 24)}


def fake_segmenter(field):
    """Cells are the field's red plane's values (each value one cell), nuclei their top-left pixel."""
    cells = field[..., 0].astype(np.uint16)
    nuclei = np.zeros_like(cells)
    for cell_id in np.unique(cells[cells > 0]):
        rows, cols = np.nonzero(cells == cell_id)
        nuclei[rows[0], cols[0]] = cell_id
    return cells, nuclei


def load_field(image_id):
    field = np.zeros((*SHAPES[image_id], 4), np.uint8)
    if image_id == "wide":
        field[2:10, 3:20, 0], field[12:18, 30:49, 0] = 1, 2
    elif image_id == "tall":
        field[5:30, 2:20, 0] = 1
    return field


def test_tables_and_label_images_of_a_shard():
    saved, live, messages = [], [], []

    def save_labels(image_id, cells, nuclei):
        assert all(ref() is None for ref in live), "an earlier label image is still held"
        saved.append((image_id, cells.copy(), nuclei.copy()))
        live.append(weakref.ref(cells))

    cells_table, images_table = segment_shard(["wide", "empty", "tall"], load_field, fake_segmenter, save_labels,
                                              lambda message, percent: messages.append((message, percent)))
    assert [image_id for image_id, _, _ in saved] == ["wide", "empty", "tall"]
    for image_id, cells, nuclei in saved:
        expected_cells, expected_nuclei = fake_segmenter(load_field(image_id))
        assert np.array_equal(cells, expected_cells) and np.array_equal(nuclei, expected_nuclei)
    assert tuple(cells_table.columns) == CELLS_COLUMNS
    assert cells_table[["ID", "cell_id"]].values.tolist() == [["wide", 1], ["wide", 2], ["tall", 1]]
    expected = pd.concat([cell_table(fake_segmenter(load_field(i))[0]).assign(ID=i)[list(CELLS_COLUMNS)]
                          for i in ("wide", "tall")], ignore_index=True)
    pd.testing.assert_frame_equal(cells_table, expected)
    assert tuple(images_table.columns) == IMAGES_COLUMNS
    assert images_table.values.tolist() == [["wide", 50, 20, 2], ["empty", 16, 16, 0], ["tall", 24, 40, 1]]
    assert messages == [("wide: image 1/3", 0), ("empty: image 2/3", 33), ("tall: image 3/3", 66)]


def test_an_empty_shard_gives_tables_with_their_columns():
    cells_table, images_table = segment_shard([], load_field, fake_segmenter, lambda *args: None)
    assert cells_table.empty and tuple(cells_table.columns) == CELLS_COLUMNS
    assert images_table.empty and tuple(images_table.columns) == IMAGES_COLUMNS


def test_a_failing_image_stops_the_shard_before_its_labels_are_saved():
    saved = []

    def segmenter(field):
        if field.shape[:2] == SHAPES["tall"]:
            raise RuntimeError("backend failed")
        return fake_segmenter(field)
    with pytest.raises(RuntimeError, match="backend failed"):
        segment_shard(["wide", "tall"], load_field, segmenter, lambda image_id, *_: saved.append(image_id))
    assert saved == ["wide"]

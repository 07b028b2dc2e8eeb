"""A tile shard assembled from in-memory fields: order, index, which images are read, and errors."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest

from stages.segment.labels import cell_table
from stages.tile.contract import INDEX_COLUMNS
from stages.tile.core import cell_tiles, image_on_cell, tile_shard


def labels_with(shape, boxes):
    image = np.zeros(shape, np.uint16)
    for index, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        image[r0:r1, c0:c1] = index
    return image


LABELS = {
    "a": labels_with((40, 60), [(2, 20, 3, 30), (22, 38, 30, 58)]),
    "b": np.zeros((30, 30), np.uint16),  # no cell: never read
    "c": labels_with((50, 36), [(5, 45, 4, 30)]),
}
FIELDS = {image_id: np.random.default_rng(len(image_id) + index).integers(1, 256, (*labels.shape, 4), dtype=np.uint8)
          for index, (image_id, labels) in enumerate(LABELS.items())}


def shard_cells(order=("a", "c")) -> pd.DataFrame:
    tables = [cell_table(LABELS[image_id]).assign(ID=image_id) for image_id in order]
    return pd.concat(tables, ignore_index=True)


class Loader:
    """Hands out fresh copies and checks the previous field was let go before the next read."""

    def __init__(self):
        self.calls, self.previous = [], None

    def __call__(self, image_id):
        assert self.previous is None or self.previous() is None, "two fields in memory at once"
        self.calls.append(image_id)
        field = FIELDS[image_id].copy()
        self.previous = weakref.ref(field)
        return field, LABELS[image_id].copy()


def test_shard_rows_follow_the_images_and_equal_the_per_image_functions():
    load, messages = Loader(), []
    tiles, on_cell, index = tile_shard(["c", "b", "a"], shard_cells(), load, 16, 24,
                                       progress=lambda message, percent: messages.append((message, percent)))
    assert load.calls == ["c", "a"]  # image order of the shard, b (no cells) never read
    assert tuple(index.columns) == INDEX_COLUMNS
    assert index.values.tolist() == [["c", 1], ["a", 1], ["a", 2]]
    assert tiles.shape == (3, 16, 16, 3) and on_cell.shape == (3, 24, 24) and tiles.dtype == on_cell.dtype == np.uint8
    assert np.array_equal(tiles[0], cell_tiles(FIELDS["c"], LABELS["c"], [1], 16)[0])
    assert np.array_equal(tiles[1:], cell_tiles(FIELDS["a"], LABELS["a"], [1, 2], 16))
    assert np.array_equal(on_cell[1:], image_on_cell(FIELDS["a"][..., 1], LABELS["a"], [1, 2], 24))  # green
    assert messages == [("c: 1 cell(s), image 1/3", 33), ("b: 0 cell(s), image 2/3", 66),
                        ("a: 2 cell(s), image 3/3", 100)]


def test_the_cell_table_sets_each_images_cell_order_and_other_images_are_ignored():
    cells = shard_cells()
    reordered = pd.concat([cells.iloc[[1, 0, 2]], cell_table(LABELS["a"]).assign(ID="elsewhere")])
    load = Loader()
    tiles, _, index = tile_shard(["a"], reordered, load, 8, 8)
    assert index.values.tolist() == [["a", 2], ["a", 1]] and load.calls == ["a"]
    assert np.array_equal(tiles, cell_tiles(FIELDS["a"], LABELS["a"], [2, 1], 8))


def test_a_shard_without_cells_reads_nothing():
    load = Loader()
    tiles, on_cell, index = tile_shard(["b"], shard_cells().iloc[:0], load, 8, 12)
    assert load.calls == [] and tiles.shape == (0, 8, 8, 3) and on_cell.shape == (0, 12, 12)
    assert index.empty and tuple(index.columns) == INDEX_COLUMNS


def test_a_label_image_that_disagrees_with_its_field_names_the_image():
    def load(image_id):
        field = FIELDS[image_id]
        return (field[:-1] if image_id == "c" else field), LABELS[image_id]  # c's field lost a row
    with pytest.raises(ValueError, match=r"^image c: field must be uint8"):
        tile_shard(["a", "c"], shard_cells(), load, 8, 8)

"""The Tile task on hand-made segment outputs: index order, sizes from the profile, images without cells."""

from __future__ import annotations

import cv2
import luigi
import numpy as np
import pandas as pd
import pytest

from stages import Segment, Tile, storage
from stages.classes import CHANNELS
from stages.segment import contract as segment_contract
from stages.segment.labels import cell_table
from stages.context import Upstream
from stages.tile import contract
from stages.tile.core import cell_tiles, image_on_cell
from stages.zoo import get_profile


def labelled(height: int, width: int, boxes) -> np.ndarray:
    cells = np.zeros((height, width), np.uint16)
    for cell_id, (rows, cols) in enumerate(boxes, start=1):
        cells[rows, cols] = cell_id
    return cells


# Image "b" has no cell: it is read by nobody and adds no row. "a" is wide, "c" tall, with border cells.
IMAGES = {
    "a": labelled(60, 100, [(slice(0, 20), slice(80, 100)), (slice(30, 60), slice(10, 40))]),
    "b": labelled(40, 40, []),
    "c": labelled(50, 30, [(slice(5, 45), slice(0, 12))]),
}


@pytest.fixture
def segmented(tmp_path, pipeline_settings):
    """Channel PNGs and a finished Segment shard written by hand, so Tile is the only task left to run."""
    data = tmp_path / "data"
    (data / "test").mkdir(parents=True)
    fields = {}
    for image_id, cells in IMAGES.items():
        fields[image_id] = np.random.default_rng(len(fields)).integers(0, 256, (*cells.shape, 4), dtype=np.uint8)
        for plane, channel in enumerate(CHANNELS):
            cv2.imwrite(str(data / "test" / f"{image_id}_{channel}.png"), fields[image_id][..., plane])
    pipeline_settings(input=str(data), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    folder = Segment(split="test", shard=0).folder()
    tables = []
    for image_id, cells in IMAGES.items():
        segment_contract.LABELS.write(folder, (cells, cells), image_id=image_id)
        tables.append(cell_table(cells).assign(ID=image_id))
    cells_table = pd.concat(tables)[list(segment_contract.CELLS_COLUMNS)]
    segment_contract.CELLS.write(folder, cells_table)
    images_table = pd.DataFrame(
        [(image_id, cells.shape[1], cells.shape[0], int(cells.max())) for image_id, cells in IMAGES.items()],
        columns=list(segment_contract.IMAGES_COLUMNS),
    )
    segment_contract.IMAGES.write(folder, images_table)
    storage.mark_done(folder, {"ids": sorted(IMAGES)})
    return fields


def load_tiles(task: Tile) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A tile shard's three artifacts, read as downstream tasks read an input: through the machinery."""
    shard = Upstream(task)
    return shard.read(contract.TILES), shard.read(contract.IMAGE_ON_CELL), shard.read(contract.INDEX)


def check_shard(task: Tile, fields: dict[str, np.ndarray]) -> None:
    profile = get_profile("demo")
    tiles, on_cell, index = load_tiles(task)
    assert list(index.columns) == list(contract.INDEX_COLUMNS)
    assert list(index.itertuples(index=False, name=None)) == [("a", 1), ("a", 2), ("c", 1)]
    assert tiles.shape == (3, profile.tile_size, profile.tile_size, len(contract.TILE_CHANNELS))
    size = profile.image_on_cell.input_size
    assert on_cell.shape == (3, size, size)
    assert tiles.dtype == on_cell.dtype == contract.ARRAY_DTYPE
    for image_id, rows in index.groupby("ID"):
        ids, cells, field = rows["cell_id"].tolist(), IMAGES[image_id], fields[image_id]
        assert np.array_equal(tiles[rows.index], cell_tiles(field, cells, ids, profile.tile_size))
        assert np.array_equal(on_cell[rows.index], image_on_cell(field[..., 1], cells, ids, size))


def test_tile_shard_through_luigi_and_without_a_worker(segmented):
    task = Tile(split="test", shard=0)
    assert luigi.build([task], local_scheduler=True, workers=1, log_level="WARNING")
    check_shard(task, segmented)
    storage.remove(task.folder())
    task.run()  # as stages.runstage does inside a container: no Luigi worker, no progress callbacks
    check_shard(task, segmented)


def test_a_segment_shard_that_lacks_an_image_of_its_rows_is_an_error_naming_both(segmented):
    folder = Segment(split="test", shard=0).folder()
    held = sorted(IMAGES)[1:]
    storage.mark_done(folder, {"ids": held})  # as a shard made from other rows would be
    with pytest.raises(ValueError) as caught:
        Tile(split="test", shard=0).run()
    message = str(caught.value)
    assert folder in message and "shard 0 of test" in message
    assert f"missing {sorted(IMAGES)[:1]}" in message and "not in the shard none" in message
    assert not storage.exists(Tile(split="test", shard=0).folder())


def test_reading_an_unfinished_shard_fails(segmented):
    task = Tile(split="test", shard=0)
    storage.write_bytes(contract.TILES.uri(task.folder()), b"")  # a crashed attempt's leftover, no marker
    with pytest.raises(storage.ArtifactNotFound, match=storage.SUCCESS_MARKER):
        load_tiles(task)

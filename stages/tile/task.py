"""Luigi tasks: per-cell tiles and image-on-cell inputs, one shard at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CHANNELS
from stages.config import pipeline
from stages.fields import read_field
from stages.manifest.task import Manifest, load_shard, split_folder
from stages.segment import contract as segment_contract
from stages.segment.task import Segment, read_labels, read_shard_cells
from stages.tasking import AllShards, ShardTask, StageTask
from stages.tile import contract, core
from stages.zoo import get_profile

GREEN = CHANNELS.index("green")


class Tile(ShardTask):
    stage = "tile"

    def content_settings(self) -> dict:
        profile = get_profile(pipeline().profile)
        return {"tile_size": profile.tile_size, "image_on_cell_size": profile.image_on_cell.input_size}

    def segment(self) -> Segment:
        return Segment(split=self.split, shard=self.shard)

    def upstream(self) -> list[StageTask]:
        return [Manifest(split=self.split), self.segment()]  # the manifest names each image's channel files

    def fill(self, folder: str) -> None:
        sizes = self.content_settings()
        tile_size, on_cell_size = sizes["tile_size"], sizes["image_on_cell_size"]
        images = load_shard(self.split, self.shard).to_dict("records")
        labels_folder = self.segment().folder()
        cells = read_shard_cells(labels_folder)
        per_image = dict(tuple(cells.groupby("ID", sort=False)))
        cell_ids = {image_id: group["cell_id"].tolist() for image_id, group in per_image.items()}
        # The segment table's boxes spare a pass over each label image per output (find_objects)
        boxes = {image_id: core.boxes_from_bounds(group[list(segment_contract.BBOX_COLUMNS)].to_numpy())
                 for image_id, group in per_image.items()}
        index = pd.DataFrame(
            [(image["ID"], cell_id) for image in images for cell_id in cell_ids.get(image["ID"], [])],
            columns=list(contract.INDEX_COLUMNS),
        )
        # Filled image by image: a shard's fields never sit in memory together, only its small outputs.
        tiles = np.empty((len(index), tile_size, tile_size, len(contract.TILE_CHANNELS)), contract.ARRAY_DTYPE)
        on_cell = np.empty((len(index), on_cell_size, on_cell_size), contract.ARRAY_DTYPE)
        start = 0
        for number, image in enumerate(images, start=1):
            image_id, ids = image["ID"], cell_ids.get(image["ID"], [])
            self.progress(f"{image_id}: {len(ids)} cell(s), image {number}/{len(images)}", 100 * number // len(images))
            if not ids:
                continue
            field = read_field(
                split_folder(self.split), image_id, {channel: image[channel] for channel in CHANNELS}
            )
            labels, _ = read_labels(labels_folder, image_id)
            stop = start + len(ids)
            try:
                tiles[start:stop] = core.cell_tiles(field, labels, ids, tile_size, boxes[image_id])
                on_cell[start:stop] = core.image_on_cell(field[..., GREEN], labels, ids, on_cell_size, boxes[image_id])
            except ValueError as error:
                raise ValueError(f"image {image_id} of {labels_folder}: {error}") from error
            start = stop
        storage.write_array(storage.join(folder, contract.TILES_FILE), tiles)
        storage.write_array(storage.join(folder, contract.IMAGE_ON_CELL_FILE), on_cell)
        storage.write_table(storage.join(folder, contract.INDEX_FILE), index)


class TileAll(AllShards):
    shard_task = Tile


def load_tiles(folder: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A finished tile shard folder as ``(tiles, image_on_cell, index)``; row i of each belongs together."""
    if not storage.is_done(folder):
        raise storage.ArtifactNotFound(f"tile shard not finished (no {storage.SUCCESS_MARKER}): {folder}")
    tiles = storage.read_array(storage.join(folder, contract.TILES_FILE))
    on_cell = storage.read_array(storage.join(folder, contract.IMAGE_ON_CELL_FILE))
    index = storage.read_table(storage.join(folder, contract.INDEX_FILE), dtype=contract.INDEX_DTYPES)
    if not len(tiles) == len(on_cell) == len(index):
        raise ValueError(f"{folder}: {len(tiles)} tiles, {len(on_cell)} image-on-cell inputs, {len(index)} index rows")
    return tiles, on_cell, index

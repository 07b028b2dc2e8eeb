"""The tile stage: per-cell tiles and image-on-cell inputs, and the image models' whole-image inputs."""

from __future__ import annotations

import luigi
from stages.config import pipeline
from stages.declare import Stage, TaskSpec, single, this_shard
from stages.segment import contract as segment_contract
from stages.tile import contract, core
from stages.zoo import get_profile


def tile_content(task) -> dict:
    profile = get_profile(pipeline().profile)
    return {"tile_size": profile.tile_size, "image_on_cell_size": profile.image_on_cell.input_size}


def run_tile(ctx) -> dict:
    sizes = ctx.settings
    rows = ctx.rows().set_index("ID", drop=False)
    segment = ctx.input("segment")

    def load(image_id: str):
        return ctx.field(rows.loc[image_id]), segment.read(segment_contract.LABELS, image_id=image_id)[0]

    try:
        tiles, on_cell, index = core.tile_shard(rows.index.tolist(), segment.read(segment_contract.CELLS), load,
                                                sizes["tile_size"], sizes["image_on_cell_size"], ctx.progress)
    except ValueError as error:
        raise ValueError(f"{segment.folder}: {error}") from error
    return {contract.TILES: tiles, contract.IMAGE_ON_CELL: on_cell, contract.INDEX: index}


def run_image_inputs(ctx) -> dict:
    images = ctx.rows()
    arrays, sizes = core.whole_image_inputs(images["ID"].tolist(), lambda row: ctx.green(images.iloc[row]),
                                            ctx.params["size"], ctx.progress)
    index = images[["ID", "Label"]].assign(width=[width for width, _ in sizes], height=[height for _, height in sizes])
    return {contract.IMAGE_INPUTS: arrays, contract.IMAGE_INDEX: index}


TILE = TaskSpec(
    name="Tile", doc="Per shard: every cell's tile and image-on-cell input, with their index.",
    needs=lambda task: {"manifest": single("Manifest"), "segment": this_shard("Segment")},
    outputs=(contract.TILES, contract.IMAGE_ON_CELL, contract.INDEX),
    content=tile_content, run=run_tile, per_shard=True, folder="shard-{shard:05d}",
)

IMAGE_INPUTS = TaskSpec(
    name="ImageInputs", doc="Per shard: every image's green channel, square-padded and area-resized to `size`.",
    needs=lambda task: {"manifest": single("Manifest")},
    outputs=(contract.IMAGE_INPUTS, contract.IMAGE_INDEX),
    content=lambda task: {"size": task.size, "channel": "green", "resize": "square_pad_area"},
    params={"size": luigi.IntParameter(description="side of the square model input in pixels")},
    run=run_image_inputs, per_shard=True, folder="shard-{shard:05d}", reads_labels=True,
)

STAGE = Stage(name="tile", doc=__doc__.split("\n")[0], tasks=(TILE, IMAGE_INPUTS), whole="TileAll")

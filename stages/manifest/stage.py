"""The manifest stage: list a split's images once and cut them into shards."""

from stages import inputs, storage
from stages.config import pipeline
from stages.declare import Stage, TaskSpec
from stages.manifest import contract, core


def content(task) -> dict:
    return {"folder": inputs.split_folder(task.split), "table": inputs.split_table(task.split),
            "shard_size": pipeline().shard_size}


def run(ctx) -> dict:
    inputs.forget_manifest(ctx.folder)
    folder, table_uri = inputs.split_folder(ctx.split), inputs.split_table(ctx.split)
    listed = storage.read_table(table_uri, dtype=str, keep_default_na=False) if storage.exists(table_uri) else None
    manifest = core.build_manifest(storage.listdir(folder), listed, pipeline().shard_size)
    if manifest.empty:
        raise ValueError(f"no {ctx.split} images: {folder} holds no channel files and {table_uri} lists none")
    return {contract.MANIFEST: manifest}


MANIFEST = TaskSpec(name="Manifest", doc="The split's images, their channel files, labels and shards.",
                    outputs=(contract.MANIFEST,), run=run, content=content)

STAGE = Stage(name="manifest", doc=__doc__.split("\n")[0], tasks=(MANIFEST,), whole="Manifest")

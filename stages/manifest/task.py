"""Luigi task: list a split's images once and cut them into shards."""

from __future__ import annotations

import pandas as pd

from stages import storage
from stages.config import pipeline
from stages.manifest import core
from stages.tasking import StageTask, StorageTarget


def split_root(split: str) -> str:
    """The data root a split is read from: ``[pipeline] external`` for the external split, else the input."""
    if split != core.EXTERNAL_SPLIT:
        return pipeline().input
    if not pipeline().external:
        raise ValueError(f"the '{split}' split was asked for, but no external data is configured "
                         f"([pipeline] external, or --pipeline-external URI)")
    return pipeline().external


def split_folder(split: str) -> str:
    """Where a split's channel files lie."""
    return storage.join(split_root(split), core.SPLIT_LAYOUT[split][0])


def split_table(split: str) -> str:
    """The table (ID, Label) that lists a split's images."""
    return storage.join(split_root(split), core.SPLIT_LAYOUT[split][1])


class Manifest(StageTask):
    stage = "manifest"

    def content_settings(self) -> dict:
        return {"folder": split_folder(self.split), "table": split_table(self.split),
                "shard_size": pipeline().shard_size}

    def output(self):
        return StorageTarget(storage.join(self.stage_root(), "manifest.csv"))

    def run_here(self):
        folder, table_uri = split_folder(self.split), split_table(self.split)
        listed = storage.read_table(table_uri, dtype=str, keep_default_na=False) if storage.exists(table_uri) else None
        manifest = core.build_manifest(storage.listdir(folder), listed, pipeline().shard_size)
        if manifest.empty:
            raise ValueError(f"no {self.split} images: {folder} holds no channel files and {table_uri} lists none")
        storage.write_table(self.output().uri, manifest)


def ensure_manifest(split: str) -> pd.DataFrame:
    """The split's manifest, made now if it is missing: shard fan-out needs it while the graph is built."""
    task = Manifest(split=split)
    if not task.complete():
        task.run_here()
    return load_manifest(split)


def load_manifest(split: str) -> pd.DataFrame:
    return core.read_manifest_table(storage.read_table(Manifest(split=split).output().uri, dtype={"shard": int}))


def split_shard_count(split: str) -> int:
    """How many shards a split's manifest holds."""
    return core.shard_count(load_manifest(split))


def load_shard(split: str, shard: int) -> pd.DataFrame:
    return core.shard_rows(load_manifest(split), shard)




"""Luigi tasks of the fuse stage: a shard's per-source score tables in, the fused table out.

The sources and their weights come from the profile (``fusion`` in stages/zoo.yaml), or from the
``[fuse]`` section of luigi.cfg where it sets them. A source with weight 0 (or none) is not required at
all, so its models are never trained or run: the Luigi graph shrinks with the configuration.
"""

from __future__ import annotations

import json
from types import MappingProxyType

import luigi
import pandas as pd

from stages import storage
from stages.config import pipeline
from stages.fuse import contract, core
from stages.tasking import AllShards, ShardTask, StageTask
from stages.zoo import FusionSettings, get_profile


class fuse(luigi.Config):  # noqa: N801 -- Luigi derives the [fuse] section name from the class name
    mode = luigi.Parameter(default="", description="weighted | multiplicative; empty: the profile's fusion mode")
    weights = luigi.Parameter(
        default="",
        description='JSON object source -> weight, e.g. {"cell": 0.6, "image": 0.4}; empty: the profile\'s weights. '
        "Sources: cell, image, detector, image_on_cell; a source left out (or at 0) is not computed.",
    )


def fusion_settings() -> FusionSettings:
    """The profile's fusion settings, with any ``[fuse]`` override applied (validated by the zoo's type)."""
    profile = get_profile(pipeline().profile).fusion
    config = fuse()
    weights = profile.weights
    if str(config.weights).strip():
        try:
            weights = json.loads(config.weights)
        except json.JSONDecodeError as error:
            raise ValueError(f"[fuse] weights is not a JSON object: {config.weights!r} ({error})") from None
        if not isinstance(weights, dict):
            raise ValueError(f"[fuse] weights must be a JSON object source -> weight, got {config.weights!r}")
    settings = FusionSettings(mode=config.mode or profile.mode, weights=MappingProxyType(dict(weights)))
    core.used_weights(settings.weights)  # negative or all-zero weights fail before any work
    return settings


def source_tasks(split: str, shard: int, sources) -> dict[str, list[StageTask]]:
    """The tasks that make each source's score tables for one shard."""
    from stages.classify.task import PredictCells, PredictImageOnCell, PredictImages
    from stages.match.task import Match

    profile = get_profile(pipeline().profile)
    makers = {
        "cell": lambda: [PredictCells(model=spec.name, split=split, shard=shard) for spec in profile.role("cell")],
        "image": lambda: [PredictImages(model=spec.name, split=split, shard=shard) for spec in profile.role("image")],
        "detector": lambda: [Match(split=split, shard=shard)],
        "image_on_cell": lambda: [PredictImageOnCell(split=split, shard=shard)],
    }
    tasks = {source: makers[source]() for source in sources}
    empty = [source for source, found in tasks.items() if not found]
    if empty:
        raise ValueError(f"fusion source(s) {empty} have no model in profile {profile.name}")
    return tasks


def read_score_table(folder: str) -> pd.DataFrame:
    """The score table in a shard folder: every source, and the fusion, write ``scores.csv`` alike."""
    return storage.read_table(storage.join(folder, contract.SCORES_FILE), dtype=contract.TABLE_DTYPES)


class Fuse(ShardTask):
    """Per shard: per (cell, class) the configured combination of the sources' scores."""

    stage = "fuse"

    def settings(self) -> FusionSettings:
        return fusion_settings()

    def content_settings(self) -> dict:
        settings = self.settings()
        return {"mode": settings.mode, "weights": core.used_weights(settings.weights), "version": 1}

    def source_tasks(self) -> dict[str, list[StageTask]]:
        return source_tasks(self.split, self.shard, self.settings().sources)

    def upstream(self) -> list[StageTask]:
        return [task for tasks in self.source_tasks().values() for task in tasks]

    def fill(self, folder: str) -> None:
        settings = self.settings()
        sources = {}
        for source, tasks in self.source_tasks().items():
            self.progress(f"reading {source} ({len(tasks)} table(s))")
            sources[source] = core.mean_tables([read_score_table(task.folder()) for task in tasks], source)
            storage.write_table(storage.join(folder, contract.source_file(source)), sources[source])
        fused = core.fuse(sources, settings.weights, settings.mode)
        storage.write_table(storage.join(folder, contract.SCORES_FILE), fused)
        self.progress(f"{len(fused)} cell(s) fused from {', '.join(sources)} ({settings.mode})")


class FuseAll(AllShards):
    shard_task = Fuse


def load_fused(split: str, shard: int) -> pd.DataFrame:
    """A Fuse shard's fused table (``contract.TABLE_COLUMNS``)."""
    return read_score_table(Fuse(split=split, shard=shard).folder())


def load_source(split: str, shard: int, source: str) -> pd.DataFrame:
    """One source's table of a Fuse shard (the mean over that source's models)."""
    uri = storage.join(Fuse(split=split, shard=shard).folder(), contract.source_file(source))
    return storage.read_table(uri, dtype=contract.TABLE_DTYPES)

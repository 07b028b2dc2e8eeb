"""The declared tasks run in memory on one field of view, with a trained run's models.

A per-shard task's ``run`` function reads and writes only through its context, so the same functions the
pipeline runs shard by shard run here on a shard of one image with nothing written: segmentation, tiles,
whole-image inputs, every classifier, the detector, matching and the fusion. A need of a whole trained
model (a task of the training split alone) is read from the run's work root, where its declaration puts it.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import numpy as np
import pandas as pd

from stages.classes import CHANNELS
from stages.context import Upstream
from stages.tasking import StageTask

logger = logging.getLogger("luigi-interface")
GREEN = CHANNELS.index("green")


def is_trained_model(task: StageTask) -> bool:
    """A whole task of the training split alone: a model the run trained, read from its work root."""
    return not task.spec.per_shard and tuple(task.spec.splits) == ("train",)


class Memory:
    """A run over one image: each per-shard task's outputs, computed once when first asked for."""

    def __init__(self, image_id: str, field: np.ndarray):
        self.field = field
        self.rows = pd.DataFrame([{"ID": image_id, "shard": 0, **{channel: "" for channel in CHANNELS}, "Label": ""}])
        self.results: dict[str, dict] = {}

    def outputs(self, task: StageTask) -> dict:
        if task.task_id not in self.results:
            context = MemoryContext(task, self)
            for artifact, value in (task.spec.run(context) or {}).items():
                context.write(artifact, value)
            self.results[task.task_id] = context.outputs
        return self.results[task.task_id]

    def read(self, task: StageTask, artifact, **fields):
        return self.outputs(task)[(artifact, tuple(sorted(fields.items())))]


class MemoryUpstream:
    """An upstream per-shard task's outputs, as :class:`stages.context.Upstream` offers them."""

    def __init__(self, task: StageTask, memory: Memory):
        self.task, self.memory = task, memory

    def read(self, artifact, **fields):
        return self.memory.read(self.task, artifact, **fields)

    def mapped(self, artifact):
        return nullcontext(self.read(artifact))


class MemoryContext:
    """:class:`stages.context.Context` for one image held in memory."""

    def __init__(self, task: StageTask, memory: Memory):
        self.task, self.memory = task, memory
        self.params, self.split = task.param_kwargs, task.split
        self.outputs: dict = {}

    @property
    def settings(self) -> dict:
        return self.task.content_settings()

    def input(self, name: str):
        need = self.task.needs()[name]
        if need.scope == "split":
            raise ValueError(f"{self.task}: input {name} reads every shard of a split; it cannot run on one image")
        upstream = self.task.needed(need)
        return Upstream(upstream) if is_trained_model(upstream) else MemoryUpstream(upstream, self.memory)

    def rows(self) -> pd.DataFrame:
        return self.memory.rows

    def field(self, row) -> np.ndarray:
        return self.memory.field

    def green(self, row) -> np.ndarray:
        return np.ascontiguousarray(self.memory.field[..., GREEN])

    def progress(self, message: str, percent: int | None = None) -> None:
        logger.debug("%s: %s", self.task.task_id, message)

    def write(self, artifact, value, **fields) -> None:
        self.outputs[(artifact, tuple(sorted(fields.items())))] = value


def trained_models(task: StageTask) -> list[StageTask]:
    """Every trained model the task's in-memory run reads, in the order its needs name them (no repeats)."""
    found: dict[str, StageTask] = {}
    pending = [task]
    while pending:
        current = pending.pop(0)
        for need in current.needs().values():
            upstream = current.needed(need)
            if is_trained_model(upstream):
                found.setdefault(upstream.task_id, upstream)
            elif need.scope == "shard":
                pending.append(upstream)
    return list(found.values())

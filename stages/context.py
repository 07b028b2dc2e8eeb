"""What a declared ``run`` function sees of its task: parameters, settings, the images of its shard, its
finished upstream folders (checked to hold the images their manifest rows name), progress and ``write``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stages import inputs, local_paths, scratch, storage

if TYPE_CHECKING:
    from stages.tasking import StageTask


def rescue(task: StageTask, outputs: dict) -> str:
    """A local folder (never swept) holding the outputs a task computed but could not store."""
    folder = scratch.ROOT.with_name(scratch.ROOT.name + "-rescued") / f"{task.task_id}-{int(time.time())}"
    for artifact, value in outputs.items():
        artifact.write(str(folder), value)
    return str(folder)


def shard_ids(split: str, shard: int) -> list[str]:
    return inputs.shard_rows(split, shard)["ID"].tolist()


class Upstream:
    """A finished upstream task's folder, read through its declared artifacts. A shard's folder must hold
    the images its manifest rows name, no more and no fewer: anything else is an error naming both."""

    def __init__(self, task: StageTask):
        self.task = task
        self.folder = task.folder()
        if not storage.is_done(self.folder):  # a crashed attempt's leftovers must never pass for an input
            raise storage.ArtifactNotFound(f"{task}: not finished (no {storage.SUCCESS_MARKER}): {self.folder}")
        if task.spec.per_shard:
            self.check_images(shard_ids(task.split, task.shard))

    def check_images(self, expected: list[str]) -> None:
        held = storage.done_record(self.folder).get("ids")
        if held == expected:
            return
        if held is None:
            raise ValueError(f"{self.folder}: its {storage.SUCCESS_MARKER} does not list the images it holds "
                             f"(not written by a run of this pipeline); remove the folder to recompute it")
        missing, extra = sorted(set(expected) - set(held)), sorted(set(held) - set(expected))
        repeated = sorted({image_id for image_id in held if held.count(image_id) > 1})
        raise ValueError(f"{self.folder} (shard {self.task.shard} of {self.task.split}) does not hold the images "
                         f"of its manifest rows: missing {missing or 'none'}, not in the shard {extra or 'none'}"
                         f"{f', held twice {repeated}' if repeated else ''}")

    def read(self, artifact, **fields):
        return artifact.read(self.folder, **fields)

    def uri(self, artifact, **fields) -> str:
        return artifact.uri(self.folder, **fields)

    def mapped(self, artifact):
        """An array artifact memory-mapped (a context manager): inputs far larger than memory stay on disk."""
        return local_paths.mapped_array(artifact.uri(self.folder))


class Context:
    """What a declared ``run`` function sees: the task's parameters and settings, its inputs (upstream
    artifacts; the images of its shard), progress, and ``write`` for outputs produced one file at a time.
    It is the run functions' only way to storage, so :mod:`stages.inmemory` can run them on one image
    without any."""

    def __init__(self, task: StageTask, folder: str):
        self.task = task
        self.folder = folder
        self.params = task.param_kwargs
        self.split = task.split

    @property
    def settings(self) -> dict:
        return self.task.content_settings()

    def input(self, name: str):
        """An input by its declared name: an :class:`Upstream`, or for a need of every shard, one per shard."""
        need = self.task.needs()[name]
        if need.scope != "split":
            return Upstream(self.task.needed(need))
        split = need.split or self.task.split
        return [Upstream(self.task.needed(need, shard)) for shard in range(inputs.shard_count(split))]

    def rows(self):
        """The manifest rows of this task's shard: the images it works on."""
        return inputs.shard_rows(self.split, self.params["shard"])

    def field(self, row):
        """A row's four channels, (H, W, 4) uint8."""
        return inputs.field_of(self.split, row)

    def green(self, row):
        """A row's green channel alone, (H, W) uint8."""
        return inputs.green_of(self.split, row)

    def progress(self, message: str, percent: int | None = None) -> None:
        self.task.progress(message, percent)

    def write(self, artifact, value, **fields) -> None:
        artifact.write(self.folder, value, **fields)

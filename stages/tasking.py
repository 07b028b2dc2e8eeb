"""What every stage task shares: content-addressed output folders, storage targets, shard fan-out.

An artifact lives at ``<work>/<stage>/<fingerprint>/<split>/<name>``. The fingerprint hashes the
settings that change the artifact's content, chained through every upstream task's fingerprint, so a
changed setting anywhere upstream never reuses a stale result; operational knobs (device, batch size,
workers) stay out of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import ClassVar

import luigi
import luigi.configuration

logger = logging.getLogger("luigi-interface")

from stages.manifest import core as manifest_core
from stages import storage
from stages.config import pipeline


class StorageTarget(luigi.Target):
    """A Luigi target that asks the storage layer, so it works on folders and on S3 alike."""

    def __init__(self, uri: str):
        self.uri = uri

    def exists(self) -> bool:
        return storage.exists(self.uri)


_fingerprints: dict[str, tuple[tuple, str]] = {}


def settings_state() -> tuple:
    """What every setting is read from: the config files' content and the command line being parsed."""
    from luigi.cmdline_parser import CmdlineParser

    return id(CmdlineParser._instance), repr(luigi.configuration.get_config()._sections)


def fingerprint_of(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


class StageTask(luigi.Task):
    """A task whose output folder is derived from its parameters and its upstream tasks alone.

    ``run()`` hands the work to the configured runner ([runner] mode: in this process, the stage's Docker
    image or a Kubernetes Job); subclasses implement ``run_here()``, the in-process work.
    """

    needs_gpu: ClassVar[bool] = False

    def run(self):
        from stages.runners import dispatch

        dispatch(self)

    def run_here(self) -> None:
        raise NotImplementedError

    def progress(self, message: str, percent: int | None = None) -> None:
        """Status and progress for the Luigi scheduler and the log, so a long run is not silent."""
        logger.info("%s: %s", self.task_id, message)
        # Luigi installs these callbacks only inside a worker; stages.runstage calls run() without one.
        if self.set_status_message is not None:
            self.set_status_message(message)
        if percent is not None and self.set_progress_percentage is not None:
            self.set_progress_percentage(percent)

    stage: ClassVar[str]
    split = luigi.ChoiceParameter(choices=manifest_core.SPLITS, default="test")

    def content_settings(self) -> dict:
        """The settings, besides upstream artifacts, that change this stage's output."""
        return {}

    def upstream(self) -> list[StageTask]:
        """Upstream stage tasks whose artifacts this stage reads (their fingerprints chain into ours)."""
        return []

    def requires(self):
        return self.upstream()

    def fingerprint(self) -> str:
        # A graph asks for the same fingerprints once per shard: cache them for as long as the settings
        # (config files, command line) they derive from stay as they are.
        state = settings_state()
        cached = _fingerprints.get(self.task_id)
        if cached is not None and cached[0] == state:
            return cached[1]
        value = fingerprint_of(
            {
                "stage": self.stage,
                "settings": self.content_settings(),
                "upstream": sorted(task.fingerprint() for task in self.upstream()),
            }
        )
        _fingerprints[self.task_id] = (state, value)
        return value

    def stage_root(self) -> str:
        return storage.join(pipeline().work, self.stage, self.fingerprint(), self.split)


class FolderTask(StageTask):
    """A stage whose output is a folder of files closed by a success marker, written last."""

    def folder(self) -> str:
        raise NotImplementedError

    def output(self):
        return StorageTarget(storage.join(self.folder(), storage.SUCCESS_MARKER))

    def run_here(self):
        folder = self.folder()
        storage.remove(folder)  # leftovers of a crashed attempt must not mix with this one
        try:
            self.fill(folder)
        except BaseException:
            storage.remove(folder)  # never leave a partial artifact behind
            raise
        storage.mark_done(folder)

    def fill(self, folder: str) -> None:
        """Write every file of the output folder (the marker comes after)."""
        raise NotImplementedError


class ShardTask(FolderTask):
    """A per-shard stage: one folder per shard of the manifest."""

    shard = luigi.IntParameter(description="shard index (see the manifest)")

    def folder(self) -> str:
        return storage.join(self.stage_root(), f"shard-{self.shard:05d}")


class AllShards(luigi.WrapperTask):
    """One stage over every shard of a split: complete exactly when every shard is, so deleting one
    shard's output and rerunning recomputes that shard alone.

    The shard tasks are static requirements, known when the graph is built (the manifest is made then if it
    is missing: one listing of the input). Every worker attached to a central luigid therefore sees every
    shard task; tasks yielded at run time would be visible to the worker that yielded them only.
    """

    shard_task: ClassVar[type[ShardTask]]
    split = luigi.ChoiceParameter(choices=manifest_core.SPLITS, default="test")

    def shard_parameters(self) -> dict:
        """Parameters besides (split, shard) that every shard task gets (e.g. a model name)."""
        return {}

    def shard_tasks(self) -> list[ShardTask]:
        from stages.manifest.task import ensure_manifest

        count = manifest_core.shard_count(ensure_manifest(self.split))
        return [self.shard_task(split=self.split, shard=shard, **self.shard_parameters()) for shard in range(count)]

    def requires(self):
        return self.shard_tasks()

"""The one generic task machinery: Luigi task classes made from the stage declarations.

From a :class:`stages.declare.TaskSpec` it derives the Luigi parameters, the fingerprint, ``requires()``,
the output folder and its success marker, the loading of inputs and the saving of outputs through the
storage layer, and the dispatch to the configured runner. ``requires()`` and the fingerprint both come
from the declared ``needs``, so they cannot disagree.

An artifact lives at ``<work>/<dir>/<fingerprint>/<split>/<folder>``. The fingerprint hashes the settings
that change the artifact's content, chained through every upstream task's fingerprint, so a changed
setting anywhere upstream never reuses a stale result; operational knobs (device, batch size, workers)
stay out of it. A per-shard task's fingerprint does not depend on which shard it is: every shard of a
stage shares one fingerprint folder, and a task that reads every shard chains that one fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import ClassVar

import luigi
import luigi.configuration

from stages import inputs, scratch, storage
from stages.config import pipeline
from stages.declare import Needs, Stage, TaskSpec, snake_case

logger = logging.getLogger("luigi-interface")


class StorageTarget(luigi.Target):
    """A Luigi target that asks the storage layer, so it works on folders and on S3 alike."""

    def __init__(self, uri: str):
        self.uri = uri

    def exists(self) -> bool:
        return storage.exists(self.uri)


class DoneTarget(StorageTarget):
    """A task's folder, finished when its success marker is there (:func:`stages.storage.is_done`)."""

    def __init__(self, folder: str):
        super().__init__(storage.join(folder, storage.SUCCESS_MARKER))
        self.folder = folder

    def exists(self) -> bool:
        return storage.is_done(self.folder)


_fingerprints: dict[tuple, tuple[tuple, str]] = {}


def settings_state() -> tuple:
    """What every setting is read from: the config files' content and the command line being parsed."""
    from luigi.cmdline_parser import CmdlineParser

    return id(CmdlineParser._instance), repr(luigi.configuration.get_config()._sections)


def fingerprint_of(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


class StageTask(luigi.Task):
    """A declared task. Subclasses are made by :func:`task_classes`; they hold no code of their own."""

    spec: ClassVar[TaskSpec]
    stage_name: ClassVar[str]

    # ------------------------------------------------------------------ derived from the declaration

    def needs(self) -> dict[str, Needs]:
        return self.spec.needs(self)

    def needs_gpu(self) -> bool:
        return self.spec.needs_gpu()

    def content_settings(self) -> dict:
        return self.spec.content(self)

    def needed(self, need: Needs, shard: int = 0) -> StageTask:
        """The task a need names (for a need of every shard: the given shard)."""
        target = task_class(need.task)
        params = dict(need.params)
        if len(target.spec.splits) > 1:
            params["split"] = need.split or self.split
        if target.spec.per_shard:
            params["shard"] = self.shard if need.scope == "shard" else shard
        return target(**params)

    def requires(self):
        return [self.required(need) for need in self.needs().values()]

    def required(self, need: Needs) -> luigi.Task:
        """The Luigi task that stands for a need: for every shard of a stage, its ``<Task>All`` wrapper."""
        if need.scope == "split":
            return task_class(f"{need.task}All")(**self.needed(need).shard_free_params())
        return self.needed(need)

    def shard_free_params(self) -> dict:
        return {name: value for name, value in self.param_kwargs.items() if name != "shard"}

    def fingerprint(self) -> str:
        # A graph asks for the same fingerprints once per shard: cache them for as long as the settings
        # (config files, command line) they derive from stay as they are.
        key = (self.get_task_family(), tuple(sorted(self.shard_free_params().items())))
        state = settings_state()
        cached = _fingerprints.get(key)
        if cached is not None and cached[0] == state:
            return cached[1]
        value = fingerprint_of({
            "task": self.get_task_family(),
            "settings": self.content_settings(),
            "upstream": sorted(self.needed(need).fingerprint() for need in self.needs().values()),
        })
        _fingerprints[key] = (state, value)
        return value

    def folder(self) -> str:
        # Asked for at every completeness check of every shard: remembered on the (cached) task instance
        # while the settings stay as they are.
        state = settings_state()
        cached = self.__dict__.get("_folder")
        if cached is not None and cached[0] == state:
            return cached[1]
        directory = self.spec.directory or snake_case(self.get_task_family())
        root = storage.join(pipeline().work, directory, self.fingerprint(), self.split)
        leaf = self.spec.folder.format(**self.param_kwargs)
        folder = storage.join(root, leaf) if leaf else root
        self._folder = (state, folder)
        return folder

    def output(self):
        return DoneTarget(self.folder())

    # ------------------------------------------------------------------ running

    def run(self):
        from stages.runners import dispatch

        dispatch(self)

    def run_here(self) -> None:
        """The in-process work: a clean folder, the declared run, its outputs saved, the marker last."""
        folder = self.folder()
        # One writer per folder: another run on the same work root waits here, then finds it finished; a
        # finished folder is never removed, so nobody's input vanishes under them.
        with storage.writer_lock(folder):
            if storage.is_done(folder):
                return
            storage.remove(folder)  # leftovers of a crashed attempt must not mix with this one
            try:
                outputs = self.spec.run(Context(self, folder)) or {}
                undeclared = [artifact.name for artifact in outputs if artifact not in self.spec.outputs]
                if undeclared:
                    raise ValueError(f"{self}: {', '.join(undeclared)} is not a declared output of {self.spec.name}")
                try:
                    for artifact, value in outputs.items():
                        artifact.write(folder, value)
                except storage.StorageError as error:
                    # hours of training must not go with an unreachable store: keep what was computed
                    raise storage.StorageError(f"{error}; this task's outputs are kept in "
                                               f"{rescue(self, outputs)}") from error
            except BaseException:
                try:
                    storage.remove(folder)  # never leave a partial artifact behind
                except storage.StorageError as error:  # unmarked, it is never read, and the next attempt clears it
                    logger.warning("%s: could not remove the partial %s: %s", self.task_id, folder, error)
                raise
            storage.mark_done(folder)

    def progress(self, message: str, percent: int | None = None) -> None:
        """Status and progress for the Luigi scheduler and the log, so a long run is not silent."""
        logger.info("%s: %s", self.task_id, message)
        # Luigi installs these callbacks only inside a worker; stages.runstage calls run() without one.
        if self.set_status_message is not None:
            self.set_status_message(message)
        if percent is not None and self.set_progress_percentage is not None:
            self.set_progress_percentage(percent)


def rescue(task: StageTask, outputs: dict) -> str:
    """A local folder (never swept) holding the outputs a task computed but could not store."""
    folder = scratch.ROOT.with_name(scratch.ROOT.name + "-rescued") / f"{task.task_id}-{int(time.time())}"
    for artifact, value in outputs.items():
        artifact.write(str(folder), value)
    return str(folder)


class Upstream:
    """A finished upstream task's folder, read through its declared artifacts."""

    def __init__(self, task: StageTask):
        self.task = task
        self.folder = task.folder()
        if not storage.is_done(self.folder):  # a crashed attempt's leftovers must never pass for an input
            raise storage.ArtifactNotFound(f"{task}: not finished (no {storage.SUCCESS_MARKER}): {self.folder}")

    def read(self, artifact, **fields):
        return artifact.read(self.folder, **fields)

    def uri(self, artifact, **fields) -> str:
        return artifact.uri(self.folder, **fields)

    def mapped(self, artifact):
        """An array artifact memory-mapped (a context manager): inputs far larger than memory stay on disk."""
        return storage.mapped_array(artifact.uri(self.folder))


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


_classes: dict[str, type[luigi.Task]] = {}


def split_parameter(spec: TaskSpec) -> luigi.Parameter:
    default = "test" if "test" in spec.splits else spec.splits[0]
    return luigi.ChoiceParameter(choices=spec.splits, default=default, description="which split of the data")


def make_task_class(stage: Stage, spec: TaskSpec) -> type[StageTask]:
    attributes = {"spec": spec, "stage_name": stage.name, "__doc__": spec.doc, "__module__": f"stages.{stage.name}",
                  "split": split_parameter(spec), **spec.params}
    if spec.per_shard:
        attributes["shard"] = luigi.IntParameter(description="shard index (see the manifest)")
    return type(spec.name, (StageTask,), attributes)


def task_classes(stages: tuple[Stage, ...]) -> dict[str, type[luigi.Task]]:
    """Every declared task's Luigi class (and ``<Task>All`` for per-shard ones), made once per process."""
    if not _classes:
        for stage in stages:
            for spec in stage.tasks:
                task = make_task_class(stage, spec)
                _classes[spec.name] = task
                if spec.per_shard:
                    from stages.shards import fan_out_classes

                    _classes.update(fan_out_classes(task))
    return _classes


def task_class(name: str) -> type[StageTask]:
    from stages.registry import TASKS

    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"no declared task {name!r}; declared: {sorted(TASKS)}") from None

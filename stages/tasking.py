"""The one generic task machinery: Luigi task classes made from the stage declarations.

From a :class:`stages.declare.TaskSpec` it derives the Luigi parameters, the fingerprint, ``requires()``,
the output folder and its success marker, the loading of inputs and the saving of outputs through the
storage layer, and the dispatch to the configured runner. ``requires()`` and the fingerprint both come
from the declared ``needs``, so they cannot disagree.

An artifact lives at ``<work>/<dir>/<fingerprint>/<split>/<folder>.<input digest>``. The fingerprint
hashes the settings that change the artifact's content, chained through every upstream task's fingerprint,
so a changed setting anywhere upstream never reuses a stale result; operational knobs (device, batch size,
workers) stay out of it. A per-shard task's fingerprint does not depend on which shard it is: every shard of
a stage shares one fingerprint folder. The input digest addresses the input data a task reads (its
shard's images, their labels where it reads labels, the trained models it reads), so a changed image reruns
exactly its shard's chain and what reads it, and an unchanged shard is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import ClassVar

import luigi
import luigi.configuration

from stages import inputs, storage
from stages.context import Context, rescue, shard_ids
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
    """What every setting and folder is derived from: the config files' content, the command line being
    parsed, and the input as this process listed it (:func:`stages.inputs.refresh`)."""
    from luigi.cmdline_parser import CmdlineParser

    return id(CmdlineParser._instance), repr(luigi.configuration.get_config()._sections), inputs.generation()


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

    def input_digest(self, every_shard: bool = False) -> str:
        """What the task reads of the input data, as a digest. A per-shard task: its shard's manifest rows
        (the images' file identities; their labels if it reads labels) and the same shard of the per-shard
        tasks it reads; with ``every_shard``, the same over every shard of its split at once (what a task
        reading every shard depends on: one digest, without a task instance per shard). Any task: the
        trained models it reads (their own digests) and what it reads from outside the work root
        (``source``)."""
        state = settings_state()
        cached = self.__dict__.get("_input_digests")
        if cached is None or cached[0] != state:
            cached = self._input_digests = (state, {})
        if every_shard not in cached[1]:
            cached[1][every_shard] = fingerprint_of(self.input_parts(every_shard))
        return cached[1][every_shard]

    def input_parts(self, every_shard: bool) -> dict:
        parts = {"source": self.spec.source(self)} if self.spec.source else {}
        shard = self.shard if self.spec.per_shard and not every_shard else None
        for name, need in self.needs().items():
            split = need.split or self.split
            if need.task == inputs.MANIFEST_TASK:
                parts[name] = inputs.rows_digest(split, shard, self.spec.reads_labels)
            elif need.scope == "split":
                labels = inputs.rows_digest(split, labels=True) if self.spec.reads_labels else ""
                parts[name] = fingerprint_of([self.needed(need, 0).input_digest(every_shard=True), labels])
            else:
                parts[name] = self.needed(need).input_digest(every_shard and need.scope == "shard")
        return parts

    def folder(self) -> str:
        # Asked for at every completeness check of every shard: remembered on the (cached) task instance
        # while the settings and the input stay as they are.
        state = settings_state()
        cached = self.__dict__.get("_folder")
        if cached is not None and cached[0] == state:
            return cached[1]
        directory = self.spec.directory or snake_case(self.get_task_family())
        leaf = self.spec.folder.format(**self.param_kwargs)
        digest = self.input_digest()
        folder = storage.join(pipeline().work, directory, self.fingerprint(), self.split,
                              f"{leaf}.{digest}" if leaf else digest)
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
            # a per-shard folder names the images it holds, for readers to check against their manifest rows
            storage.mark_done(folder, {"ids": shard_ids(self.split, self.shard)} if self.spec.per_shard else None)

    def progress(self, message: str, percent: int | None = None) -> None:
        """Status and progress for the Luigi scheduler and the log, so a long run is not silent."""
        logger.info("%s: %s", self.task_id, message)
        # Luigi installs these callbacks only inside a worker; stages.runstage calls run() without one.
        if self.set_status_message is not None:
            self.set_status_message(message)
        if percent is not None and self.set_progress_percentage is not None:
            self.set_progress_percentage(percent)


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

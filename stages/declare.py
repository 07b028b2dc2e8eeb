"""The vocabulary of a stage declaration (``stages/<stage>/stage.py``).

A declaration says, per task, in one screen: what it reads (``Needs``: this shard of X, every shard of X,
one task such as a trained model), what it writes (``Artifact``s of the stage's contract), which settings
change its content, which sections hold operational knobs only, whether it needs a GPU, and the function
that loads its inputs, makes the one core call and returns its outputs. :mod:`stages.tasking` derives
everything else from it (Luigi parameters, fingerprint, ``requires()``, targets, saving, the runner), and
:mod:`stages.registry` collects the declarations for the runners, ``.ci/run STAGE``, the image tests and
the README.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

from stages.artifacts import Artifact

SCOPES = ("shard", "split", "single")
EVERY_SPLIT: tuple[str, ...] = ("train", "test", "external")


@dataclasses.dataclass(frozen=True)
class Needs:
    """One input of a task: the artifacts of another task.

    - ``shard``: the same shard of a per-shard task (same split unless ``split`` says otherwise);
    - ``split``: every shard of a per-shard task over a split (required through its ``<Task>All`` wrapper);
    - ``single``: one task that is not per shard (a trained model, the manifest).
    """

    task: str
    scope: str
    split: str | None = None  # None: the needing task's own split
    params: Mapping = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"needs {self.task}: scope {self.scope!r} is not one of {SCOPES}")


def this_shard(task: str, **params) -> Needs:
    return Needs(task, "shard", params=MappingProxyType(params))


def every_shard(task: str, split: str | None = None, **params) -> Needs:
    return Needs(task, "split", split, MappingProxyType(params))


def single(task: str, split: str | None = None, **params) -> Needs:
    return Needs(task, "single", split, MappingProxyType(params))


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task of a stage. ``needs``, ``content`` and ``gpu`` are functions of the task instance because
    some depend on its parameters (a model's zoo entry) or on a setting (the segment backend's device)."""

    name: str  # the Luigi task family
    doc: str
    outputs: tuple[Artifact, ...]
    run: Callable  # (Context) -> {Artifact: value}: load inputs, one core call, outputs to save
    needs: Callable = lambda task: {}  # (task) -> {input name: Needs}
    content: Callable = lambda task: {}  # (task) -> the settings that change the artifacts
    params: Mapping = dataclasses.field(default_factory=lambda: MappingProxyType({}))  # extra Luigi parameters: name -> luigi.Parameter
    per_shard: bool = False
    splits: tuple[str, ...] = EVERY_SPLIT
    folder: str = ""  # below <work>/<dir>/<fingerprint>/<split>/, formatted with the parameters
    directory: str = ""  # the <dir> above; default: the task family in snake case
    gpu: bool | Callable = False  # or () -> whether the container needs one under the current settings
    operational: tuple[str, ...] = ()  # config sections that tune speed only, kept out of the fingerprint
    reads_labels: bool = False  # its outputs depend on the images' labels: a changed label reruns it
    source: Callable | None = None  # (task) -> a digest of what it reads from outside the work root

    def needs_gpu(self) -> bool:
        return bool(self.gpu() if callable(self.gpu) else self.gpu)

    def __post_init__(self):
        names = [artifact.name for artifact in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name}: an output is declared twice: {names}")
        if self.per_shard and "{shard" not in self.folder:
            raise ValueError(f"task {self.name}: a per-shard task's folder must name its shard")


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stage: one package ``stages/<name>/``, one image ``images/<name>/``, one bake target, one test
    folder ``tests/<name>/``. ``whole`` is the task that runs the stage over a split (``.ci/run STAGE``)."""

    name: str
    doc: str
    tasks: tuple[TaskSpec, ...]
    whole: str

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(f"stage {self.name} has no task {name!r}; its tasks: {[spec.name for spec in self.tasks]}")


def snake_case(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() and index else char.lower() for index, char in enumerate(name))

"""Every stage's declaration, in data-flow order: what the runners (image, GPU), ``.ci/run STAGE``, the image
tests, the README's stage table and ``luigi --module stages`` read."""

from __future__ import annotations

from stages.classify.stage import STAGE as CLASSIFY
from stages.declare import Stage, TaskSpec
from stages.detect.stage import STAGE as DETECT
from stages.fuse.stage import STAGE as FUSE
from stages.manifest.stage import STAGE as MANIFEST
from stages.match.stage import STAGE as MATCH
from stages.pseudolabel.stage import STAGE as PSEUDOLABEL
from stages.segment.stage import STAGE as SEGMENT
from stages.submit.stage import STAGE as SUBMIT
from stages.tasking import task_classes
from stages.tile.stage import STAGE as TILE

STAGES: tuple[Stage, ...] = (MANIFEST, SEGMENT, TILE, CLASSIFY, PSEUDOLABEL, DETECT, MATCH, FUSE, SUBMIT)
TASKS = task_classes(STAGES)


def stage(name: str) -> Stage:
    for found in STAGES:
        if found.name == name:
            return found
    raise KeyError(f"no stage {name!r}; stages: {[found.name for found in STAGES]}")


def task_spec(name: str) -> tuple[Stage, TaskSpec]:
    """The stage and declaration of a task family."""
    for found in STAGES:
        for spec in found.tasks:
            if spec.name == name:
                return found, spec
    raise KeyError(f"no declared task {name!r}")


def stage_table() -> str:
    """The README's stage table: every task, its image, whether it asks for a GPU, what it writes."""
    lines = ["| stage = image | task | GPU | writes |", "|---|---|---|---|"]
    for found in STAGES:
        for spec in found.tasks:
            gpu = (spec.gpu.__doc__.split(".")[0].strip() if callable(spec.gpu) else "yes" if spec.gpu else "no")
            lines.append(f"| {found.name} | {spec.name} | {gpu} | "
                         f"{', '.join(f'`{artifact.name}`' for artifact in spec.outputs)} |")
    return "\n".join(lines)

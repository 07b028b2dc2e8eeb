"""HPA single-cell classification pipeline: every stage's Luigi tasks, for ``luigi --module stages``.

Each stage declares its tasks in ``stages/<stage>/stage.py``; :mod:`stages.registry` collects them and
:mod:`stages.tasking` makes the Luigi classes, exposed here by name (``stages.Segment``, ``stages.TileAll``).
Stage logic lives in ``stages/<stage>/core.py`` (and siblings) and imports no Luigi; TensorFlow, torch and
Ultralytics are imported inside ``run`` only, so building the task graph stays fast.
"""

from stages.classify.stage import TrainClassifiers
from stages.registry import STAGES, TASKS
from stages.submit.publish import Submission

FINAL_TASK = "Submission"
globals().update(TASKS)
# Per stage (folder, image, bake target), the task that runs it over a whole split: what
# `.ci/run STAGE` runs after the stage's tests.
STAGE_TASKS = {stage.name: stage.whole for stage in STAGES}
__all__ = sorted([*TASKS, "TrainClassifiers", "Submission"])

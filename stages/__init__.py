"""HPA single-cell classification pipeline: every stage's Luigi tasks, for ``luigi --module stages``.

Stage logic lives in ``stages/<stage>/core.py`` and imports neither Luigi nor the deep-learning
frameworks; task modules import those lazily, so building the task graph stays fast.
"""

from stages.manifest.task import Manifest

__all__ = ["Manifest"]

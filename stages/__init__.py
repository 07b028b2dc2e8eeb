"""HPA single-cell classification pipeline: every stage's Luigi tasks, for ``luigi --module stages``.

Stage logic lives in ``stages/<stage>/core.py`` and imports neither Luigi nor the deep-learning
frameworks; task modules import those lazily, so building the task graph stays fast.
"""

from stages.manifest.task import Manifest
from stages.segment.task import Segment, SegmentAll
from stages.tile.task import Tile, TileAll

FINAL_TASK = "TileAll"
__all__ = ["Manifest", "Segment", "SegmentAll", "Tile", "TileAll"]

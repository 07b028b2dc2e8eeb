"""HPA single-cell classification pipeline: every stage's Luigi tasks, for ``luigi --module stages``.

Stage logic lives in ``stages/<stage>/core.py`` (and siblings) and imports no Luigi; task modules import
TensorFlow, torch and Ultralytics lazily inside ``run``, so building the task graph stays fast.
"""

from stages.classify.task import (
    ImageInputs,
    ImageInputsAll,
    PredictCells,
    PredictCellsAll,
    PredictImageOnCell,
    PredictImageOnCellAll,
    PredictImages,
    PredictImagesAll,
    TrainCellModel,
    TrainClassifiers,
    TrainImageModel,
)
from stages.detect.task import Detect, DetectAll, TrainYolo, YoloDataset, YoloExport
from stages.fuse.task import Fuse, FuseAll
from stages.manifest.task import Manifest
from stages.match.task import Match, MatchAll
from stages.pseudolabel.task import PseudoLabel, TrainFoldModel
from stages.segment.task import Segment, SegmentAll
from stages.submit.task import Evaluate, Report, Submission, WriteSubmission
from stages.tile.task import Tile, TileAll

FINAL_TASK = "Submission"
# Per stage (folder, image, bake target), the task that runs it over a whole split: what
# `.ci/run STAGE` runs after the stage's tests.
STAGE_TASKS = {
    "manifest": "Manifest",
    "segment": "SegmentAll",
    "tile": "TileAll",
    "classify": "TrainClassifiers",
    "pseudolabel": "PseudoLabel",
    "detect": "DetectAll",
    "match": "MatchAll",
    "fuse": "FuseAll",
    "submit": "Submission",
}
__all__ = [
    "Detect", "DetectAll", "Evaluate", "Fuse", "FuseAll", "ImageInputs", "ImageInputsAll", "Manifest", "Match",
    "MatchAll", "PredictCells", "PredictCellsAll", "PredictImageOnCell", "PredictImageOnCellAll", "PredictImages",
    "PredictImagesAll", "PseudoLabel", "Report", "Segment", "SegmentAll", "Submission", "Tile", "TileAll",
    "TrainCellModel", "TrainClassifiers", "TrainFoldModel", "TrainImageModel", "TrainYolo", "WriteSubmission",
    "YoloDataset", "YoloExport",
]

"""What the detect stage writes: the one place its files and table columns are declared.

Coordinates: every box is in the pixel frame of the *original* field of view, x = column, y = row, as
pixel edges (pixel column i spans [i, i + 1)), exactly like the segment table's bbox with its exclusive
end. The detector image is the green channel repeated 3 times, resized (area interpolation, aspect ratio
kept) so that its long side is the zoo's ``input_size``.
"""

from stages.artifacts import Artifact, table

# ---- YoloExport: per train shard
IMAGE_DIR = "images"  # Ultralytics finds a label by replacing the last /images/ of the path with /labels/
LABEL_DIR = "labels"
IMAGE = Artifact("images/{image_id}.png", "bytes", "8-bit, 3 identical channels (green), long side = input_size")
LABEL = Artifact("labels/{image_id}.txt", "bytes", 'YOLO lines "class cx cy w h" (normalised); empty = background')
EXPORT_INDEX = table("index.csv", "one row per image of the shard",
                     {"ID": str, "width": "int64", "height": "int64", "detector_width": "int64",
                      "detector_height": "int64", "cells": "int64", "boxes": "int64"})

# ---- YoloDataset: the train/val split over every export shard
SUBSET_FILES = {"train": "train.txt", "val": "val.txt"}  # one "./shard-NNNNN/images/<ID>.png" per line,
SUBSETS = tuple(Artifact(name, "bytes", f"the {subset} images, relative to the export root")  # of the export
                for subset, name in SUBSET_FILES.items())
SPLIT = table("split.csv", "every exported image's subset", {"ID": str, "shard": "int64", "subset": str})
DATASET = Artifact("dataset.yaml", "bytes", "the Ultralytics dataset description (no path key: the YAML's "
                   "own folder is the root)")

# ---- TrainYolo
WEIGHTS = Artifact("weights.pt", "bytes", "the final phase's best weights (Ultralytics checkpoint)")
PHASE_WEIGHTS = Artifact("weights_{phase}.pt", "bytes", "each phase's best weights")
METRICS = Artifact("metrics.json", "json", '{"phases": [{"phase", "epochs", "metrics": {...}}], "final": {...}}')
RESULTS = Artifact("results_{phase}.csv", "bytes", "Ultralytics' per-epoch results table of each phase")

# ---- Detect: per shard
BOX_DTYPES = {"ID": "str", "class": "int64", "confidence": "float64",
              "x0": "float64", "y0": "float64", "x1": "float64", "y1": "float64"}
BOXES = table("boxes.csv", "boxes in original-image pixels (x = column, y = row) with class and confidence",
              BOX_DTYPES)
BOX_COLUMNS = BOXES.columns
DETECT_IMAGES = table("images.csv", "every image of the shard, 0 boxes allowed",
                      {"ID": str, "width": "int64", "height": "int64", "boxes": "int64"})


def label_path(image_path: str) -> str:
    """The label file of an image path, the way Ultralytics finds it (last /images/ -> /labels/, .txt)."""
    head, sep, tail = image_path.rpartition(f"{IMAGE_DIR}/")
    if not sep:
        raise ValueError(f"{image_path!r} is not under an {IMAGE_DIR}/ folder")
    return f"{head}{LABEL_DIR}/{tail.rsplit('.', 1)[0]}.txt"

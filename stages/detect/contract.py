"""What the detect stage reads and writes: the one place that names its files and table columns.

Coordinates: every box is in the pixel frame of the *original* field of view, x = column, y = row, as
pixel edges (pixel column i spans [i, i + 1)), exactly like the segment table's bbox with its exclusive
end. The detector image is the green channel repeated 3 times, resized (area interpolation, aspect ratio
kept) so that its long side is the zoo's ``input_size``.
"""

INPUTS = {
    "manifest": "the split's manifest (stages.manifest): image ID, channel files, Label, per shard",
    "images": "<input>/<split>/<ID>_green.<png|jpg|tif>: only the green channel is read",
    "segment": "train split only: the segment stage's cells.csv per shard (bbox per cell)",
    "zoo": "stages/zoo.yaml: the profile's detector entry (architecture, input_size, epochs, finetune_epochs, "
    "initial_weights)",
}

# ---- YoloExport: per train shard, <work>/detect/<fingerprint>/train/shard-NNNNN/
IMAGE_DIR = "images"  # Ultralytics finds a label by replacing the last /images/ of the path with /labels/
LABEL_DIR = "labels"
IMAGE_FILE = "images/{image_id}.png"  # 8-bit, 3 identical channels (green), long side = input_size
LABEL_FILE = "labels/{image_id}.txt"  # YOLO lines "class cx cy w h" (normalised); empty = background image
EXPORT_INDEX_FILE = "index.csv"
EXPORT_INDEX_COLUMNS = ("ID", "width", "height", "detector_width", "detector_height", "cells", "boxes")

# ---- YoloDataset: the same folder's root, written after every shard
DATASET_FILE = "dataset.yaml"  # no "path" key: Ultralytics takes the YAML's own folder as the root
SUBSET_FILES = {"train": "train.txt", "val": "val.txt"}  # one "./shard-NNNNN/images/<ID>.png" per line
SPLIT_FILE = "split.csv"
SPLIT_COLUMNS = ("ID", "shard", "subset")

# ---- TrainYolo: <work>/detect/<fingerprint>/train/
WEIGHTS_FILE = "weights.pt"  # the final phase's best weights (Ultralytics checkpoint, optimizer stripped)
PHASE_WEIGHTS_FILE = "weights_{phase}.pt"
METRICS_FILE = "metrics.json"  # {"phases": [{"phase", "epochs", "metrics": {...}}], "final": {...}}
RESULTS_FILE = "results_{phase}.csv"  # Ultralytics' per-epoch results table of each phase

# ---- Detect: per shard, <work>/detect/<fingerprint>/<split>/shard-NNNNN/
BOXES_FILE = "boxes.csv"
BOX_COLUMNS = ("ID", "class", "confidence", "x0", "y0", "x1", "y1")
BOX_DTYPES = {"ID": "str", "class": "int64", "confidence": "float64",
              "x0": "float64", "y0": "float64", "x1": "float64", "y1": "float64"}
DETECT_IMAGES_FILE = "images.csv"
DETECT_IMAGES_COLUMNS = ("ID", "width", "height", "boxes")

OUTPUTS = {
    "YoloExport": f"{IMAGE_FILE}, {LABEL_FILE}, {EXPORT_INDEX_FILE} ({', '.join(EXPORT_INDEX_COLUMNS)})",
    "YoloDataset": f"{DATASET_FILE}, {', '.join(SUBSET_FILES.values())}, {SPLIT_FILE} ({', '.join(SPLIT_COLUMNS)})",
    "TrainYolo": f"{WEIGHTS_FILE}, {METRICS_FILE}, {RESULTS_FILE}",
    "Detect": f"{BOXES_FILE} ({', '.join(BOX_COLUMNS)}; original-image pixels, x = column, y = row), "
    f"{DETECT_IMAGES_FILE} ({', '.join(DETECT_IMAGES_COLUMNS)}; every image of the shard, 0 boxes allowed)",
}


def image_file(image_id: str) -> str:
    return IMAGE_FILE.format(image_id=image_id)


def label_file(image_id: str) -> str:
    return LABEL_FILE.format(image_id=image_id)


def label_path(image_path: str) -> str:
    """The label file of an image path, the way Ultralytics finds it (last /images/ -> /labels/, .txt)."""
    head, sep, tail = image_path.rpartition(f"{IMAGE_DIR}/")
    if not sep:
        raise ValueError(f"{image_path!r} is not under an {IMAGE_DIR}/ folder")
    return f"{head}{LABEL_DIR}/{tail.rsplit('.', 1)[0]}.txt"

"""Pure logic of the detect stage: arrays and tables in, arrays and tables out (no files, no Luigi,
no torch).

Frames: an original field of view is ``H`` rows by ``W`` columns; the detector sees it resized so that
its long side is ``size`` (aspect ratio kept: ``detector_shape``). Boxes are ``(x0, y0, x1, y1)`` with
x = column and y = row, as pixel edges (pixel column i spans [i, i + 1)), so a segment bbox with its
exclusive end is already a box, and scaling a box between frames is a multiplication per axis.
"""

from __future__ import annotations

import dataclasses
import hashlib

import cv2
import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NUM_CLASSES
from stages.detect.contract import BOX_COLUMNS, BOX_DTYPES, SUBSET_FILES

# SPEC 3.7: prediction settings of the original.
CONFIDENCE_THRESHOLD = 0.001
NMS_IOU = 0.5
MAX_DETECTIONS = 300  # per image (YOLOv5's default)

# Phase 1 (basic training): YOLOv5's own recipe, SGD at lr0 0.01 (Ultralytics' "auto" would pick AdamW
# at a tiny rate for short runs, which barely moves a detector trained from scratch).
BASIC_OVERRIDES = {"optimizer": "SGD", "lr0": 0.01}
# Phase 2 (fine-tuning): from phase 1's best weights, SGD at a tenth of that learning rate, no warm-up,
# no mosaic (whole fields of view, as at prediction).
FINETUNE_OVERRIDES = {"optimizer": "SGD", "lr0": 0.001, "lrf": 0.1, "warmup_epochs": 0.0, "mosaic": 0.0}


# ---------------------------------------------------------------------------------------------- images
def detector_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(rows, columns) of the detector image: long side ``size``, aspect ratio kept."""
    if height < 1 or width < 1:
        raise ValueError(f"an image of {width}x{height} pixels has nothing to detect")
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def detector_image(green: np.ndarray, size: int) -> np.ndarray:
    """The green channel as an ``(h, w, 3)`` uint8 image whose long side is ``size``.

    Area interpolation when shrinking (a 2048-px field of view to 512 px would alias otherwise), linear
    when enlarging. cv2 takes the target as (width, height) = (columns, rows).
    """
    green = np.asarray(green)
    if green.ndim != 2 or green.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 green channel, got {green.dtype} {green.shape}")
    rows, cols = detector_shape(*green.shape, size)
    if (rows, cols) != green.shape:
        shrink = rows < green.shape[0]
        green = cv2.resize(green, (cols, rows), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.repeat(green[:, :, None], 3, axis=2)


def encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return data.tobytes()


# ---------------------------------------------------------------------------------------------- labels
def label_lines(bboxes: np.ndarray, labels: list[int], height: int, width: int) -> list[str]:
    """YOLO label lines: one per (cell bounding box, image-level label), SPEC 3.7.

    ``bboxes`` is ``(N, 4)`` as the segment table has it: ``bbox_y0, bbox_x0, bbox_y1, bbox_x1`` (rows and
    columns, end exclusive) in the original image of ``height`` x ``width`` pixels. A line is
    ``class x_centre y_centre box_width box_height`` normalised by the image's width (x) and height (y),
    so it holds for the resized detector image too. No labels or no cells: no lines (a background image).
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    labels = sorted({int(label) for label in labels})
    bad = [label for label in labels if not 0 <= label < NUM_CLASSES]
    if bad:
        raise ValueError(f"labels outside 0..{NUM_CLASSES - 1}: {bad}")
    if len(bboxes) == 0 or not labels:
        return []
    y0, x0, y1, x1 = (np.clip(bboxes[:, i], 0, limit) for i, limit in enumerate((height, width, height, width)))
    if np.any(y1 <= y0) or np.any(x1 <= x0):
        raise ValueError("a bounding box is empty (bbox end is exclusive: y1 > y0 and x1 > x0 expected)")
    centre_x, centre_y = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
    box_w, box_h = (x1 - x0) / width, (y1 - y0) / height
    return [
        f"{label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
        for cx, cy, w, h in zip(centre_x, centre_y, box_w, box_h)
        for label in labels
    ]


def parse_label_lines(text: str) -> np.ndarray:
    """``(N, 5)`` float array ``class cx cy w h`` from a YOLO label file's text (for tests and benches)."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


# ---------------------------------------------------------------------------------------------- dataset
def _rank(image_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def assign_subsets(image_ids, validation_fraction: float, seed: int = 0) -> dict[str, str]:
    """``{ID: "train" | "val"}``: a deterministic pseudo-random split by a hash of (seed, ID).

    An image's subset does not depend on which other images exist beyond the count of validation
    images; with two or more images, at least one is validation and at least one is training. A single
    image is training only (the dataset then validates on it: see ``dataset_yaml``).
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    ids = sorted(set(map(str, image_ids)), key=lambda image_id: _rank(image_id, seed))
    count = len(ids)
    val_count = min(count - 1, max(1, round(validation_fraction * count))) if count >= 2 else 0
    return {image_id: ("val" if index < val_count else "train") for index, image_id in enumerate(ids)}


def dataset_yaml(has_validation: bool) -> dict:
    """The Ultralytics dataset description; paths are relative to the YAML file's own folder."""
    return {
        "train": SUBSET_FILES["train"],
        "val": SUBSET_FILES["val"] if has_validation else SUBSET_FILES["train"],
        "nc": NUM_CLASSES,
        "names": {index: name for index, name in enumerate(CLASS_NAMES)},
    }


# ---------------------------------------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class TrainingPhase:
    name: str  # "basic" or "finetune"
    epochs: int
    overrides: dict  # Ultralytics train() arguments of this phase


def training_phases(
    input_size: int,
    epochs: int,
    finetune_epochs: int,
    batch: int,
    device: str,
    workers: int,
    seed: int = 0,
) -> list[TrainingPhase]:
    """The two-phase recipe: basic training, then (when the zoo gives ``finetune_epochs``) fine-tuning
    from the basic phase's best weights at a lower learning rate (``FINETUNE_OVERRIDES``).

    Every phase trains offline: ``amp=False`` (Ultralytics' AMP check downloads a model), ``plots=False``
    (plots want a font), and the data loader's worker count is the caller's (0 on CPU).
    """
    if epochs < 1:
        raise ValueError(f"the detector needs at least one basic epoch, got {epochs}")
    common = {
        "imgsz": int(input_size),
        "batch": int(batch),
        "device": str(device),
        "workers": int(workers),
        "amp": False,
        "plots": False,
        "seed": int(seed),
        "deterministic": True,
        "exist_ok": True,
        "verbose": False,
        "val": True,
        "cache": False,
    }
    phases = [TrainingPhase("basic", int(epochs), {**common, **BASIC_OVERRIDES, "epochs": int(epochs)})]
    if finetune_epochs > 0:
        phases.append(
            TrainingPhase("finetune", int(finetune_epochs),
                          {**common, **FINETUNE_OVERRIDES, "epochs": int(finetune_epochs)})
        )
    return phases


# ---------------------------------------------------------------------------------------------- prediction
def boxes_to_original(xyxy: np.ndarray, detector_hw: tuple[int, int], original_hw: tuple[int, int]) -> np.ndarray:
    """Boxes from the detector image's frame to the original image's, per axis (x by columns, y by rows),
    clipped to the image."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    (rows, cols), (height, width) = detector_hw, original_hw
    scale = np.array([width / cols, height / rows, width / cols, height / rows])
    limit = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(xyxy * scale, 0, limit)


def boxes_table(image_id: str, xyxy: np.ndarray, classes: np.ndarray, confidences: np.ndarray) -> pd.DataFrame:
    """One image's boxes as rows of the contract's box table."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    classes = np.asarray(classes).astype(np.int64).reshape(-1)
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    if not len(xyxy) == len(classes) == len(confidences):
        raise ValueError(f"{len(xyxy)} boxes, {len(classes)} classes and {len(confidences)} confidences")
    table = pd.DataFrame(
        {
            "ID": [str(image_id)] * len(xyxy),
            "class": classes,
            "confidence": confidences,
            "x0": xyxy[:, 0],
            "y0": xyxy[:, 1],
            "x1": xyxy[:, 2],
            "y1": xyxy[:, 3],
        },
        columns=list(BOX_COLUMNS),
    )
    return table.astype(BOX_DTYPES)


def empty_boxes() -> pd.DataFrame:
    return boxes_table("", np.zeros((0, 4)), np.zeros(0), np.zeros(0))


def concat_boxes(tables: list[pd.DataFrame]) -> pd.DataFrame:
    tables = [table for table in tables if len(table)]
    return pd.concat(tables, ignore_index=True).astype(BOX_DTYPES) if tables else empty_boxes()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of two sets of ``x0 y0 x1 y1`` boxes (for the recall benchmark and tests)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_recall(truth: np.ndarray, predicted: np.ndarray, iou: float = 0.5) -> tuple[int, int]:
    """(found, total): truth boxes with at least one predicted box at IoU >= ``iou`` (class-agnostic)."""
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    if len(truth) == 0:
        return 0, 0
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 4)
    if len(predicted) == 0:
        return 0, len(truth)
    return int((box_iou(truth, predicted).max(axis=1) >= iou).sum()), len(truth)


def export_image(green: np.ndarray, bboxes: np.ndarray, labels: list[int], size: int) -> tuple[bytes, bytes, tuple]:
    """One image of the detector dataset: ``(PNG bytes, label file bytes, index row)``; the index row is
    ``(width, height, detector_width, detector_height, cells, boxes)``."""
    height, width = green.shape
    image = detector_image(green, size)
    lines = label_lines(bboxes, labels, height, width)
    text = "\n".join(lines) + "\n" if lines else ""
    return encode_png(image), text.encode(), (width, height, image.shape[1], image.shape[0], len(bboxes), len(lines))


def dataset_lists(images: pd.DataFrame, validation_fraction: float) -> tuple[dict[str, bytes], pd.DataFrame, dict]:
    """The train/val split of every exported image (``ID, shard, folder``; ``folder`` the shard's folder name
    under the export root): ``({subset: list file bytes}, split table (ID, shard, subset), dataset YAML)``."""
    subset = assign_subsets(images["ID"], validation_fraction, seed=0)
    images = images.assign(subset=images["ID"].map(subset))
    lists = {}
    for name in SUBSET_FILES:
        chosen = images[images["subset"] == name]
        lines = [f"./{folder}/images/{image_id}.png" for folder, image_id in zip(chosen["folder"], chosen["ID"])]
        lists[name] = ("\n".join(lines) + "\n" if lines else "").encode()
    return lists, images[["ID", "shard", "subset"]], dataset_yaml(has_validation=bool((images["subset"] == "val").any()))

"""Straightforward reference implementations, written the way a notebook would, to measure the stages against.

Each computes the same thing as a project function (the benchmark checks the outputs agree) with the
obvious per-cell or per-row code: a full-size mask per cell, a full-image encode per cell, a full-size
IoU per pair of cells, Python loops over table rows. They are deliberately plain, not deliberately slow.
"""

from __future__ import annotations

import base64
import zlib

import cv2
import numpy as np
import pandas as pd
from pycocotools import mask as coco_mask
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed

from stages.classes import CHANNELS, NUM_CLASSES, SCORE_COLUMNS

RED, GREEN, BLUE, YELLOW = (CHANNELS.index(name) for name in ("red", "green", "blue", "yellow"))


def read_field(folder, image_id: str) -> np.ndarray:
    """Four ``cv2.imread`` calls and a stack."""
    planes = [cv2.imread(f"{folder}/{image_id}_{channel}.png", cv2.IMREAD_GRAYSCALE) for channel in CHANNELS]
    return np.dstack(planes)


def segment(field: np.ndarray) -> np.ndarray:
    """Textbook full-resolution seeded watershed: Otsu nuclei on blue, Otsu cytoplasm on red + yellow."""
    blue = cv2.GaussianBlur(field[..., BLUE].astype(np.float32), (0, 0), 4)
    nuclei = ndi.binary_fill_holes(blue > threshold_otsu(blue))
    nuclei = remove_small_objects(nuclei, max_size=2000)
    distance = ndi.distance_transform_edt(nuclei)
    markers, _ = ndi.label(nuclei)
    nuclei = watershed(-distance, markers, mask=nuclei)
    cytoplasm = cv2.GaussianBlur((field[..., RED].astype(np.float32) + field[..., YELLOW]) / 2, (0, 0), 4)
    foreground = (cytoplasm > threshold_otsu(cytoplasm)) | (nuclei > 0)
    return watershed(-cytoplasm, nuclei, mask=foreground).astype(np.uint16)


def _square_resize(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padding = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (image.ndim - 2)
    return cv2.resize(np.pad(image, padding), (size, size), interpolation=cv2.INTER_AREA)


def cell_tiles(field: np.ndarray, cells: np.ndarray, cell_ids, size: int) -> np.ndarray:
    """Per cell: full-size mask, mask the image, crop the mask's bounding box, pad to a square, resize."""
    tiles = []
    for cell_id in cell_ids:
        mask = cells == cell_id
        masked = field[..., [RED, GREEN, BLUE]] * mask[..., None]
        rows, cols = np.where(mask)
        crop = masked[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        tiles.append(_square_resize(crop, size))
    return np.stack(tiles)


def image_on_cell(green: np.ndarray, cells: np.ndarray, cell_ids, size: int) -> np.ndarray:
    """Per cell: the whole green image with everything outside the cell zeroed, padded and resized."""
    return np.stack([_square_resize(np.where(cells == cell_id, green, 0), size) for cell_id in cell_ids])


def encode_cells(cells: np.ndarray, cell_ids) -> dict[int, str]:
    """Per cell: full-size binary mask, pycocotools ``encode``, zlib, base64."""
    out = {}
    for cell_id in cell_ids:
        rle = coco_mask.encode(np.asfortranarray((cells == cell_id).astype(np.uint8)))
        out[int(cell_id)] = base64.b64encode(zlib.compress(rle["counts"], 9)).decode("ascii")
    return out


def fuse(sources: dict[str, list[pd.DataFrame]], weights: dict[str, float]) -> pd.DataFrame:
    """Weighted fusion with per-row loops: a dict of (ID, cell) -> per-source lists of score rows."""
    collected: dict[tuple[str, int], dict[str, list[list[float]]]] = {}
    for source, tables in sources.items():
        for table in tables:
            for _, row in table.iterrows():
                key = (row["ID"], int(row["cell_id"]))
                collected.setdefault(key, {}).setdefault(source, []).append([row[c] for c in SCORE_COLUMNS])
    total = sum(weights.values())
    rows = []
    for (image_id, cell_id), per_source in sorted(collected.items()):
        fused = []
        for klass in range(NUM_CLASSES):
            value = 0.0
            for source, weight in weights.items():
                scores = per_source[source]
                value += weight * sum(score[klass] for score in scores) / len(scores)
            fused.append(value / total)
        rows.append([image_id, cell_id, *fused])
    return pd.DataFrame(rows, columns=["ID", "cell_id", *SCORE_COLUMNS])


def iou_matrix(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per pair of (predicted, truth) cells: full-size masks, intersection over union."""
    n_pred, n_truth = int(pred.max()), int(truth.max())
    iou = np.zeros((n_pred + 1, n_truth + 1))
    truth_masks = {t: truth == t for t in range(1, n_truth + 1)}
    for p in range(1, n_pred + 1):
        pred_mask = pred == p
        for t, truth_mask in truth_masks.items():
            union = np.logical_or(pred_mask, truth_mask).sum()
            if union:
                iou[p, t] = np.logical_and(pred_mask, truth_mask).sum() / union
    return iou


def evaluate(image_ids, pred_labels, truth_labels, truth_cells: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The metric with :func:`iou_matrix` for the overlaps; matching and AP are the project's own
    (``stages.submit.evaluate``), so the two differ only in how the IoUs are found."""
    from stages.submit import evaluate as metric

    evaluation = metric.Evaluation()
    truth_of = {image_id: rows for image_id, rows in truth_cells.groupby("ID")}
    scores_of = {image_id: rows for image_id, rows in scores.groupby("ID")}
    for image_id in image_ids:
        iou = iou_matrix(pred_labels[image_id], truth_labels[image_id])
        truth_ids, truth_classes = metric.truth_class_matrix(truth_of[image_id])
        evaluation.add_table(metric.ImageOverlap(iou[:, truth_ids], truth_ids, truth_classes), scores_of[image_id])
    return evaluation.result()

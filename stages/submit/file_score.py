"""Scoring a written submission file against per-cell truth, its masks compared as COCO RLEs (no mask is
decoded): the check that the file itself, as Kaggle would read it, scores what the fused tables score."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from pycocotools import mask as coco_mask

from stages.submit.contract import IOU_THRESHOLD
from stages.submit.encoding import cell_rle_counts
from stages.submit.evaluate import Evaluation, ImageOverlap, rows_by_image, truth_class_matrix, truth_rows_of


def truth_rles(truth_labels: np.ndarray, truth_ids: np.ndarray) -> list[dict]:
    """COCO RLEs of the given truth cells (a cell without pixels gets an empty mask), one pass."""
    height, width = np.asarray(truth_labels).shape
    counts = cell_rle_counts(truth_labels)
    empty = np.array([height * width])
    objects = [{"size": [height, width], "counts": counts.get(int(cell_id), empty)} for cell_id in truth_ids]
    return coco_mask.frPyObjects(objects, height, width) if objects else []


def rle_overlap(
    pred_rles: list[dict], truth_labels: np.ndarray, truth_cells: Mapping[int, Iterable[int]] | pd.DataFrame
) -> ImageOverlap:
    """Overlap of possibly overlapping predicted masks (COCO RLEs) with the truth (keys = list index)."""
    ids, classes = truth_class_matrix(truth_cells)
    iou = np.zeros((len(pred_rles), ids.size))
    if len(pred_rles) and ids.size:
        iou = np.asarray(coco_mask.iou(pred_rles, truth_rles(truth_labels, ids), [0] * ids.size), dtype=np.float64)
    return ImageOverlap(iou.reshape(len(pred_rles), ids.size), ids, classes)


def evaluate_submission(
    submission: pd.DataFrame,
    truth_labels: Mapping[str, np.ndarray],
    truth_cells: pd.DataFrame,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict:
    """Score a Kaggle submission table (``ID, ImageWidth, ImageHeight, PredictionString``) against the
    truth, masks compared as RLEs (no mask is decoded). Every submission image needs a truth label image
    and truth rows (:class:`MissingTruth` otherwise, as in :func:`evaluate_sources`). Returns
    :meth:`Evaluation.result`: the challenge and strict mAP, and the per-cell macro ROC-AUC, each truth cell
    paired with the mask (identical mask texts are one mask) of best RLE IoU."""
    truth_of = rows_by_image(truth_cells)
    evaluation = Evaluation(iou_threshold)
    for row in submission.itertuples(index=False):
        image_id = str(row.ID)
        truth = np.asarray(truth_labels[image_id])
        height, width = int(row.ImageHeight), int(row.ImageWidth)
        if truth.shape != (height, width):
            raise ValueError(f"image {image_id}: submission says {width}x{height}, truth is {truth.shape[1]}x{truth.shape[0]}")
        tokens = row.PredictionString.split() if isinstance(row.PredictionString, str) else []
        if len(tokens) % 3:
            raise ValueError(f"image {image_id}: a PredictionString holds triples, got {len(tokens)} tokens")
        masks: dict[str, int] = {}
        keys = [masks.setdefault(text, len(masks)) for text in tokens[2::3]]
        rles = [
            {"size": [height, width], "counts": zlib.decompress(base64.b64decode(text))} for text in masks
        ]
        overlap = rle_overlap(rles, truth, truth_rows_of(truth_of, image_id))
        evaluation.add(overlap, keys, [int(token) for token in tokens[0::3]], [float(token) for token in tokens[1::3]])
    return evaluation.result()

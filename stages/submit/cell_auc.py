"""Per-cell macro ROC-AUC (SPEC 2, "Measures for users beyond the challenge").

Each truth cell is paired with the predicted mask of best IoU with it, if that IoU is >= :data:`PAIR_IOU`
(0.5); the cell's confidence for class c is the paired mask's confidence for c (a class the prediction
does not give that mask scores 0), and an unpaired truth cell scores 0 for every class. Over all truth
cells of all images, class c's ROC-AUC (Mann-Whitney, ties counted half: :func:`stages.classify.data.roc_auc`)
ranks the cells having c against the cells lacking it, across images: unlike the challenge mAP, a high
score for c in an image without c costs here. The macro AUC is the mean over the classes that have both
positive and negative truth cells; how many that is is reported beside it.

Pure numpy on an overlap's arrays (``iou`` (K, T), ``truth_classes`` (T, 19)); it imports nothing of
:mod:`stages.submit.evaluate`, which uses it. Memory: 19 confidences and 19 flags per truth cell.
"""

from __future__ import annotations

import numpy as np

from stages.classes import NUM_CLASSES
from stages.classify.data import per_class_auc

PAIR_IOU = 0.5  # a truth cell takes the confidences of its best-IoU predicted mask when that IoU is >= this


def mask_confidences(keys, classes, confidences) -> tuple[np.ndarray, np.ndarray]:
    """Prediction triples as ``(mask keys (U,), confidences (U, 19))``: one row per distinct key, a class
    the triples do not give a mask scoring 0, a class given twice its highest confidence."""
    keys = np.asarray(keys, dtype=np.int64).ravel()
    classes = np.asarray(classes, dtype=np.int64).ravel()
    confidences = np.asarray(confidences, dtype=np.float64).ravel()
    unique, row = np.unique(keys, return_inverse=True)
    table = np.full((unique.size, NUM_CLASSES), -np.inf)
    np.maximum.at(table, (row, classes), confidences)
    table[np.isneginf(table)] = 0.0
    return unique, table


def paired_confidences(iou: np.ndarray, keys, classes, confidences, min_iou: float = PAIR_IOU):
    """``(confidences (T, 19), paired (T,) bool)`` of an image's truth cells: ``iou[k, j]`` is the IoU of
    prediction key k with truth cell j (keys beyond its rows have IoU 0); the triples as in
    :func:`mask_confidences`. Of masks with equal best IoU, the one of the lowest key is taken."""
    iou = np.asarray(iou, dtype=np.float64)
    n_truth = iou.shape[1]
    unique, table = mask_confidences(keys, classes, confidences)
    if unique.size == 0 or n_truth == 0:
        return np.zeros((n_truth, NUM_CLASSES)), np.zeros(n_truth, dtype=bool)
    inside = (unique >= 0) & (unique < iou.shape[0])
    candidates = np.where(inside[:, None], iou[np.where(inside, unique, 0)], 0.0)  # (U, T)
    best = candidates.argmax(axis=0)
    paired = candidates[best, np.arange(n_truth)] >= min_iou
    return np.where(paired[:, None], table[best], 0.0), paired


def macro_auc(truth: np.ndarray, scores: np.ndarray) -> tuple[float | None, list[float | None]]:
    """``(mean AUC or None, per-class AUC or None)`` of ``(N, 19)`` truth flags and scores; a class
    without both positive and negative cells has no AUC and is left out of the mean."""
    truth = np.asarray(truth, dtype=bool).reshape(-1, NUM_CLASSES)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, NUM_CLASSES)
    aucs = per_class_auc(truth, scores) if truth.shape[0] else {}
    per_class = [aucs.get(klass) for klass in range(NUM_CLASSES)]
    return (float(np.mean(list(aucs.values()))) if aucs else None), per_class


class CellScores:
    """Accumulates, image by image, every truth cell's classes and paired confidences; then :meth:`result`."""

    def __init__(self, min_iou: float = PAIR_IOU):
        self.min_iou = float(min_iou)
        self._truth: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self.paired = 0

    def add(self, iou: np.ndarray, truth_classes: np.ndarray, keys, classes, confidences) -> None:
        scores, paired = paired_confidences(iou, keys, classes, confidences, self.min_iou)
        self._truth.append(np.asarray(truth_classes, dtype=bool).reshape(-1, NUM_CLASSES))
        self._scores.append(scores)
        self.paired += int(paired.sum())

    def result(self) -> dict:
        """``cell_auc`` (None when no class has both kinds of cell), ``cell_auc_classes``, ``truth_cells``
        (all of them), ``paired_cells`` (those with a mask at IoU >= min_iou) and ``per_class`` (19 AUCs or
        None)."""
        truth = np.concatenate(self._truth) if self._truth else np.zeros((0, NUM_CLASSES), dtype=bool)
        scores = np.concatenate(self._scores) if self._scores else np.zeros((0, NUM_CLASSES))
        mean, per_class = macro_auc(truth, scores)
        return {"cell_auc": mean, "cell_auc_classes": sum(value is not None for value in per_class),
                "truth_cells": int(truth.shape[0]), "paired_cells": self.paired, "per_class": per_class}

"""The challenge metric (SPEC 2): mAP over the 19 classes at mask IoU >= 0.6, Open Images style; beside it
the strict mAP and the per-cell macro ROC-AUC (SPEC 2, measures for users beyond the challenge).

For each class c, following the Open Images challenge evaluator (TF object detection API,
``OpenImagesInstanceSegmentationChallengeEvaluator``) as the host used it:

- Only images whose truth has c among its cells' labels (the image's labels) are evaluated for c: a
  prediction of c anywhere else is ignored, neither true nor false positive.
- In such an image, predictions of c are taken in descending confidence; one is a true positive when its
  mask IoU with a not-yet-matched truth cell of class c is >= the threshold (that cell is then matched),
  otherwise a false positive; a second prediction on an already matched cell is a false positive. Truth
  cells never overlap, so at a threshold above 0.5 at most one truth cell can qualify for a prediction:
  the evaluator's rule (take the best-IoU truth cell of c; if it is already matched, false positive) and
  "any unmatched truth cell with IoU >= threshold" give the same answer.
- All images' predictions of c are pooled and sorted by descending confidence (ties keep the order in
  which images were added, then descending confidence within the image, stable); precision and recall
  (over every truth cell of c) follow, and AP is the area under the all-point interpolated precision
  envelope. A class with truth but no counted prediction has AP 0; a class with no truth cell has no AP
  and is left out of the mean.
- The strict mAP is the same computation with every image evaluated for every class: a prediction of c
  in an image without c is a false positive. The per-cell macro ROC-AUC: :mod:`stages.submit.cell_auc`.

Two ways in, one metric:

- label images (the pipeline's own cells, :func:`evaluate_sources`): the IoUs of all predicted cells with all
  truth cells of an image come from one joint histogram (``bincount`` of ``pred * K + truth``), never
  from per-pair masks, and are reused for every score table of an ablation;
- a submission table (:func:`evaluate_submission`): predicted masks may overlap or repeat, so IoUs are
  computed on the RLEs themselves (``pycocotools.mask.iou``), without decoding a mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.submit.cell_auc import CellScores
from stages.submit.contract import IOU_THRESHOLD


def iou_matrix(pred_labels: np.ndarray, truth_labels: np.ndarray) -> np.ndarray:
    """``iou[p, t]`` for every label id p of the prediction and t of the truth, from one joint histogram.

    Row and column 0 (background) are 0; ids without pixels have IoU 0 with everything.
    Shape ``(max pred id + 1, max truth id + 1)``.
    """
    pred = np.asarray(pred_labels)
    truth = np.asarray(truth_labels)
    if pred.ndim != 2 or pred.shape != truth.shape:
        raise ValueError(f"predicted and truth label images differ in shape: {pred.shape} vs {truth.shape}")
    for name, image in (("predicted", pred), ("truth", truth)):
        if not np.issubdtype(image.dtype, np.integer):
            raise ValueError(f"the {name} label image must hold integers, got {image.dtype}")
        if image.size and image.min() < 0:
            raise ValueError(f"the {name} label image holds negative ids")
    n_pred = int(pred.max(initial=0)) + 1
    n_truth = int(truth.max(initial=0)) + 1
    joint = pred.astype(np.int64).ravel() * n_truth + truth.astype(np.int64).ravel()
    hist = np.bincount(joint, minlength=n_pred * n_truth).reshape(n_pred, n_truth)
    union = hist.sum(axis=1)[:, None] + hist.sum(axis=0)[None, :] - hist
    iou = np.divide(hist, union, out=np.zeros(hist.shape), where=union > 0)
    iou[0, :] = 0.0
    iou[:, 0] = 0.0
    return iou


def truth_class_matrix(truth_cells: Mapping[int, Iterable[int]] | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Truth cells' classes as ``(ids (T,), (T, 19) bool)``, from ``{cell_id: [classes]}`` or one image's
    rows of a truth/cells.csv table (``cell_id, Label`` with Label like ``"0|5"``)."""
    if isinstance(truth_cells, pd.DataFrame):
        pairs = list(zip(truth_cells["cell_id"].astype(np.int64), truth_cells["Label"].fillna("").astype(str)))
        if len({cell_id for cell_id, _ in pairs}) != len(pairs):
            raise ValueError("a truth cell is listed twice")
        truth_cells = {int(cell_id): parse_labels(label) for cell_id, label in pairs}
    ids = np.array(sorted(int(cell_id) for cell_id in truth_cells), dtype=np.int64)
    if ids.size and ids[0] < 1:
        raise ValueError(f"truth cell ids start at 1 (0 is background), got {ids[0]}")
    classes = np.zeros((ids.size, NUM_CLASSES), dtype=bool)
    for row, cell_id in enumerate(ids.tolist()):
        for klass in truth_cells[cell_id]:
            if not 0 <= int(klass) < NUM_CLASSES:
                raise ValueError(f"truth cell {cell_id}: class {klass} outside 0..{NUM_CLASSES - 1}")
            classes[row, int(klass)] = True
    return ids, classes


def _pick(matrix: np.ndarray, ids: np.ndarray, axis: int) -> np.ndarray:
    """Rows (axis 0) or columns (axis 1) of ``matrix`` for ``ids``; ids beyond it give zeros."""
    ids = np.asarray(ids, dtype=np.int64)
    inside = (ids >= 0) & (ids < matrix.shape[axis])
    return np.take(matrix, np.where(inside, ids, 0), axis=axis) * np.expand_dims(inside, 1 - axis)


@dataclasses.dataclass(frozen=True)
class ImageOverlap:
    """One image's IoUs and truth classes: what the metric needs besides the predictions' scores.

    ``iou[k, j]``: IoU of prediction key k (a predicted cell id, or a mask's index) with truth cell
    ``truth_ids[j]``; keys beyond the rows have IoU 0. Computed once, reused for every score table.
    """

    iou: np.ndarray  # (K, T)
    truth_ids: np.ndarray  # (T,)
    truth_classes: np.ndarray  # (T, NUM_CLASSES) bool

    @property
    def image_classes(self) -> np.ndarray:
        """(NUM_CLASSES,) bool: the image's labels, the union of its truth cells' classes."""
        return self.truth_classes.any(axis=0)


def image_overlap(
    pred_labels: np.ndarray, truth_labels: np.ndarray, truth_cells: Mapping[int, Iterable[int]] | pd.DataFrame
) -> ImageOverlap:
    """Overlap of a predicted label image with the truth (keys = predicted cell ids)."""
    ids, classes = truth_class_matrix(truth_cells)
    return ImageOverlap(_pick(iou_matrix(pred_labels, truth_labels), ids, 1), ids, classes)


def match_image(
    overlap: ImageOverlap, keys, classes, confidences, iou_threshold: float = IOU_THRESHOLD, strict: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class: ``(confidences, is_true_positive)`` of this image's predictions of it that count.

    Predictions are triples given as three (N,) arrays: the mask's key in ``overlap.iou``, the class, the
    confidence. Classes absent from the image's labels get empty arrays (their predictions are ignored),
    unless ``strict``: then their predictions count, every one a false positive.
    """
    keys = np.asarray(keys, dtype=np.int64).ravel()
    classes = np.asarray(classes, dtype=np.int64).ravel()
    confidences = np.asarray(confidences, dtype=np.float64).ravel()
    if not keys.size == classes.size == confidences.size:
        raise ValueError("keys, classes and confidences differ in length")
    if classes.size and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        raise ValueError(f"predicted classes must lie in 0..{NUM_CLASSES - 1}")
    present = np.ones(NUM_CLASSES, dtype=bool) if strict else overlap.image_classes
    empty = (np.zeros(0), np.zeros(0, dtype=bool))
    out = []
    for klass in range(NUM_CLASSES):
        chosen = np.flatnonzero(classes == klass) if present[klass] else np.zeros(0, dtype=np.int64)
        if chosen.size == 0:
            out.append(empty)
            continue
        chosen = chosen[np.argsort(-confidences[chosen], kind="stable")]
        candidates = _pick(overlap.iou, keys[chosen], 0)[:, overlap.truth_classes[:, klass]]  # (n, T_c)
        tp = np.zeros(chosen.size, dtype=bool)
        if candidates.shape[1]:
            best = candidates.argmax(axis=1)
            good = candidates[np.arange(chosen.size), best] >= iou_threshold
            matched = np.zeros(candidates.shape[1], dtype=bool)
            for rank in np.flatnonzero(good).tolist():
                if not matched[best[rank]]:
                    matched[best[rank]] = True
                    tp[rank] = True
        out.append((confidences[chosen], tp))
    return out


def average_precision(confidences, is_tp, n_truth: int) -> float:
    """All-point interpolated AP of pooled predictions of one class; NaN when the class has no truth."""
    if n_truth <= 0:
        return float("nan")
    confidences = np.asarray(confidences, dtype=np.float64)
    is_tp = np.asarray(is_tp, dtype=bool)
    if confidences.size == 0:
        return 0.0
    order = np.argsort(-confidences, kind="stable")
    tp = np.cumsum(is_tp[order])
    fp = np.cumsum(~is_tp[order])
    recall = np.concatenate(([0.0], tp / n_truth, [1.0]))
    precision = np.concatenate(([0.0], tp / (tp + fp), [0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at >= recall
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


class Evaluation:
    """Accumulates images one at a time (so nothing holds every label image), then :meth:`result`."""

    def __init__(self, iou_threshold: float = IOU_THRESHOLD):
        self.iou_threshold = float(iou_threshold)
        # per class, per image: (confidences, is_tp, counted by the challenge) of every prediction, matched strictly
        empty = (np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
        self._matched: list[list[tuple[np.ndarray, ...]]] = [[empty] for _ in range(NUM_CLASSES)]
        self._n_truth = np.zeros(NUM_CLASSES, dtype=np.int64)
        self.cells = CellScores()
        self.images = 0

    def add(self, overlap: ImageOverlap, keys, classes, confidences) -> None:
        """One image: its overlap and its prediction triples (see :func:`match_image`)."""
        matched = match_image(overlap, keys, classes, confidences, self.iou_threshold, strict=True)
        for klass, ((confidence, tp), counted) in enumerate(zip(matched, overlap.image_classes.tolist())):
            self._matched[klass].append((confidence, tp, np.full(tp.size, counted)))
        self.cells.add(overlap.iou, overlap.truth_classes, keys, classes, confidences)
        self._n_truth += overlap.truth_classes.sum(axis=0)
        self.images += 1

    def add_scores(self, overlap: ImageOverlap, cell_ids, scores) -> None:
        """One image from its predicted cells: (P,) cell ids and (P, 19) confidences, all 19 classes each."""
        cell_ids = np.asarray(cell_ids, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64).reshape(cell_ids.size, NUM_CLASSES)
        keys = np.repeat(cell_ids, NUM_CLASSES)
        classes = np.tile(np.arange(NUM_CLASSES), cell_ids.size)
        self.add(overlap, keys, classes, scores.ravel())

    def add_rows(self, overlap: ImageOverlap, rows: pd.DataFrame | None) -> None:
        """One image's rows of a score table; ``None``: the source predicted nothing for the image."""
        if rows is None:
            self.add(overlap, [], [], [])
        else:
            self.add_table(overlap, rows)

    def add_table(self, overlap: ImageOverlap, scores: pd.DataFrame) -> None:
        """One image from its rows of a score table (``cell_id`` + SCORE_COLUMNS)."""
        self.add_scores(overlap, scores["cell_id"].to_numpy(), scores[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64))

    def result(self) -> dict:
        """JSON-able: ``mAP`` and ``strict_mAP`` (None when no class has truth), :meth:`CellScores.result`'s keys
        (``cell_auc``, ``cell_auc_classes``, ...), ``classes_evaluated``, ``images``, ``iou_threshold`` and
        ``per_class[str(index)] = {name, AP and strict_ap (None without truth), cell_auc (None without both kinds
        of truth cell), truth_cells, predictions (counted ones), strict_predictions, true_positives}``."""
        cells, per_class = self.cells.result(), {}
        for klass in range(NUM_CLASSES):
            n_truth = int(self._n_truth[klass])
            confidence, tp, counted = (np.concatenate(part) for part in zip(*self._matched[klass]))
            ap = average_precision(confidence[counted], tp[counted], n_truth)
            strict_ap = average_precision(confidence, tp, n_truth)  # absent classes add false positives only
            per_class[str(klass)] = {
                "name": CLASS_NAMES[klass], "AP": ap if n_truth else None, "strict_ap": strict_ap if n_truth else None,
                "cell_auc": cells["per_class"][klass], "truth_cells": n_truth, "predictions": int(counted.sum()),
                "strict_predictions": int(confidence.size), "true_positives": int(tp.sum()),
            }
        aps = [entry["AP"] for entry in per_class.values() if entry["truth_cells"]]
        strict_aps = [entry["strict_ap"] for entry in per_class.values() if entry["truth_cells"]]
        return {"mAP": float(np.mean(aps)) if aps else None, "strict_mAP": float(np.mean(strict_aps)) if aps else None,
                **{key: value for key, value in cells.items() if key != "per_class"}, "classes_evaluated": len(aps),
                "images": self.images, "iou_threshold": self.iou_threshold, "per_class": per_class}


class MissingTruth(ValueError):
    """An evaluated image without truth rows: scored against nothing, a wrong truth folder would hide
    behind a plausible mAP."""


def rows_by_image(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(image_id): rows for image_id, rows in table.groupby(table["ID"].astype(str), sort=False)}


def truth_rows_of(truth_of: Mapping[str, pd.DataFrame], image_id: str) -> pd.DataFrame:
    if image_id not in truth_of:
        raise MissingTruth(f"image {image_id}: no truth cells in the truth table")
    return truth_of[image_id]


def evaluate_sources(
    images: Iterable[tuple[str, np.ndarray, np.ndarray]],
    tables: Mapping[str, pd.DataFrame],
    truth_cells: pd.DataFrame,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict[str, dict]:
    """Every score table over the same images (an ablation), each image's IoUs computed once.

    ``images``: ``(image ID, predicted labels, truth labels)`` in evaluation order, consumed one at a time
    (a generator that reads each pair when asked keeps one image in memory); ``tables``: name -> score table
    ``ID, cell_id`` + SCORE_COLUMNS; ``truth_cells``: truth/cells.csv (``ID, cell_id, Label``). Returns name
    -> :meth:`Evaluation.result`, in ``tables``' order. An image without score rows in a table predicts
    nothing there (its truth cells count as missed); an image without truth rows raises :class:`MissingTruth`.
    """
    evaluations = {name: Evaluation(iou_threshold) for name in tables}
    rows_of = {name: rows_by_image(table) for name, table in tables.items()}
    truth_of = rows_by_image(truth_cells)
    for image_id, pred, truth in images:
        image_id = str(image_id)
        overlap = image_overlap(pred, truth, truth_rows_of(truth_of, image_id))
        for name, evaluation in evaluations.items():
            evaluation.add_rows(overlap, rows_of[name].get(image_id))
    return {name: evaluation.result() for name, evaluation in evaluations.items()}


def evaluate(
    image_ids: Iterable[str],
    pred_labels: Mapping[str, np.ndarray],
    truth_labels: Mapping[str, np.ndarray],
    truth_cells: pd.DataFrame,
    scores: pd.DataFrame | Mapping[str, pd.DataFrame],
    iou_threshold: float = IOU_THRESHOLD,
) -> dict:
    """:func:`evaluate_sources` with the label images looked up by ID in two Mappings (lazy ones work);
    ``scores`` one table (returns its result) or name -> table (returns name -> result)."""
    single = isinstance(scores, pd.DataFrame)
    tables = {"scores": scores} if single else dict(scores)
    images = ((image_id, pred_labels[image_id], truth_labels[image_id]) for image_id in map(str, image_ids))
    results = evaluate_sources(images, tables, truth_cells, iou_threshold)
    return results["scores"] if single else results

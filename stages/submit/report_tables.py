"""The report's tables (pure: score tables, label images and result dicts in, HTML text out).

Every table names classes as ``"<index> <name>"`` (:func:`class_name`): per image the top classes of each
cell beside the truth where it is known; the ablation (each source alone against the fusion, with the
strict mAP and the per-cell AUC where the evaluation has them); the per-class AP.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.submit.evaluate import iou_matrix
from stages.submit.summary import score_text

PAIR_IOU = 0.5  # a predicted cell takes the truth of the truth cell it overlaps by at least this IoU
HIT = "&#10003;"  # the check mark beside a predicted class the truth has
# Optional result keys (the user-facing measures of SPEC 2) and their column titles, in column order.
MEASURES = (("mAP", "mAP (challenge)"), ("strict_mAP", "strict mAP"), ("cell_auc", "per-cell AUC"))


def class_name(klass: int) -> str:
    """``"16 Cytosol"``: the index the files use and the name a reader knows."""
    return f"{klass} {CLASS_NAMES[klass]}"


def class_list(classes: Sequence[int] | None) -> str:
    """Escaped, comma-separated class names; "none" for no class."""
    return ", ".join(html.escape(class_name(k)) for k in classes) if classes else "none"


def top_classes(scores: pd.DataFrame, k: int = 2) -> dict[int, list[tuple[int, float]]]:
    """Per cell of one image's score rows, its ``k`` best ``(class, score)`` pairs, best first."""
    values = scores[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return {
        int(cell_id): [(int(klass), float(row[klass])) for klass in best]
        for cell_id, row, best in zip(scores["cell_id"].to_numpy(), values, order)
    }


def image_top(scores: pd.DataFrame, k: int = 3) -> list[tuple[int, float]]:
    """One image's ``k`` best classes by their highest score over its cells, best first (none without cells)."""
    if scores.empty:
        return []
    best = scores[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64).max(axis=0)
    return [(int(klass), float(best[klass])) for klass in np.argsort(-best, kind="stable")[:k]]


def pair_truth(cells: np.ndarray, truth_labels: np.ndarray, truth_rows: pd.DataFrame,
               min_iou: float = PAIR_IOU) -> dict[int, tuple[int, list[int]]]:
    """Predicted cell id -> ``(truth cell id, its classes)`` for every predicted cell whose best-overlapping
    truth cell has IoU >= ``min_iou`` (at most one can, above 0.5). ``truth_rows``: this image's rows of a
    truth cells.csv (``cell_id``, ``Label``)."""
    iou = iou_matrix(cells, truth_labels)
    labels = {int(cell_id): parse_labels(label)
              for cell_id, label in zip(truth_rows["cell_id"], truth_rows["Label"].fillna("").astype(str))}
    pairs = {}
    for cell_id in range(1, iou.shape[0]):
        best = int(iou[cell_id].argmax())
        if best and iou[cell_id, best] >= min_iou:
            pairs[cell_id] = (best, labels.get(best, []))
    return pairs


def scored(klass: int, score: float, truth: Sequence[int] | None) -> str:
    hit = truth is not None and klass in truth
    mark = f" <span class='hit'>{HIT}</span>" if hit else ""
    return f"<td{' class=hit' if hit else ''}>{html.escape(class_name(klass))} <small>{score:.2f}</small>{mark}</td>"


def cell_table(top: Mapping[int, Sequence[tuple[int, float]]], image_best: Sequence[tuple[int, float]],
               image_truth: Sequence[int] | None = None,
               cell_truth: Mapping[int, tuple[int, Sequence[int]]] | None = None) -> str:
    """One image's table: a row for the image (its best classes over all cells, beside its truth labels),
    then a row per cell (id, its top classes with fused scores, beside its paired truth cell's classes).
    A check mark flags a predicted class the truth has (the paired cell's, else the image's)."""
    k = max([len(best) for best in top.values()] + [len(image_best), 1])
    truth_known = image_truth is not None or cell_truth is not None
    head = "".join(f"<th>#{rank}</th>" for rank in range(1, k + 1))
    truth_head = "<th>truth</th>" if truth_known else ""
    rows = ["<tr class='image-row'><th>image</th>"
            + "".join(scored(klass, score, image_truth) for klass, score in image_best)
            + "<td></td>" * (k - len(image_best))
            + (f"<td class='truth'>{class_list(image_truth)}</td>" if truth_known else "") + "</tr>"]
    for cell_id in sorted(top):
        paired = cell_truth.get(cell_id) if cell_truth is not None else None
        truth = paired[1] if paired else (None if cell_truth is not None else image_truth)
        if cell_truth is None:
            truth_cell = "<td class='truth'></td>" if truth_known else ""
        elif paired:
            truth_cell = f"<td class='truth'>{class_list(paired[1])} <small>(truth cell {paired[0]})</small></td>"
        else:
            truth_cell = f"<td class='truth'><small>no truth cell at IoU &ge; {PAIR_IOU:g}</small></td>"
        rows.append(f"<tr><th>{cell_id}</th>" + "".join(scored(klass, score, truth) for klass, score in top[cell_id])
                    + "<td></td>" * (k - len(top[cell_id])) + truth_cell + "</tr>")
    return (f"<table class='cells'><thead><tr><th>cell</th>{head}{truth_head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def measure_text(result: Mapping, key: str) -> str:
    if key not in result:
        return "&ndash;"
    text = score_text(result[key])
    if key == "cell_auc" and result.get("cell_auc_classes") is not None:
        classes = result["cell_auc_classes"]
        count = classes if isinstance(classes, int) else len(classes)
        text += f" <small>({count} classes)</small>"
    return text


def ablation_table(results: Mapping[str, Mapping], notes: Mapping[str, str] | None = None) -> str:
    """One row per result (the fusion, each source alone, the written file): the challenge mAP, the strict
    mAP and per-cell AUC where any result has them, the classes evaluated and a note (HTML) per row."""
    notes = notes or {}
    measures = [(key, title) for key, title in MEASURES if key == "mAP" or any(key in r for r in results.values())]
    head = "".join(f"<th>{title}</th>" for _, title in measures)
    rows = []
    for name, result in results.items():
        values = "".join(f"<td><b>{measure_text(result, key)}</b></td>" if key == "mAP"
                         else f"<td>{measure_text(result, key)}</td>" for key, _ in measures)
        rows.append(f"<tr><th>{html.escape(name)}</th>{values}<td>{result['classes_evaluated']}</td>"
                    f"<td class='note'>{notes.get(name, '')}</td></tr>")
    return (f"<table class='ablation'><thead><tr><th>scores</th>{head}<th>classes</th><th>note</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def per_class_table(results: Mapping[str, Mapping]) -> str:
    """One row per class (index and name, truth cells), one AP column per result, then the first result's
    strict AP and per-cell AUC where its evaluation has them; blank where a class has no value."""
    names = list(results)
    first_name, first = next(iter(results.items()))
    extra = [(key, f"{first_name} {title}") for key, title in (("strict_ap", "strict AP"), ("cell_auc", "per-cell AUC"))
             if any(key in entry for entry in first["per_class"].values())]
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names + [title for _, title in extra])
    rows = []
    for klass in range(NUM_CLASSES):
        entry = first["per_class"][str(klass)]
        values = [results[name]["per_class"][str(klass)]["AP"] for name in names] + [entry.get(key) for key, _ in extra]
        cells = "".join(f"<td>{'' if value is None else f'{value:.3f}'}</td>" for value in values)
        rows.append(f"<tr><td>{klass}</td><th class='name'>{html.escape(CLASS_NAMES[klass])}</th>"
                    f"<td>{entry.get('truth_cells', '')}</td>{cells}</tr>")
    return (f"<table class='per-class'><thead><tr><th>#</th><th>class</th><th>truth cells</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")

"""Pseudo labels for cell tiles (SPEC 3.4): the fold split and the threshold rule, pure numpy and pandas.

The training images are split into folds (two in the original); a cell model trained on the other folds
predicts every tile of a fold, so each tile gets an out-of-fold probability ``p_c`` per class. Then, per tile:

1. every class ``c`` in 0..17 with ``p_c > positive_threshold`` (0.8) goes into the tile's list;
2. if the list is still empty and ``p_18 > negative_threshold`` (0.2), the tile gets class 18 (Negative);
3. a tile whose list is still empty is dropped (no reliable label).

The published write-up lists steps i) and ii) and then jumps to v): the middle of the rule was lost. Its
step ii) reads "if confidence value < 0.2 ... we will put class 18 into class list"; the SPEC settles it as
step 2 above (Negative only when no positive class was found and the Negative probability is above the
lower threshold). Both thresholds are settings of the zoo profile (``pseudo_label``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NEGATIVE, NUM_CLASSES, SCORE_COLUMNS, format_labels, parse_labels

if TYPE_CHECKING:  # the zoo's settings type; imported for the annotation only, the rule reads four attributes
    from stages.zoo import PseudoLabelSettings

LABEL_COLUMNS = ("ID", "cell_id", "split", "Label")


def assign_folds(image_ids: Sequence[str], folds: int, seed: int = 0) -> dict[str, int]:
    """Every image ID to a fold in ``0..folds-1``: a seeded shuffle of the sorted IDs dealt round-robin, so
    the folds differ in size by one image at most and the split depends only on the IDs and the seed."""
    if folds < 2:
        raise ValueError(f"pseudo labelling needs at least 2 folds, got {folds}")
    unique = np.array(sorted(set(map(str, image_ids))), dtype=object)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} image(s) cannot be split into {folds} folds")
    shuffled = np.random.default_rng(seed).permutation(unique)
    return {str(image_id): index % folds for index, image_id in enumerate(shuffled)}


def pseudo_label_lists(probabilities: np.ndarray, positive_threshold: float = 0.8,
                       negative_threshold: float = 0.2) -> list[list[int]]:
    """The rule on ``(N, 19)`` out-of-fold probabilities: one class list per tile (empty = drop the tile)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(f"expected (N, {NUM_CLASSES}) probabilities, got shape {probabilities.shape}")
    if not 0.0 <= negative_threshold <= 1.0 or not 0.0 <= positive_threshold <= 1.0:
        raise ValueError(f"thresholds must lie in [0, 1], got {positive_threshold} and {negative_threshold}")
    positive = probabilities[:, :NEGATIVE] > positive_threshold
    negative = ~positive.any(axis=1) & (probabilities[:, NEGATIVE] > negative_threshold)
    return [[NEGATIVE] if is_negative else np.flatnonzero(row).tolist() for row, is_negative in zip(positive, negative)]


def pseudo_label_table(scores: pd.DataFrame, positive_threshold: float = 0.8,
                       negative_threshold: float = 0.2) -> pd.DataFrame:
    """Out-of-fold score rows (``ID, cell_id, [split,] class_0 .. class_18``) -> the kept tiles with their
    pseudo label: ``ID, cell_id, split, Label`` (``"0|16"``, ``"18"``); tiles with an empty list are dropped."""
    missing = [column for column in ("ID", "cell_id", *SCORE_COLUMNS) if column not in scores.columns]
    if missing:
        raise ValueError(f"out-of-fold scores lack column(s) {missing}")
    lists = pseudo_label_lists(scores[list(SCORE_COLUMNS)].to_numpy(), positive_threshold, negative_threshold)
    table = pd.DataFrame({
        "ID": scores["ID"].astype(str).to_numpy(),
        "cell_id": scores["cell_id"].astype(np.int64).to_numpy(),
        "split": scores["split"].astype(str).to_numpy() if "split" in scores.columns else "train",
        "Label": [format_labels(classes) for classes in lists],
    })
    kept = np.array([bool(classes) for classes in lists], dtype=bool)
    return table.loc[kept, list(LABEL_COLUMNS)].reset_index(drop=True)


def pseudo_label_summary(scores: pd.DataFrame, labels: pd.DataFrame, rule: PseudoLabelSettings) -> dict:
    """The stage's ``summary.json``: how many out-of-fold tiles (``scores``' rows) the rule kept and dropped
    (``labels``: :func:`pseudo_label_table` of them), under which settings (``rule``: the profile's
    ``pseudo_label`` block), and how many kept tiles carry each class, keyed ``"<index> <name>"`` so the file
    reads without the class table at hand."""
    counts = np.zeros(NUM_CLASSES, np.int64)
    for label in labels["Label"]:
        counts[parse_labels(label)] += 1
    return {
        "tiles": int(len(scores)), "kept": int(len(labels)), "dropped": int(len(scores) - len(labels)),
        "positive_threshold": rule.positive_threshold, "negative_threshold": rule.negative_threshold,
        "folds": rule.folds, "model": rule.model,
        "tiles_per_class": {f"{index} {name}": int(count)
                            for index, (name, count) in enumerate(zip(CLASS_NAMES, counts))},
    }


def pseudo_labels(scores: pd.DataFrame, rule: PseudoLabelSettings) -> tuple[pd.DataFrame, dict]:
    """Every tile's out-of-fold scores through the rule: ``(kept tiles with their label, summary)``, i.e.
    :func:`pseudo_label_table` and :func:`pseudo_label_summary` in one call."""
    labels = pseudo_label_table(scores, rule.positive_threshold, rule.negative_threshold)
    return labels, pseudo_label_summary(scores, labels, rule)


def pseudo_targets(labels: pd.DataFrame, index: pd.DataFrame, weak: np.ndarray, covered_splits) -> tuple:
    """Targets for a cell model trained on pseudo labels: ``(targets, rows, record)``.

    ``labels``: the pseudo-label table (``ID, cell_id, split, Label``); ``index``: the model's tiles (``ID,
    cell_id, split``); ``weak``: their weak targets. Tiles of a split the pseudo labels cover take their
    pseudo label, or are left out where the rule dropped them; tiles of any other split keep their weak
    label. ``rows``: the tiles kept.
    """
    from stages.classify.data import label_matrix

    keys = index[["split", "ID", "cell_id"]].astype({"split": str, "ID": str, "cell_id": np.int64})
    found = keys.merge(labels, on=["split", "ID", "cell_id"], how="left", validate="one_to_one")["Label"]
    covered = keys["split"].isin(list(covered_splits)).to_numpy()
    labelled = covered & found.notna().to_numpy()
    targets = weak.copy()
    targets[labelled] = label_matrix(found[labelled].astype(str).tolist())
    keep = ~covered | labelled
    record = {"labels": "pseudo labels", "pseudo_labelled_tiles": int(labelled.sum()),
              "dropped_tiles": int((~keep).sum()), "weak_labelled_tiles": int((~covered).sum())}
    return targets, np.flatnonzero(keep), record

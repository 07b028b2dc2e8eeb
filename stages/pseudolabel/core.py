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

import numpy as np
import pandas as pd

from stages.classes import NEGATIVE, NUM_CLASSES, SCORE_COLUMNS, format_labels

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

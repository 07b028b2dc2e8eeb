"""The pseudo-label rule on hand-made probability tables: every branch, and the fold split."""

import numpy as np
import pandas as pd
import pytest

from stages.classes import NEGATIVE, NUM_CLASSES, SCORE_COLUMNS
from stages.pseudolabel.core import LABEL_COLUMNS, assign_folds, pseudo_label_lists, pseudo_label_table


def probabilities(*rows: dict[int, float], base: float = 0.05) -> np.ndarray:
    table = np.full((len(rows), NUM_CLASSES), base)
    for index, row in enumerate(rows):
        for column, value in row.items():
            table[index, column] = value
    return table


def test_every_branch_of_the_rule():
    table = probabilities(
        {0: 0.95},                   # one class above 0.8 -> [0]
        {2: 0.81, 16: 0.99},         # several classes above 0.8 -> all of them, sorted
        {3: 0.85, NEGATIVE: 0.9},    # a positive class wins over a high Negative: Negative is not added
        {NEGATIVE: 0.5},             # no class above 0.8, Negative above 0.2 -> [18]
        {NEGATIVE: 0.1},             # no class above 0.8, Negative below 0.2 -> dropped
        {5: 0.7, NEGATIVE: 0.15},    # a class below 0.8 does not count either -> dropped
    )
    assert pseudo_label_lists(table) == [[0], [2, 16], [3], [NEGATIVE], [], []]


def test_thresholds_are_strict_and_configurable():
    at_threshold = probabilities({4: 0.8, NEGATIVE: 0.2})
    assert pseudo_label_lists(at_threshold) == [[]]  # both comparisons are strict: > 0.8, > 0.2
    assert pseudo_label_lists(at_threshold, positive_threshold=0.7) == [[4]]
    assert pseudo_label_lists(at_threshold, negative_threshold=0.1) == [[NEGATIVE]]


def test_negative_alone_above_the_positive_threshold_is_the_negative_branch():
    # Class 18 is never taken by the positive branch (0..17 only), so a confident Negative is still [18]
    assert pseudo_label_lists(probabilities({NEGATIVE: 0.99})) == [[NEGATIVE]]


def test_bad_shapes_and_thresholds_fail():
    with pytest.raises(ValueError, match="probabilities"):
        pseudo_label_lists(np.zeros((3, 18)))
    with pytest.raises(ValueError, match="thresholds"):
        pseudo_label_lists(np.zeros((1, NUM_CLASSES)), positive_threshold=1.5)


def test_table_keeps_labelled_tiles_and_drops_the_rest():
    scores = pd.DataFrame(probabilities({0: 0.9, 16: 0.85}, {NEGATIVE: 0.6}, {NEGATIVE: 0.05}), columns=list(SCORE_COLUMNS))
    scores.insert(0, "cell_id", [1, 2, 3])
    scores.insert(0, "ID", ["a", "a", "b"])
    scores.insert(2, "split", ["train", "train", "external"])
    table = pseudo_label_table(scores)
    assert tuple(table.columns) == LABEL_COLUMNS
    assert table.to_dict("records") == [
        {"ID": "a", "cell_id": 1, "split": "train", "Label": "0|16"},
        {"ID": "a", "cell_id": 2, "split": "train", "Label": "18"},
    ]


def test_table_without_split_column_is_train_and_empty_input_gives_empty_table():
    scores = pd.DataFrame(probabilities({1: 0.9}), columns=list(SCORE_COLUMNS)).assign(ID="x", cell_id=4)
    assert pseudo_label_table(scores)["split"].tolist() == ["train"]
    empty = pseudo_label_table(scores.iloc[:0])
    assert empty.empty and tuple(empty.columns) == LABEL_COLUMNS
    with pytest.raises(ValueError, match="column"):
        pseudo_label_table(scores.drop(columns=["cell_id"]))


def test_folds_are_balanced_deterministic_and_by_image():
    ids = [f"img{index}" for index in range(11)]
    folds = assign_folds(ids + ids[:3], 2, seed=3)  # repeated IDs (several tiles) map to one fold
    assert set(folds) == set(ids)
    sizes = np.bincount(list(folds.values()))
    assert sorted(sizes) == [5, 6]
    assert folds == assign_folds(list(reversed(ids)), 2, seed=3)  # order of the input does not matter
    assert folds != assign_folds(ids, 2, seed=4)
    with pytest.raises(ValueError):
        assign_folds(ids, 1)
    with pytest.raises(ValueError):
        assign_folds(["only"], 2)

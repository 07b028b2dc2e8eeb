"""The pseudo-label stage's summary.json, computed from hand-made out-of-fold scores."""

import dataclasses
import json

import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NEGATIVE, NUM_CLASSES, SCORE_COLUMNS
from stages.pseudolabel.core import pseudo_label_summary, pseudo_label_table, pseudo_labels
from stages.zoo import PseudoLabelSettings

RULE = PseudoLabelSettings(positive_threshold=0.8, negative_threshold=0.2, folds=2, model="cell.b0")


def oof_scores(*rows: dict[int, float]) -> pd.DataFrame:
    values = np.full((len(rows), NUM_CLASSES), 0.05)
    for index, row in enumerate(rows):
        for column, value in row.items():
            values[index, column] = value
    table = pd.DataFrame(values, columns=list(SCORE_COLUMNS))
    table.insert(0, "ID", [f"img{index // 2}" for index in range(len(rows))])
    table.insert(1, "cell_id", np.arange(1, len(rows) + 1))
    table.insert(2, "split", "train")
    return table


SCORES = oof_scores(
    {0: 0.9, 16: 0.95},  # kept: 0|16
    {0: 0.85},           # kept: 0
    {NEGATIVE: 0.5},     # kept: 18
    {NEGATIVE: 0.1},     # dropped
    {3: 0.7},            # dropped
)


def test_summary_counts_tiles_kept_dropped_and_per_class():
    labels = pseudo_label_table(SCORES, 0.8, 0.2)
    summary = pseudo_label_summary(SCORES, labels, RULE)
    assert list(summary) == ["tiles", "kept", "dropped", "positive_threshold", "negative_threshold", "folds",
                             "model", "tiles_per_class"]
    assert (summary["tiles"], summary["kept"], summary["dropped"]) == (5, 3, 2)
    assert (summary["positive_threshold"], summary["negative_threshold"]) == (0.8, 0.2)
    assert (summary["folds"], summary["model"]) == (2, "cell.b0")
    per_class = summary["tiles_per_class"]
    assert list(per_class) == [f"{index} {name}" for index, name in enumerate(CLASS_NAMES)]
    assert per_class["0 Nucleoplasm"] == 2 and per_class["16 Cytosol"] == 1 and per_class["18 Negative"] == 1
    assert sum(per_class.values()) == 4 and per_class["3 Nucleoli fibrillar center"] == 0
    assert all(type(value) is int for value in per_class.values())  # numpy ints would not serialise
    json.dumps(summary)


def test_one_call_from_the_settings_gives_the_same_labels_and_summary():
    labels, summary = pseudo_labels(SCORES, RULE)
    pd.testing.assert_frame_equal(labels, pseudo_label_table(SCORES, 0.8, 0.2))
    assert summary == pseudo_label_summary(SCORES, labels, RULE)
    stricter = pseudo_labels(SCORES, dataclasses.replace(RULE, positive_threshold=0.87))[1]
    assert (stricter["kept"], stricter["tiles_per_class"]["0 Nucleoplasm"]) == (2, 1)
    assert stricter["positive_threshold"] == 0.87


def test_nothing_kept():
    labels, summary = pseudo_labels(SCORES.iloc[3:], RULE)
    assert labels.empty and summary["kept"] == 0 and summary["dropped"] == 2
    assert set(summary["tiles_per_class"].values()) == {0}

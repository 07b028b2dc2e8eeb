"""Which tiles and images a classifier learns from, and with which targets: pure tables in, arrays out.

Rows of a training set come from several shards and splits (``train`` and the ``external`` split), so
every row carries its split, and an image is named across splits by ``split/ID`` (external data may
reuse a training ID).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stages.classify.data import label_matrix
from stages.manifest.core import EXTERNAL_SPLIT


def training_splits(external_data: bool, external_configured: bool) -> list[str]:
    """``train``, plus ``external`` where the zoo entry uses external data and some is configured (without
    it the model trains on ``train`` alone, as its training record says)."""
    return ["train", EXTERNAL_SPLIT] if external_data and external_configured else ["train"]


def stacked_index(indexes: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One index over several shards' index tables, each row tagged with its split, in the given order
    (the order of the shards' arrays, so row i of the index is row i of the stacked arrays)."""
    tagged = [index.assign(split=split) for split, index in indexes]
    return pd.concat(tagged, ignore_index=True) if tagged else pd.DataFrame(columns=["ID", "cell_id", "split"])


def image_keys(index: pd.DataFrame) -> np.ndarray:
    """One key per row naming its image across splits: validation splits and folds keep an image whole."""
    return (index["split"].astype(str) + "/" + index["ID"].astype(str)).to_numpy()


def weak_targets(index: pd.DataFrame, labels: Mapping[str, Mapping[str, str]]) -> np.ndarray:
    """Every row inherits its image's labels (the weak-label baseline); ``labels[split][ID]`` is the image's
    label text (``"0|16"``)."""
    return label_matrix([labels[split][image_id] for split, image_id in zip(index["split"], index["ID"])])


def image_targets(index: pd.DataFrame) -> np.ndarray:
    """An image model's targets: the index's own Label column."""
    return label_matrix(index["Label"].fillna("").astype(str).tolist())

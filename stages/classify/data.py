"""Classifier data without a framework: labels, batches, augmentation, validation split, score tables.

Pure numpy and pandas (no Keras, no Luigi, no files), so every piece is tested on hand-made arrays.

Batches are assembled from the tile shards with whole-array indexing only: an :class:`ArrayBank` sees
the shards' arrays (memory-mapped ``.npy`` files in the task) as one, and a batch is one fancy-indexed read
per shard it touches; augmentations work on the whole batch at once. Model inputs stay uint8 (the model
casts), which keeps host memory and host-to-device copies at a quarter of float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from stages.classes import NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.zoo import AUGMENTATIONS, CHANNEL_SETS

GREEN = 1  # tiles hold (red, green, blue)


def label_matrix(labels: Sequence[str | Sequence[int]]) -> np.ndarray:
    """Multi-hot ``(N, 19)`` float32 targets from ``"0|5"`` strings (or lists of class indices)."""
    matrix = np.zeros((len(labels), NUM_CLASSES), np.float32)
    for row, label in enumerate(labels):
        classes = parse_labels(label) if isinstance(label, str) or label is None else list(label)
        matrix[row, classes] = 1.0
    return matrix


def input_channels(channels: str) -> int:
    """Planes a model of this channel set reads: 3 for RGB, 1 for green (the model repeats it 3 times)."""
    if channels not in CHANNEL_SETS:
        raise ValueError(f"channel set {channels!r} is not one of {CHANNEL_SETS}")
    return 3 if channels == "rgb" else 1


def model_input(images: np.ndarray, channels: str) -> np.ndarray:
    """A batch as the model reads it: ``(N, S, S, C)`` uint8.

    ``images`` is ``(N, S, S, 3)`` RGB tiles or ``(N, S, S)`` grey (green) images; the green set of an RGB
    tile is its channel 1 alone (the model repeats it), never three copies built on the host.
    """
    input_channels(channels)
    if images.ndim == 3:
        if channels != "green":
            raise ValueError(f"grey images (shape {images.shape}) can only feed a green model, not {channels!r}")
        return images[..., None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, S, S, 3) tiles or (N, S, S) grey images, got shape {images.shape}")
    return images if channels == "rgb" else images[..., GREEN:GREEN + 1]


class ArrayBank:
    """Several arrays with the same row shape (one per shard, possibly memory-mapped) seen as one.

    :meth:`take` gathers any rows with one sorted fancy-indexed read per array: no per-row or per-pixel
    Python loop, and a memory-mapped shard is only read where a batch needs it.
    """

    def __init__(self, arrays: Sequence[np.ndarray]):
        arrays = [array for array in arrays]
        if not arrays:
            raise ValueError("an ArrayBank needs at least one array")
        shapes = {array.shape[1:] for array in arrays}
        dtypes = {array.dtype for array in arrays}
        if len(shapes) != 1 or len(dtypes) != 1:
            raise ValueError(f"arrays differ in row shape or dtype: {sorted(map(str, shapes))}, {sorted(map(str, dtypes))}")
        self.arrays = arrays
        self.row_shape = arrays[0].shape[1:]
        self.dtype = arrays[0].dtype
        self.offsets = np.cumsum([0] + [len(array) for array in arrays])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        for array_index in np.unique(which):
            positions = np.flatnonzero(which == array_index)
            local = rows[positions] - self.offsets[array_index]
            order = np.argsort(local, kind="stable")
            out[positions[order]] = self.arrays[array_index][local[order]]
        return out

    def __getitem__(self, item: slice) -> np.ndarray:
        if not isinstance(item, slice):
            raise TypeError("index an ArrayBank with a slice, or use take()")
        return self.take(np.arange(len(self))[item])


def split_validation(groups: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)``, split by group (image ID): a cell's tile and its siblings from
    the same image never sit on both sides. At least one group stays in training; ``fraction`` 0 or a
    single group gives no validation rows."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    groups = np.asarray(groups, dtype=str)
    unique = np.unique(groups)
    n_validation = min(int(round(fraction * len(unique))), len(unique) - 1)
    if fraction > 0 and len(unique) > 1:
        n_validation = max(n_validation, 1)
    chosen = np.random.default_rng(seed).permutation(unique)[:n_validation]
    is_validation = np.isin(groups, chosen)
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def epoch_batches(n_rows: int, batch_size: int, steps: int | None, rng: np.random.Generator) -> np.ndarray:
    """``(steps, batch_size)`` row indices for one training epoch: successive shuffles of all rows, so every
    batch is full (one traced shape) and every row is seen before any is seen twice. ``steps`` None: one
    pass (rounded up)."""
    if n_rows < 1:
        raise ValueError("no training rows")
    steps = steps or -(-n_rows // batch_size)
    needed = steps * batch_size
    order = np.concatenate([rng.permutation(n_rows) for _ in range(-(-needed // n_rows))])
    return order[:needed].reshape(steps, batch_size)


@dataclasses.dataclass(frozen=True)
class MixSettings:
    """The original's cutmix/mixup transform: per sample, cutmix or mixup (``switch`` chance of cutmix), each
    applied with its own probability; partner drawn from the same batch; box and blend weight uniform."""

    switch: float = 0.5
    cutmix_probability: float = 0.666
    mixup_probability: float = 0.666


def _cutmix(x, y, partner, rng, probability):
    n, size = len(x), x.shape[1]
    apply = rng.random(n) <= probability
    width = (size * np.sqrt(1.0 - rng.random(n))).astype(np.int64) * apply
    centre_y, centre_x = rng.integers(0, size, n), rng.integers(0, size, n)
    y0, y1 = np.maximum(0, centre_y - width // 2), np.minimum(size, centre_y + width // 2)
    x0, x1 = np.maximum(0, centre_x - width // 2), np.minimum(size, centre_x + width // 2)
    grid = np.arange(size)
    inside_rows = (grid[None, :] >= y0[:, None]) & (grid[None, :] < y1[:, None])
    inside_cols = (grid[None, :] >= x0[:, None]) & (grid[None, :] < x1[:, None])
    box = inside_rows[:, :, None] & inside_cols[:, None, :]
    mixed = np.where(box.reshape(box.shape + (1,) * (x.ndim - 3)), x[partner], x)
    share = ((y1 - y0) * (x1 - x0) / float(size * size)).astype(np.float32)[:, None]
    return mixed, (1.0 - share) * y + share * y[partner]


def _mixup(x, y, partner, rng, probability):
    n = len(x)
    weight = (rng.random(n) * (rng.random(n) <= probability)).astype(np.float32)
    shaped = weight.reshape((n,) + (1,) * (x.ndim - 1))
    mixed = (1.0 - shaped) * x.astype(np.float32) + shaped * x[partner].astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(x.dtype), (1.0 - weight[:, None]) * y + weight[:, None] * y[partner]


def augment_batch(x: np.ndarray, y: np.ndarray, augment: Sequence[str], rng: np.random.Generator,
                  mix: MixSettings = MixSettings()) -> tuple[np.ndarray, np.ndarray]:
    """One training batch ``(N, S, S, C)`` uint8 and ``(N, 19)`` targets, augmented as a whole.

    ``flip``: left-right and up-down, each with chance 1/2; ``rotate90``: a quarter turn with chance 1/2
    (square inputs); ``cutmix`` / ``mixup``: the original's transform (:class:`MixSettings`), where both are
    listed each sample takes one of them; targets are mixed in the same proportion as the pixels.
    """
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; known: {AUGMENTATIONS}")
    n = len(x)
    y = y.astype(np.float32, copy=False)
    if "flip" in augment:
        lr = (rng.random(n) < 0.5).reshape((n,) + (1,) * (x.ndim - 1))
        x = np.where(lr, x[:, :, ::-1], x)
        ud = (rng.random(n) < 0.5).reshape((n,) + (1,) * (x.ndim - 1))
        x = np.where(ud, x[:, ::-1], x)
    if "rotate90" in augment:
        if x.shape[1] != x.shape[2]:
            raise ValueError(f"rotate90 needs square inputs, got {x.shape[1:3]}")
        turn = rng.random(n) < 0.5
        x = x.copy()
        x[turn] = np.rot90(x[turn], 1, axes=(1, 2))
    use_cutmix, use_mixup = "cutmix" in augment, "mixup" in augment
    if use_cutmix or use_mixup:
        partner = rng.integers(0, n, n)
        if use_cutmix and use_mixup:
            pick_cutmix = rng.random(n) <= mix.switch
        else:
            pick_cutmix = np.full(n, use_cutmix)
        cut_x, cut_y = _cutmix(x, y, partner, rng, mix.cutmix_probability) if use_cutmix else (x, y)
        mix_x, mix_y = _mixup(x, y, partner, rng, mix.mixup_probability) if use_mixup else (x, y)
        x = np.where(pick_cutmix.reshape((n,) + (1,) * (x.ndim - 1)), cut_x, mix_x)
        y = np.where(pick_cutmix[:, None], cut_y, mix_y).astype(np.float32)
    return np.ascontiguousarray(x), y


def score_table(image_ids: Sequence[str], cell_ids: Sequence[int], probabilities: np.ndarray) -> pd.DataFrame:
    """The one score-table shape every source hands to fusion: ``ID, cell_id, class_0 .. class_18``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(image_ids), NUM_CLASSES) or len(cell_ids) != len(image_ids):
        raise ValueError(f"{len(image_ids)} IDs, {len(cell_ids)} cell ids, probabilities {probabilities.shape}")
    table = pd.DataFrame(probabilities, columns=list(SCORE_COLUMNS))
    table.insert(0, "cell_id", np.asarray(cell_ids, dtype=np.int64))
    table.insert(0, "ID", np.asarray(image_ids, dtype=object).astype(str))
    return table


def image_score_table(image_ids: Sequence[str], probabilities: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(np.asarray(probabilities, dtype=np.float64), columns=list(SCORE_COLUMNS))
    table.insert(0, "ID", [str(image_id) for image_id in image_ids])
    return table


def broadcast_to_cells(image_scores: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """An image model's probabilities on every cell of its image, in the cell table's row order.

    ``cells`` holds at least ``ID, cell_id`` (the segment table); an image with cells but no score is an
    error, an image without cells simply gives no row.
    """
    keys = cells[["ID", "cell_id"]].astype({"ID": str})
    lookup = image_scores.set_index(image_scores["ID"].astype(str))[list(SCORE_COLUMNS)]
    missing = sorted(set(keys["ID"]) - set(lookup.index))
    if missing:
        raise ValueError(f"no image score for {len(missing)} image(s) with cells, e.g. {missing[:3]}")
    scores = lookup.loc[keys["ID"]].to_numpy()
    return score_table(keys["ID"].tolist(), keys["cell_id"].tolist(), scores)


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of one class (Mann-Whitney, ties counted half); NaN without both kinds."""
    truth = np.asarray(truth, dtype=bool)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def per_class_auc(truth: np.ndarray, scores: np.ndarray) -> dict[int, float]:
    """ROC-AUC of every class that has positives and negatives in ``truth`` (``(N, 19)`` 0/1)."""
    truth, scores = np.asarray(truth), np.asarray(scores)
    values = {index: roc_auc(truth[:, index] > 0.5, scores[:, index]) for index in range(truth.shape[1])}
    return {index: value for index, value in values.items() if not np.isnan(value)}


class RowView:
    """Some rows of an :class:`ArrayBank`, sliceable like an array (what prediction reads), without copying
    them out first."""

    def __init__(self, bank: ArrayBank, rows: np.ndarray):
        self.bank, self.rows = bank, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: slice) -> np.ndarray:
        return self.bank.take(self.rows[item])

"""The classifiers' numpy side: labels, batch assembly, augmentation, validation split, score tables, AUC."""

import numpy as np
import pandas as pd
import pytest

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.classify import data
from stages.scores import TABLE_COLUMNS


def test_label_matrix_from_strings_and_lists():
    matrix = data.label_matrix(["0|5", "", [18], "16"])
    assert matrix.shape == (4, NUM_CLASSES) and matrix.dtype == np.float32
    assert np.flatnonzero(matrix[0]).tolist() == [0, 5]
    assert matrix[1].sum() == 0
    assert np.flatnonzero(matrix[2]).tolist() == [18]
    with pytest.raises(ValueError):
        data.label_matrix(["19"])


def test_model_input_channel_sets():
    tiles = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert data.model_input(tiles, "rgb") is tiles
    green = data.model_input(tiles, "green")
    assert green.shape == (2, 4, 4, 1) and (green[..., 0] == tiles[..., 1]).all()
    grey = np.zeros((2, 4, 4), np.uint8)
    assert data.model_input(grey, "green").shape == (2, 4, 4, 1)
    with pytest.raises(ValueError):
        data.model_input(grey, "rgb")
    with pytest.raises(ValueError):
        data.model_input(tiles, "blue")


def test_array_bank_gathers_rows_across_arrays_in_the_asked_order(tmp_path):
    first = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    empty = np.zeros((0, 2, 2), np.uint8)
    np.save(tmp_path / "second.npy", np.arange(100, 100 + 4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2))
    second = np.load(tmp_path / "second.npy", mmap_mode="r")  # memory-mapped shard, as in the task
    bank = data.ArrayBank([first, empty, second])
    whole = np.concatenate([first, np.asarray(second)])
    assert len(bank) == 7 and bank.shape == (7, 2, 2)
    rows = np.array([6, 0, 3, 3, 2, 5])
    assert (bank.take(rows) == whole[rows]).all()
    assert (bank[2:5] == whole[2:5]).all()
    assert bank.take([]).shape == (0, 2, 2)
    with pytest.raises(IndexError):
        bank.take([7])
    with pytest.raises(ValueError):
        data.ArrayBank([first, np.zeros((1, 3, 3), np.uint8)])


def test_validation_split_keeps_images_whole():
    groups = np.repeat([f"img{index}" for index in range(10)], 3)
    train, validation = data.split_validation(groups, 0.2, seed=1)
    assert len(validation) == 6 and len(train) == 24
    assert not set(groups[train]) & set(groups[validation])
    assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(30))
    assert len(data.split_validation(groups, 0.0, 0)[1]) == 0
    assert len(data.split_validation(["one", "one"], 0.5, 0)[1]) == 0  # the only image stays in training
    assert len(data.split_validation(["a", "b"], 0.1, 0)[1]) == 2 - 1  # a positive fraction holds out >= 1 image


def test_epoch_batches_are_full_and_cover_every_row_before_repeating():
    rng = np.random.default_rng(0)
    batches = data.epoch_batches(10, 4, 5, rng)
    assert batches.shape == (5, 4)
    flat = batches.ravel()
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert data.epoch_batches(10, 4, None, rng).shape == (3, 4)


def one_hot(rows: int, classes: list[int]) -> np.ndarray:
    targets = np.zeros((rows, NUM_CLASSES), np.float32)
    targets[np.arange(rows), classes] = 1
    return targets


def test_cutmix_and_mixup_mix_pixels_and_targets_in_proportion():
    rng = np.random.default_rng(0)
    n, size = 64, 16
    x = np.zeros((n, size, size, 3), np.uint8)
    x[n // 2:] = 200  # half the batch black with class 0, half bright with class 1
    y = one_hot(n, [0] * (n // 2) + [1] * (n // 2))
    mixed_x, mixed_y = data.augment_batch(x, y, ("cutmix", "mixup"), rng)
    assert mixed_x.dtype == np.uint8 and mixed_x.shape == x.shape and mixed_y.shape == y.shape
    assert np.allclose(mixed_y.sum(axis=1), 1.0, atol=1e-5)  # targets stay a convex mix
    brightness = mixed_x.astype(np.float64).mean(axis=(1, 2, 3)) / 200.0
    assert np.allclose(brightness, mixed_y[:, 1], atol=0.02)  # the bright share is the class-1 share
    assert (mixed_y[:, 1] % 1 > 0).any()  # something was actually mixed


def test_cutmix_alone_pastes_a_box():
    rng = np.random.default_rng(5)
    x = np.stack([np.zeros((8, 8, 1), np.uint8), np.full((8, 8, 1), 255, np.uint8)] * 16)
    y = one_hot(32, [0, 1] * 16)
    mixed_x, mixed_y = data.augment_batch(x, y, ("cutmix",), rng)
    assert set(np.unique(mixed_x)) <= {0, 255}  # cutmix copies pixels, never blends them
    share_bright = (mixed_x == 255).mean(axis=(1, 2, 3))
    assert np.allclose(share_bright, mixed_y[:, 1], atol=1e-6)


def test_flip_and_rotate_only_move_pixels():
    rng = np.random.default_rng(1)
    x = np.random.default_rng(2).integers(0, 255, (16, 6, 6, 3), dtype=np.uint8)
    y = one_hot(16, list(range(16)))
    moved, same_y = data.augment_batch(x, y, ("flip", "rotate90"), rng)
    assert np.array_equal(same_y, y)
    assert np.array_equal(np.sort(moved.reshape(16, -1), axis=1), np.sort(x.reshape(16, -1), axis=1))
    assert not np.array_equal(moved, x)
    grey = x[..., 0]
    assert data.augment_batch(grey, y, ("flip", "rotate90", "cutmix", "mixup"), rng)[0].shape == grey.shape
    with pytest.raises(ValueError, match="unknown augmentation"):
        data.augment_batch(x, y, ("blur",), rng)


def test_score_tables_have_the_fusion_shape():
    probabilities = np.random.default_rng(0).random((3, NUM_CLASSES))
    table = data.score_table(["a", "a", "b"], [1, 2, 1], probabilities)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["cell_id"].dtype == np.int64
    images = data.image_score_table(["a", "b"], probabilities[:2])
    cells = pd.DataFrame({"ID": ["b", "a", "a"], "cell_id": [3, 1, 2], "area": [5, 6, 7]})
    broadcast = data.broadcast_to_cells(images, cells)
    assert tuple(broadcast.columns) == TABLE_COLUMNS
    assert broadcast[["ID", "cell_id"]].values.tolist() == [["b", 3], ["a", 1], ["a", 2]]
    assert np.allclose(broadcast[list(SCORE_COLUMNS)].to_numpy(), probabilities[[1, 0, 0]])
    with pytest.raises(ValueError, match="no image score"):
        data.broadcast_to_cells(images.iloc[:1], cells)


def test_roc_auc_by_ranks():
    assert data.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert data.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert data.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert np.isnan(data.roc_auc([1, 1], [0.2, 0.3]))
    truth = one_hot(4, [0, 0, 1, 1])
    scores = truth * 0.9 + 0.05
    assert data.per_class_auc(truth, scores) == {0: 1.0, 1: 1.0}

"""Prediction: uint8 batches through a classifier's compiled predict step, on any Keras backend.

Written against the Keras 3 API alone (no TensorFlow import), so the same code runs with
``KERAS_BACKEND=jax`` on a model built from the ``keras_applications`` backbone source. Two habits keep
the accelerator busy: batches stay uint8 until the model casts them (a quarter of float32's host-to-device
bytes), and every batch has the same shape (the last one is zero-padded), so the compiled step (tf.function
on TensorFlow, jax.jit on JAX) is traced once and reused.

Test-time augmentation (a zoo entry's ``test_time_augment``) averages the probabilities of the same inputs
seen mirrored and/or turned by quarter turns: a cell's class does not depend on its orientation, and a model
trained from few steps is not yet invariant to it (demo cell model, 400 steps: per-cell ROC-AUC 0.78 alone,
0.81 as the mean of the 8 views).
"""

from __future__ import annotations

import numpy as np

from stages.classes import NUM_CLASSES
from stages.classify import data
from stages.zoo import TEST_TIME_AUGMENTATIONS


def views(test_time_augment: tuple[str, ...] = ()) -> list[tuple[int, bool]]:
    """The ``(quarter turns, mirrored)`` views a ``test_time_augment`` setting averages over; first the input
    as it is. ``flip`` adds the mirror image, ``rotate90`` the three quarter turns, both the 8 symmetries of
    the square."""
    unknown = set(test_time_augment) - set(TEST_TIME_AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown test-time augmentation(s) {sorted(unknown)}; known: {TEST_TIME_AUGMENTATIONS}")
    turns = range(4) if "rotate90" in test_time_augment else range(1)
    mirrors = (False, True) if "flip" in test_time_augment else (False,)
    return [(turn, mirrored) for turn in turns for mirrored in mirrors]


def view_of(batch: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """A ``(N, S, S, C)`` batch turned ``turns`` quarter turns, then mirrored left-right."""
    turned = np.rot90(batch, turns, axes=(1, 2))
    return np.ascontiguousarray(turned[:, :, ::-1] if mirrored else turned)


def predict_probabilities(model, images, channels: str, batch_size: int = 64,
                          test_time_augment: tuple[str, ...] = ()) -> np.ndarray:
    """``(N, 19)`` float32 probabilities for ``images``: ``(N, S, S, 3)`` RGB tiles or ``(N, S, S)`` grey, as
    an array, a memory map or an :class:`~stages.classify.data.ArrayBank` (anything sliceable by rows);
    with ``test_time_augment``, the mean over its :func:`views` (square inputs only)."""
    augmented = views(test_time_augment)
    count = len(images)
    out = np.empty((count, NUM_CLASSES), np.float32)
    if count == 0:
        return out
    batch_size = max(1, min(batch_size, count))
    padded = None
    for start in range(0, count, batch_size):
        batch = data.model_input(np.asarray(images[start:start + batch_size]), channels)
        size = len(batch)
        if size < batch_size:  # same shape as every other batch: no second trace / compilation
            if padded is None:
                padded = np.zeros((batch_size, *batch.shape[1:]), batch.dtype)
            padded[:size] = batch
            batch = padded
        if "rotate90" in test_time_augment and batch.shape[1] != batch.shape[2]:
            raise ValueError(f"test-time augmentation {test_time_augment} turns inputs by quarter turns: they must "
                             f"be square, got {batch.shape[1]} x {batch.shape[2]} px")
        total = sum(np.asarray(model.predict_on_batch(view_of(batch, turns, mirrored)), np.float64)
                    for turns, mirrored in augmented)
        out[start:start + size] = (total / len(augmented))[:size]
    return out

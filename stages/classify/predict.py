"""Prediction: uint8 batches through a classifier's compiled predict step, on any Keras backend.

Written against the Keras 3 API alone (no TensorFlow import), so the same code runs with
``KERAS_BACKEND=jax`` on a model built from the ``keras_applications`` backbone source. Two habits keep
the accelerator busy: batches stay uint8 until the model casts them (a quarter of float32's host-to-device
bytes), and every batch has the same shape (the last one is zero-padded), so the compiled step (tf.function
on TensorFlow, jax.jit on JAX) is traced once and reused.
"""

from __future__ import annotations

import numpy as np

from stages.classes import NUM_CLASSES
from stages.classify import data


def predict_probabilities(model, images, channels: str, batch_size: int = 64) -> np.ndarray:
    """``(N, 19)`` float32 probabilities for ``images``: ``(N, S, S, 3)`` RGB tiles or ``(N, S, S)`` grey, as
    an array, a memory map or an :class:`~stages.classify.data.ArrayBank` (anything sliceable by rows)."""
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
        out[start:start + size] = np.asarray(model.predict_on_batch(np.ascontiguousarray(batch)))[:size]
    return out

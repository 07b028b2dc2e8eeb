"""A trained classifier inside a prediction task: the model loaded from storage, run over an array artifact
of an upstream shard (memory-mapped), with the zoo entry's channels and test-time views. Keras is imported
when a task runs, never when the task graph is built."""

from __future__ import annotations

import numpy as np

from stages import local_paths
from stages.classify import contract
from stages.tile import contract as tile_contract
from stages.zoo import ModelSpec


def load_model(uri: str):
    from stages.classify import models

    with local_paths.local_copy(uri, ".keras") as path:
        return models.load_classifier(path)


def probabilities(ctx, upstream, array, spec: ModelSpec, batch_size: int) -> np.ndarray:
    """The trained model (input ``model``, zoo entry ``spec``) on an array artifact of ``upstream``."""
    from stages.classify import predict

    trained = ctx.input("model")
    ctx.progress(f"loading {trained.task.model}")
    model = load_model(trained.uri(contract.MODEL))
    with upstream.mapped(array) as images:
        expected = model.input_shape[1:3]
        if len(images) and tuple(images.shape[1:3]) != tuple(expected):
            raise ValueError(f"model {trained.task.model}: inputs of {images.shape[1:3]} px, but the model reads "
                             f"{expected}")
        views = len(predict.views(spec.test_time_augment))
        ctx.progress(f"predicting {len(images)} input(s)" + (f", the mean of {views} views each" if views > 1 else ""))
        return predict.predict_probabilities(model, images, spec.channels, batch_size, spec.test_time_augment)


def predict_tiles(ctx, array, spec: ModelSpec, batch_size: int) -> dict:
    """The score table of the model on every row of the ``tiles`` input's ``array`` (tiles or image-on-cell)."""
    from stages.classify import data

    tiles = ctx.input("tiles")
    index = tiles.read(tile_contract.INDEX)
    scores = probabilities(ctx, tiles, array, spec, batch_size)
    return {contract.SCORES: data.score_table(index["ID"], index["cell_id"], scores)}

"""What the classify stage reads and writes: the one place that names its files, arrays and columns.

The tasks write, and downstream stages (pseudolabel, fuse) read, through these names; the tests check the
artifacts against them. Every prediction task writes the one score-table shape the fuse stage combines
(fuse.contract): one row per cell of the segment table, ``ID, cell_id, class_0 .. class_18``.
"""

from __future__ import annotations

import numpy as np

from stages.fuse.contract import KEY_COLUMNS, TABLE_COLUMNS, TABLE_DTYPES
from stages.segment.contract import CELLS_FILE
from stages.tile.contract import IMAGE_ON_CELL_FILE, INDEX_FILE, TILES_FILE

INPUTS = {
    "manifest": "the split's manifest (stages.manifest): image ID, channel files and the image's Label",
    "tiles": f"tile stage, per shard: {TILES_FILE} (N, S, S, 3) uint8 RGB, {IMAGE_ON_CELL_FILE} (N, I, I) uint8 "
             f"green, {INDEX_FILE} (ID, cell_id; row i = tile i)",
    "cells": f"segment stage, per shard: {CELLS_FILE} (the cells an image model's scores are broadcast to)",
    "images": "<input>/<split>/<ID>_green.<png|jpg|tif>: image models read the green channel alone",
    "pseudo_labels": "pseudolabel stage: pseudo_labels.csv (ID, cell_id, split, Label) for cell models with "
                     "pseudo_labels: true",
    "zoo": "stages/zoo.yaml: backbone, input size, channel set, epochs, loss, augmentations, initial weights",
}

# ---- ImageInputs: per shard, <work>/image_inputs/<fingerprint>/<split>/shard-NNNNN/
IMAGES_FILE = "green.npy"  # (N, S, S) uint8: the green channel square-padded and area-resized to S
IMAGE_INDEX_FILE = "index.csv"  # row i = image i of green.npy
IMAGE_INDEX_DTYPES = {"ID": str, "width": "int64", "height": "int64", "Label": str}
IMAGE_INDEX_COLUMNS = tuple(IMAGE_INDEX_DTYPES)
ARRAY_DTYPE = np.dtype(np.uint8)

# ---- TrainCellModel / TrainImageModel: <work>/classify_train/<fingerprint>/train/<model>/
MODEL_FILE = "model.keras"  # the whole Keras 3 model: uint8 pixels in, 19 sigmoid probabilities out
HISTORY_FILE = "history.csv"  # one row per epoch: epoch, loss, auc, val_loss, val_auc, learning_rate
TRAINING_FILE = "training.json"  # the model's zoo entry, the training settings, sample counts, seconds

# ---- PredictCells / PredictImages / PredictImageOnCell: per shard, <work>/<stage>/<fingerprint>/<split>/shard-NNNNN/
SCORES_FILE = "scores.csv"
SCORE_TABLE_COLUMNS = TABLE_COLUMNS  # ID, cell_id, class_0 .. class_18
SCORE_TABLE_DTYPES = TABLE_DTYPES
SCORE_KEY_COLUMNS = KEY_COLUMNS
IMAGE_SCORES_FILE = "image_scores.csv"  # PredictImages only: ID, class_0 .. class_18, one row per image

OUTPUTS = {
    "ImageInputs": f"{IMAGES_FILE} (N, S, S) uint8 green at the image model's input size S; {IMAGE_INDEX_FILE} "
                   f"({', '.join(IMAGE_INDEX_COLUMNS)}; row i = image i)",
    "TrainCellModel/TrainImageModel": f"{MODEL_FILE}, {HISTORY_FILE}, {TRAINING_FILE}",
    "PredictCells/PredictImageOnCell": f"{SCORES_FILE} ({', '.join(SCORE_TABLE_COLUMNS[:3])} .. class_18): one row "
                                       f"per tile, i.e. per cell of the segment table, in the tile index's order",
    "PredictImages": f"{SCORES_FILE} (same columns): the image's probabilities repeated on every cell of the "
                     f"image; {IMAGE_SCORES_FILE} (ID, class_0 .. class_18): one row per image",
}

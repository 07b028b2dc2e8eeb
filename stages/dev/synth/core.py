"""Synthetic HPA-like images with known per-cell truth (SPEC section 6).

An image is a confluent field of irregular cells (random star-shaped blobs that share borders), each with one
elliptical nucleus. Blue stains the nuclei (textured, darker nucleoli), red the microtubules (fibres radiating
from the nucleus) and yellow the endoplasmic reticulum (a mesh crowding round the nucleus), so cells are
findable from red+yellow and nuclei from blue. Green follows each cell's classes, one visible pattern per
class (diffuse nucleus, nuclear ring, nucleoli, speckles, ER mesh, Golgi stacks, fibres, membrane ring,
worms, dots...), with per-image and per-cell brightness.

Labels are weak as in the real data: an image draws 1-3 of the 18 localisation classes (or is Negative),
each cell shows a random non-empty subset of them, and in some images a share of the cells shows none
(those cells are Negative, class 18). The image label is exactly the union of its cells' labels. The
classes are dealt from a shuffled deck of all 19 per block of 19 images, so every class appears in any
19 consecutive images of a split.

Everything is deterministic: an image depends only on (seed, split, index) and the size, never on how many
images are made. :func:`generate_image` is pure (arrays in memory); :func:`write_dataset` writes the Kaggle
layout plus the truth through :mod:`stages.storage`, so ``out`` may be a folder or an ``s3://`` prefix.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from ... import storage
from ...classes import CHANNELS, NEGATIVE, NUM_CLASSES, format_labels
from . import render
from .layout import default_cell_count, make_layout

SPLITS = ("train", "test")
SPINDLE = 11
CLASS_COUNT_ODDS = (0.45, 0.4, 0.15)      # an image holds 1, 2 or 3 localisation classes
SHOW_PROBABILITY = 0.7                    # a cell shows each of its image's classes with this chance
NEGATIVE_CELL_IMAGE_RATE = 0.3            # share of images where some cells show none of the image's classes
NEGATIVE_CELL_SHARE = (0.1, 0.3)          # ... and the share of cells that do so in those images


class SynthImage(NamedTuple):
    channels: dict[str, np.ndarray]       # CHANNELS -> uint8 H x W
    cell_labels: np.ndarray               # uint16 H x W, 0 background, 1..N
    nucleus_labels: np.ndarray            # uint16 H x W, the id of the cell holding the nucleus
    cell_classes: list[list[int]]         # per cell id 1..N (list index id-1), sorted classes, [18] = Negative
    image_classes: list[int]              # the union of cell_classes


def image_id(seed: int, split: str, index: int) -> str:
    # Underscores on purpose: real HPA IDs hold them and readers must split file names at the last one.
    return f"synth_{seed}_{split}_{index:05d}"


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index])


def scheduled_class(seed: int, split: str, index: int) -> int:
    """The class dealt to image ``index``: a fresh shuffle of all 19 classes per block of 19 images."""
    block, position = divmod(index, NUM_CLASSES)
    deck = np.random.default_rng([seed, SPLITS.index(split), block, NUM_CLASSES]).permutation(NUM_CLASSES)
    return int(deck[position])


def draw_image_classes(rng: np.random.Generator, first: int | None = None) -> list[int]:
    """1-3 localisation classes (including ``first`` when given), or ``[NEGATIVE]`` alone."""
    if first is None:
        first = int(rng.integers(0, NUM_CLASSES))
    if first == NEGATIVE:
        return [NEGATIVE]
    count = int(rng.choice(len(CLASS_COUNT_ODDS), p=CLASS_COUNT_ODDS)) + 1
    others = [cls for cls in range(NEGATIVE) if cls != first]
    extra = rng.choice(others, size=count - 1, replace=False)
    return sorted({first, *map(int, extra)})


def assign_cell_classes(rng: np.random.Generator, image_classes: list[int], mitotic: np.ndarray,
                        negative_share: float | None = None) -> list[list[int]]:
    """Per-cell classes whose union is ``image_classes``, plus Negative for cells showing none of them.

    ``mitotic`` (one flag per cell) decides who can show the mitotic spindle: exactly the mitotic cells do.
    """
    count = len(mitotic)
    if list(image_classes) == [NEGATIVE]:
        return [[NEGATIVE] for _ in range(count)]
    classes = np.asarray(sorted(image_classes))
    if negative_share is None:
        negative_share = rng.uniform(*NEGATIVE_CELL_SHARE) if rng.random() < NEGATIVE_CELL_IMAGE_RATE else 0.0
    negative = rng.random(count) < negative_share
    shows = rng.random((count, len(classes))) < SHOW_PROBABILITY
    allowed = np.ones_like(shows)
    if SPINDLE in classes:
        column = int(np.flatnonzero(classes == SPINDLE)[0])
        allowed[:, column] = mitotic
        shows[:, column] = mitotic
        negative &= ~mitotic
    pick = rng.random((count, len(classes)))  # tie-breakers, drawn in one go so the stream length is fixed
    shows &= allowed
    for cell in np.flatnonzero(~negative & ~shows.any(axis=1)):
        if allowed[cell].any():
            shows[cell, np.argmax(np.where(allowed[cell], pick[cell], -1))] = True
        else:
            negative[cell] = True
    shows[negative] = False
    # Every image class must be shown by some cell, else the image label would not be the union.
    for column in np.flatnonzero(~shows.any(axis=0)):
        candidates = np.flatnonzero(allowed[:, column])
        if len(candidates) == 0:
            raise ValueError(f"class {classes[column]} needs a mitotic cell and there is none")
        cell = candidates[np.argmax(pick[candidates, column] + ~negative[candidates])]
        negative[cell] = False
        shows[cell, column] = True
    return [[int(c) for c in classes[row]] if row.any() else [NEGATIVE] for row in shows]


def generate_image(rng_or_seed, height: int, width: int, mean_cells: float | None = None,
                   image_classes: list[int] | None = None, negative_share: float | None = None) -> SynthImage:
    """One synthetic field of view. ``mean_cells`` defaults to ~25 for 2048 px, ~10 for 512 px."""
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    classes = sorted(set(image_classes)) if image_classes is not None else draw_image_classes(rng)
    if not classes or (NEGATIVE in classes and classes != [NEGATIVE]) or not all(0 <= c < NUM_CLASSES for c in classes):
        raise ValueError(f"image classes must be 1+ of 0..{NEGATIVE - 1} or [{NEGATIVE}] alone, got {classes}")
    if mean_cells is None:
        mean_cells = default_cell_count(height, width)
    min_mitotic = 1 + int(rng.binomial(2, 0.3)) if SPINDLE in classes else 0
    layout = make_layout(rng, height, width, mean_cells, min_mitotic)
    cell_classes = assign_cell_classes(rng, classes, layout.mitotic[1:], negative_share)
    scene = render.Scene(layout, int(rng.integers(2 ** 63)))
    fields = {
        "red": render.red(scene), "green": render.green(scene, cell_classes),
        "blue": render.blue(scene), "yellow": render.yellow(scene),
    }
    gains = {"red": rng.uniform(0.5, 0.9), "green": rng.uniform(0.45, 1.0),
             "blue": rng.uniform(0.55, 0.9), "yellow": rng.uniform(0.5, 0.9)}
    channels = {name: render.to_uint8(scene.rng(f"camera-{name}"), fields[name], gains[name]) for name in CHANNELS}
    union = sorted({cls for cell in cell_classes for cls in cell})
    return SynthImage(channels, layout.cells, layout.nuclei, cell_classes, union)


def encode_png(array: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"PNG encoding failed for an array of {array.dtype} {array.shape}")
    return buffer.tobytes()


def write_dataset(out_uri: str, n_train: int, n_test: int, height: int, width: int, seed: int = 0,
                  mean_cells: float | None = None) -> pd.DataFrame:
    """Write ``n_train`` + ``n_test`` images in the Kaggle layout plus ``truth/``; returns truth/images.csv.

    Layout: ``train/<ID>_<channel>.png``, ``test/...``, ``train.csv`` (ID,Label), ``sample_submission.csv``
    (ID,ImageWidth,ImageHeight,PredictionString), ``truth/<ID>_cells.png`` and ``truth/<ID>_nuclei.png``
    (uint16 labels), ``truth/cells.csv`` (ID,cell_id,Label), ``truth/images.csv``
    (ID,split,Label,ImageWidth,ImageHeight), and a ``_SUCCESS`` marker written last.
    """
    images, cells = [], []
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            rng = image_rng(seed, split, index)
            classes = draw_image_classes(rng, scheduled_class(seed, split, index))
            image = generate_image(rng, height, width, mean_cells, image_classes=classes)
            name = image_id(seed, split, index)
            for channel in CHANNELS:
                storage.write_bytes(storage.join(out_uri, split, f"{name}_{channel}.png"),
                                    encode_png(image.channels[channel]))
            storage.write_bytes(storage.join(out_uri, "truth", f"{name}_cells.png"), encode_png(image.cell_labels))
            storage.write_bytes(storage.join(out_uri, "truth", f"{name}_nuclei.png"),
                                encode_png(image.nucleus_labels))
            images.append((name, split, format_labels(image.image_classes), width, height))
            cells.extend((name, cell_id, format_labels(labels))
                         for cell_id, labels in enumerate(image.cell_classes, start=1))

    table = pd.DataFrame(images, columns=["ID", "split", "Label", "ImageWidth", "ImageHeight"])
    train = table[table.split == "train"]
    test = table[table.split == "test"]
    storage.write_table(storage.join(out_uri, "train.csv"), train[["ID", "Label"]])
    submission = test[["ID", "ImageWidth", "ImageHeight"]].assign(PredictionString="")
    storage.write_table(storage.join(out_uri, "sample_submission.csv"), submission)
    storage.write_table(storage.join(out_uri, "truth", "cells.csv"),
                        pd.DataFrame(cells, columns=["ID", "cell_id", "Label"]))
    storage.write_table(storage.join(out_uri, "truth", "images.csv"), table)
    storage.mark_done(out_uri)
    return table

"""Learning is real.

The fast test: a demo-profile cell model, trained by the project's own batches and fit loop for a few
dozen steps, separates two visibly different kinds of tile on tiles it never saw (catches misaligned
labels, broken augmentation targets, a model that ignores its input).

The slow tests (``-m slow``; also ``python bench/classify_learning.py``): the demo cell and image models on
synthetic HPA-like images with weak labels, scored per class by ROC-AUC on held-out images' cells / images.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from stages.classify import data, models
from stages.classify.predict import predict_probabilities
from stages.classify.train import TrainSettings, train_classifier
from stages.dev.learning import run_check
from stages.zoo import get_profile


def two_kinds(count: int, size: int, seed: int):
    """Tiles of 'cytosol' (class 16: green fills a disc) and 'nucleoli' (class 2: a few bright dots), with
    random brightness and position; 8 tiles per fake image."""
    rng = np.random.default_rng(seed)
    grid_y, grid_x = np.mgrid[:size, :size]
    tiles = np.zeros((count, size, size, 3), np.uint8)
    kinds = rng.integers(0, 2, count)
    for index, kind in enumerate(kinds):
        centre = rng.uniform(0.35, 0.65, 2) * size
        radius = rng.uniform(0.25, 0.4) * size
        disc = (grid_y - centre[0]) ** 2 + (grid_x - centre[1]) ** 2 < radius ** 2
        tiles[index, ..., 0] = disc * rng.integers(40, 120)  # red: the cell body, same for both kinds
        tiles[index, ..., 2] = ((grid_y - centre[0]) ** 2 + (grid_x - centre[1]) ** 2 < (radius / 2) ** 2) * 90
        brightness = rng.integers(120, 255)
        if kind == 0:
            tiles[index, ..., 1] = disc * brightness
        else:
            for _ in range(3):
                spot = centre + rng.uniform(-radius / 3, radius / 3, 2)
                tiles[index, ..., 1] |= (((grid_y - spot[0]) ** 2 + (grid_x - spot[1]) ** 2 < 6.0) * brightness).astype(np.uint8)
    targets = data.label_matrix([[16] if kind == 0 else [2] for kind in kinds])
    groups = np.array([f"image{index // 8}" for index in range(count)])
    return tiles, targets, groups


def test_a_demo_cell_model_learns_to_separate_two_patterns():
    profile = get_profile("demo")
    # geometric augmentations only: cutmix/mixup targets are tested in test_classify_data.py, and their effect on
    # a 75-step run is what BatchNorm recalibration addresses (measured in stages/dev/learning.py)
    spec = dataclasses.replace(profile.model("cell.b7_e1"), augment=("flip", "rotate90"), input_size=32)  # fast
    tiles, targets, groups = two_kinds(256, spec.input_size, seed=0)
    held_out, held_targets, _ = two_kinds(64, spec.input_size, seed=1)
    keras.utils.set_random_seed(0)
    model = models.build_classifier(spec)
    settings = TrainSettings(epochs=3, batch_size=profile.batch_size, steps_per_epoch=25, validation_fraction=0.0,
                             learning_rate=1e-3, augment=spec.augment, seed=0)
    record = train_classifier(model, spec, data.ArrayBank([tiles]), targets, groups, settings, log=lambda _: None)
    assert record["history"]["loss"][-1] < record["history"]["loss"][0]
    scores = predict_probabilities(model, held_out, spec.channels)
    auc = data.per_class_auc(held_targets, scores)
    assert set(auc) == {2, 16}
    assert min(auc.values()) >= 0.9, auc


# The target: a mean per-class ROC-AUC >= 0.80 on held-out synthetic images, for the cell model and
# the image model of the demo profile (python bench/classify_learning.py prints and checks the same figures).


@pytest.mark.slow
def test_cell_model_learns_from_weak_labels():
    """Demo B0 on green x3, 64-px tiles, 800 steps, 256 weakly labelled images: measured 0.849 mean per-class
    ROC-AUC on the 991 cells of 96 held-out images (about 6 min on 2 cores)."""
    result = run_check(roles=("cell",))
    print(result["cell"])
    assert result["cell"]["classes_scored"] == 19
    assert result["cell"]["mean_auc"] >= 0.80, result["cell"]


@pytest.mark.slow
def test_image_model_learns_image_labels():
    """Demo B0 on 128-px green whole images, 800 steps, 256 images: measured 0.818 mean per-class ROC-AUC
    on 96 held-out images (about 8 min on 2 cores)."""
    result = run_check(roles=("image",))
    print(result["image"])
    assert result["image"]["classes_scored"] == 19
    assert result["image"]["mean_auc"] >= 0.80, result["image"]

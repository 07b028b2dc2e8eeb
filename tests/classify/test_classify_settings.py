"""Training settings: per-model seeds, the learning-rate schedules, and the zoo's allowed values as the code
that builds them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages import zoo
from stages.classify import data, models
from stages.classify.settings import WARMUP_FRACTION, TrainSettings, model_seed
from stages.classify.train import learning_rate


def settings(schedule: str, rate: float = 0.01, augment=()) -> TrainSettings:
    return TrainSettings(epochs=4, batch_size=8, steps_per_epoch=25, validation_fraction=0.0, learning_rate=rate,
                         augment=augment, schedule=schedule)


def test_model_seeds_differ_between_models_and_runs_but_are_stable():
    names = ["cell.b7_e1", "cell.b7_ext_e1", "cell.b0_ext_pseudo_e1", "image.b7_600_ext"]
    seeds = {model_seed(0, name) for name in names}
    assert len(seeds) == len(names)
    assert model_seed(0, "cell.b7_e1") != model_seed(1, "cell.b7_e1")
    assert model_seed(0, "cell.b7_e1") == model_seed(0, "cell.b7_e1")
    assert all(0 <= seed < 2 ** 31 for seed in seeds)


def test_the_plateau_schedule_is_a_constant_rate_the_callback_lowers():
    assert learning_rate(settings("plateau"), total_steps=100) == 0.01


def test_the_cosine_schedule_warms_up_then_decays_to_zero():
    total = 100
    schedule = learning_rate(settings("cosine"), total_steps=total)
    rates = np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in range(total + 1)])
    warmup = int(round(WARMUP_FRACTION * total))
    assert rates[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(rates[:warmup + 1]) > 0) and rates[warmup] == pytest.approx(0.01, rel=1e-5)
    assert np.all(np.diff(rates[warmup:]) <= 1e-9) and rates[-1] == pytest.approx(0.0, abs=1e-7)
    assert rates[(warmup + total) // 2] == pytest.approx(0.005, rel=0.05)  # half-way down at mid-decay


def test_an_unknown_schedule_fails_loudly():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        settings("step")


@pytest.mark.parametrize("augment", [("flip", "cutmixx"), "cutmix"])
def test_an_unknown_augmentation_fails_loudly(augment):
    with pytest.raises(ValueError, match=r"augment .* is not a list of items from \('cutmix', 'mixup'"):
        settings("plateau", augment=augment)


def test_the_classify_stage_uses_the_zoos_allowed_values():
    assert models.BACKBONES is zoo.BACKBONES and models.LOSSES is zoo.LOSSES
    assert models.BACKBONE_SOURCES is zoo.BACKBONE_SOURCES and models.DOWNLOADING_WEIGHTS is zoo.DOWNLOADING_WEIGHTS
    assert data.AUGMENTATIONS is zoo.AUGMENTATIONS and data.CHANNEL_SETS is zoo.CHANNEL_SETS


def test_every_allowed_value_is_one_the_code_builds():
    """The zoo accepts exactly what training can do: no name that loads but fails inside a run."""
    import efficientnet.tfkeras as efn

    for backbone in zoo.BACKBONES:
        assert callable(getattr(efn, backbone)) and callable(getattr(keras.applications, backbone))
    for loss in zoo.LOSSES:
        assert isinstance(models.make_loss(loss), keras.losses.Loss)
    for channels in zoo.CHANNEL_SETS:
        assert data.input_channels(channels) in (1, 3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    y = np.eye(4, 19, dtype=np.float32)
    for augment in zoo.AUGMENTATIONS:
        mixed_x, mixed_y = data.augment_batch(x, y, (augment,), rng)
        assert mixed_x.shape == x.shape and mixed_y.shape == y.shape
    assert set(zoo.MIXING_AUGMENTATIONS) <= set(zoo.AUGMENTATIONS)
    for schedule in zoo.LR_SCHEDULES:
        learning_rate(settings(schedule), total_steps=10)

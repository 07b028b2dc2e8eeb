"""What a training task tells its user: one ``epoch E/N`` line per epoch with a percentage, a validation macro
ROC-AUC that means something (classes with positives and negatives only) in the history and the training
record, a warning when that figure is at chance level, and all that without changing the training."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest

from stages.classify import contract, data, models
from stages.classify import stage as classify_stage
from stages.classify import train
from stages.classify.predict import predict_probabilities
from stages.classify.settings import TrainSettings
from stages.zoo import get_profile

SPEC = dataclasses.replace(get_profile("demo").model("cell.b7_e1"), input_size=32, augment=("flip",), epochs=2)


def tiny_data(labels_of):
    """48 random 32-px tiles, 4 per image (12 images); ``labels_of(i)`` the class list of tile i."""
    tiles = np.random.default_rng(0).integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    return tiles, data.label_matrix([labels_of(index) for index in range(48)]), \
        np.array([f"img{index // 4}" for index in range(48)])


def tiny_settings(epochs=2) -> TrainSettings:
    return TrainSettings(epochs=epochs, batch_size=8, steps_per_epoch=2, validation_fraction=0.25, learning_rate=1e-3,
                         augment=SPEC.augment, seed=0, schedule="cosine", run_eagerly=True)


def test_macro_auc_counts_only_classes_with_positives_and_negatives():
    truth = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]], dtype=np.float32)  # class 1: no positive
    scores = np.array([[0.9, 0.5, 0.3], [0.1, 0.5, 0.6], [0.8, 0.5, 0.2], [0.2, 0.5, 0.5]])
    # class 0 ranks both positives first (1.0); class 2: 0.6 beats both negatives, 0.2 neither (0.5)
    assert train.macro_auc(truth, scores) == (pytest.approx(0.75), 2)
    value, classes = train.macro_auc(np.zeros((3, 19)), np.random.default_rng(0).random((3, 19)))
    assert math.isnan(value) and classes == 0


def test_epoch_line_says_loss_and_validation():
    logs = {"loss": 0.32154, "val_loss": 0.48521, "val_macro_auc": 0.7123, "val_auc_classes": 9}
    assert train.epoch_line(2, 10, logs, 40, 12.34) == \
        "epoch 2/10: loss 0.3215, val_loss 0.4852, val macro AUC 0.71 over 9 classes (12.3 s)"
    none = train.epoch_line(1, 1, {"loss": 0.5, "val_loss": 0.4, "val_macro_auc": float("nan"), "val_auc_classes": 0},
                            4, 1.0)
    assert "val macro AUC n/a (no class has both positives and negatives among the 4 validation samples)" in none
    assert train.epoch_line(1, 3, {"loss": 0.5}, 0, 1.0) == "epoch 1/3: loss 0.5000, no validation samples (1.0 s)"


def test_quality_warnings():
    assert train.quality_warning("m", {"val_macro_auc": 0.8, "val_auc_classes": 5}, 10) is None
    assert "chance level" in train.quality_warning("m", {"val_macro_auc": 0.55, "val_auc_classes": 5}, 10)
    assert "no class has both" in train.quality_warning("m", {"val_macro_auc": None, "val_auc_classes": 0}, 10)
    assert "no validation samples" in train.quality_warning("m", {"val_macro_auc": None, "val_auc_classes": 0}, 0)


def test_every_epoch_reports_a_line_a_percentage_and_a_meaningful_validation_auc(monkeypatch):
    tiles, targets, groups = tiny_data(lambda index: [index % 3, 16])  # class 16 everywhere: never scored
    calls, logged = [], []
    model, history, result = train.fit_classifier(SPEC, tiny_settings(), data.ArrayBank([tiles]), targets, groups,
                                                  log=logged.append, progress=lambda *args: calls.append(args))
    assert len(logged) == 1 and logged[0].startswith("training cell.b7_e1: 36 samples (12 held out")
    assert [percent for _, percent in calls] == [50, 100]
    for epoch, (message, _) in enumerate(calls, start=1):
        assert message.startswith(f"epoch {epoch}/2: loss ") and ", val_loss " in message
        assert "val macro AUC " in message and " over 3 classes (" in message
    assert history["epoch"].tolist() == [1, 2] and history["val_auc_classes"].tolist() == [3, 3]
    assert str(history["val_auc_classes"].dtype) == "Int64"
    # the last epoch's figure is the trained model's own on the validation rows (no recalibration with flips)
    _, validation = data.split_validation(groups, 0.25, 0)
    scores = predict_probabilities(model, tiles[validation], SPEC.channels)
    expected, classes = train.macro_auc(targets[validation], scores)
    assert classes == 3 and history["val_macro_auc"].iloc[-1] == pytest.approx(expected, abs=1e-6)
    # val_loss is the compiled loss over the validation rows, as Keras' own validation pass would give it
    model.compile(loss=models.make_loss(SPEC.loss))
    keras_loss = np.atleast_1d(model.evaluate(tiles[validation], targets[validation], batch_size=8, verbose=0))[0]
    assert history["val_loss"].iloc[-1] == pytest.approx(keras_loss, rel=1e-4)
    assert "val_auc" not in history  # Keras' multi-label AUC of the validation set: meaningless, not computed
    assert f"{expected:.2f} over 3 classes" in calls[-1][0]

    # the report predicts in inference mode only: without it, training ends with the very same weights
    monkeypatch.setattr(train.EpochReport, "on_epoch_end", lambda self, epoch, logs=None: None)
    silent, _, _ = train.fit_classifier(SPEC, tiny_settings(), data.ArrayBank([tiles]), targets, groups,
                                        log=lambda _: None)
    for mine, theirs in zip(model.get_weights(), silent.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_validation_passes_are_spread_over_many_epochs_unless_the_schedule_needs_each():
    assert train.validation_epochs(3, every_epoch=False) == {1, 2, 3}
    spread = train.validation_epochs(65, every_epoch=False)
    assert spread == set(range(4, 65, 4)) | {65} and len(spread) <= train.MAX_VALIDATIONS
    assert train.validation_epochs(65, every_epoch=True) == set(range(1, 66))


def test_epochs_without_a_validation_pass_say_so_and_train_the_same_weights(monkeypatch):
    tiles, targets, groups = tiny_data(lambda index: [index % 3])
    monkeypatch.setattr(train, "MAX_VALIDATIONS", 2)  # 3 epochs: validated after the 2nd and the 3rd
    lines = []
    model, history, _ = train.fit_classifier(SPEC, tiny_settings(epochs=3), data.ArrayBank([tiles]), targets,
                                             groups, log=lambda _: None,
                                             progress=lambda message, percent: lines.append(message))
    assert "not validated this epoch" in lines[0] and "val_loss" not in lines[0]
    assert all("val macro AUC" in line and "not validated" not in line for line in lines[1:])
    assert history["val_loss"].isna().tolist() == [True, False, False]
    assert history["val_auc_classes"].isna().tolist() == [True, False, False]
    assert train.final_values(history)["val_auc_classes"] == 3

    unvalidated = dataclasses.replace(tiny_settings(epochs=3), validation_fraction=0.0)
    _, history, _ = train.fit_classifier(SPEC, unvalidated, data.ArrayBank([tiles]), targets, groups,
                                         log=lambda _: None)
    assert "val_loss" not in history and history["val_auc_classes"].tolist() == [0, 0, 0]

    monkeypatch.setattr(train, "MAX_VALIDATIONS", 20)
    every, _, _ = train.fit_classifier(SPEC, tiny_settings(epochs=3), data.ArrayBank([tiles]), targets, groups,
                                       log=lambda _: None)
    for mine, theirs in zip(model.get_weights(), every.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_training_task_records_the_figure_and_warns_when_validation_cannot_judge(monkeypatch, caplog):
    tiles, targets, groups = tiny_data(lambda index: [16])  # every tile the same class: nothing to rank
    monkeypatch.setattr(classify_stage, "train_settings", lambda spec: tiny_settings(epochs=1))
    calls = []
    ctx = SimpleNamespace(task=SimpleNamespace(task_id="TrainCellModel_test"),
                          progress=lambda message, percent=None: calls.append((message, percent)))
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        _, outputs = classify_stage.fit_outputs(ctx, SPEC, data.ArrayBank([tiles]), targets, groups)
    warnings = [record for record in caplog.records if record.name == "luigi-interface"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].getMessage().startswith("TrainCellModel_test: model cell.b7_e1: no class has both positives")
    assert [percent for message, percent in calls if message.startswith("epoch ")] == [100]
    final = json.loads(json.dumps(outputs[contract.TRAINING]["final"]))  # plain JSON: NaN became null
    assert final["val_macro_auc"] is None and final["val_auc_classes"] == 0 and final["epoch"] == 1
    assert {"val_macro_auc", "val_auc_classes"} <= set(outputs[contract.HISTORY].columns)


def test_micro_batches_accumulate_into_the_same_steps_and_a_cap_limits_them():
    tiles, targets, groups = tiny_data(lambda index: [index % 3])
    bank = data.ArrayBank([tiles])
    micro = dataclasses.replace(tiny_settings(epochs=3), micro_batch=2)
    model, _, result = train.fit_classifier(SPEC, micro, bank, targets, groups, log=lambda _: None)
    assert result["forward_passes_per_step"] == 4 and result["steps_per_epoch"] == 2
    assert int(model.optimizer.iterations) == 3 * 2  # optimiser steps, not forward passes
    capped = dataclasses.replace(tiny_settings(epochs=3), max_steps=2)
    model, history, result = train.fit_classifier(SPEC, capped, bank, targets, groups, log=lambda _: None)
    assert len(history) == 2 and result["steps_per_epoch"] == 1 and result["max_steps"] == 2
    assert int(model.optimizer.iterations) == 2


def test_schedule_shape_and_a_micro_batch_that_does_not_divide_the_batch():
    settings = TrainSettings(epochs=20, batch_size=16, steps_per_epoch=None, validation_fraction=0.1,
                             learning_rate=1e-3, augment=())
    assert settings.schedule_shape(50) == (20, 50)
    assert dataclasses.replace(settings, max_steps=2).schedule_shape(50) == (2, 1)
    assert dataclasses.replace(settings, max_steps=45).schedule_shape(50) == (20, 2)
    assert dataclasses.replace(settings, max_steps=5000).schedule_shape(50) == (20, 50)
    with pytest.raises(ValueError, match="must divide the batch size 16"):
        dataclasses.replace(settings, micro_batch=5)


def test_batch_norm_recalibration_passes_are_no_larger_than_the_training_passes():
    tiles, targets, groups = tiny_data(lambda index: [index % 3])
    mixing = dataclasses.replace(tiny_settings(epochs=1), augment=("cutmix",), micro_batch=2, recalibration_batches=1)
    _, _, result = train.fit_classifier(SPEC, mixing, data.ArrayBank([tiles]), targets, groups, log=lambda _: None)
    # the 36 training tiles (9 of 12 images), two at a time, instead of one pass of 64
    assert result["train_samples"] == 36 and result["batch_norm_recalibration_batches"] == 18

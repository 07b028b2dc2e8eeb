"""Tests generated from the zoo: every classifier of the demo profile builds and predicts one batch; the
backbone sources, initial-weights rules, saving and loading."""

import dataclasses

import numpy as np
import pytest

from stages.classes import NUM_CLASSES
from stages.classify import data, models
from stages.classify.predict import predict_probabilities
from stages.zoo import get_profile

DEMO = get_profile("demo")
CLASSIFIERS = [spec for spec in DEMO.models.values() if spec.role in ("cell", "image")]


def batch_for(spec, count=3, seed=0):
    """What the pipeline feeds: RGB tiles for cell models, grey (green) images for image models."""
    rng = np.random.default_rng(seed)
    size = spec.input_size
    if spec.role == "cell":
        return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    return rng.integers(0, 256, (count, size, size), dtype=np.uint8)


def test_the_zoo_lists_five_cell_and_three_image_models():
    for name in ("demo", "hpa2021"):
        profile = get_profile(name)
        specs = profile.models.values()  # every entry, members of the profile's ensemble or not
        assert [spec.role for spec in specs].count("cell") == 5 and [spec.role for spec in specs].count("image") == 3
        assert profile.model(profile.pseudo_label.model).role == "cell"
        for spec in specs:
            assert spec.role == "detector" or (spec.backbone in models.BACKBONES and spec.loss in models.LOSSES)


@pytest.mark.parametrize("spec", CLASSIFIERS, ids=[spec.name for spec in CLASSIFIERS])
def test_every_demo_classifier_builds_and_predicts_a_batch(spec):
    model = models.build_classifier(spec)
    planes = 3 if spec.channels == "rgb" else 1
    assert model.input_shape == (None, spec.input_size, spec.input_size, planes)
    assert model.inputs[0].dtype == "uint8"
    probabilities = predict_probabilities(model, batch_for(spec), spec.channels, batch_size=2)
    assert probabilities.shape == (3, NUM_CLASSES) and probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all() and ((probabilities > 0) & (probabilities < 1)).all()


def test_keras_applications_source_builds_the_same_interface():
    spec = DEMO.model("image.b7_600_noext")
    model = models.build_classifier(spec, source="keras_applications")
    assert model.input_shape == (None, spec.input_size, spec.input_size, 1)
    assert predict_probabilities(model, batch_for(spec), "green").shape == (3, NUM_CLASSES)


def test_backbones_b0_to_b7_exist_in_both_sources():
    import efficientnet.tfkeras as efn
    import keras

    for name in models.BACKBONES:
        assert callable(getattr(efn, name)) and callable(getattr(keras.applications, name))
    with pytest.raises(ValueError, match="unknown backbone"):
        models.build_backbone("EfficientNetB9", 32)
    with pytest.raises(ValueError, match="unknown backbone source"):
        models.build_backbone("EfficientNetB0", 32, source="timm")


def test_initial_weights_are_never_downloaded(tmp_path):
    assert models.check_initial_weights("m", None) is None
    for name in models.DOWNLOADING_WEIGHTS:
        with pytest.raises(ValueError, match="download"):
            models.check_initial_weights("m", name)
    missing = tmp_path / "efficientnet-b0_noisy-student_notop.h5"
    spec = dataclasses.replace(DEMO.model("cell.b7_e1"), initial_weights=str(missing))
    with pytest.raises(models.WeightsNotFound, match=str(missing)):
        models.build_classifier(spec, weights=spec.initial_weights)


def test_a_local_weights_file_is_loaded(tmp_path):
    spec = DEMO.model("cell.b7_e1")
    donor = models.build_backbone(spec.backbone, spec.input_size)
    path = tmp_path / "b0_notop.weights.h5"
    donor.save_weights(str(path))
    model = models.build_classifier(spec, weights=str(path))
    backbone = next(layer for layer in model.layers if layer.name == donor.name)
    for mine, theirs in zip(backbone.weights, donor.weights):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_saved_model_predicts_the_same(tmp_path):
    spec = DEMO.model("cell.b7_ext_green_e1")
    model = models.build_classifier(spec)
    batch = batch_for(spec)
    before = predict_probabilities(model, batch, spec.channels)
    models.save_classifier(model, tmp_path / "model.keras")
    loaded = models.load_classifier(tmp_path / "model.keras")
    np.testing.assert_allclose(predict_probabilities(loaded, batch, spec.channels), before, atol=1e-6)


def test_losses_are_keras_built_ins():
    import keras

    assert isinstance(models.make_loss("binary_crossentropy"), keras.losses.BinaryCrossentropy)
    assert isinstance(models.make_loss("binary_focal_crossentropy"), keras.losses.BinaryFocalCrossentropy)
    with pytest.raises(ValueError, match="unknown loss"):
        models.make_loss("sigmoid_focal_tfa")


@pytest.mark.parametrize("name", ["cell.b7_e1", "image.b7_600_noext"])
def test_a_saved_model_opens_with_plain_keras_in_a_fresh_process(tmp_path, name):
    """The file names only Keras' own objects (no efficientnet 'swish' or 'FixedDropout'): a process that
    imports nothing but keras opens it and predicts what the saving process predicted."""
    import os
    import subprocess
    import sys
    import zipfile

    spec = DEMO.model(name)
    model = models.build_classifier(spec)
    batch = data.model_input(batch_for(spec), spec.channels)
    np.save(tmp_path / "batch.npy", batch)
    models.save_classifier(model, tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        config = archive.read("config.json").decode()
    assert "FixedDropout" not in config and '"swish"' not in config
    code = ("import keras, numpy as np; model = keras.models.load_model('model.keras'); "
            "np.save('loaded.npy', np.asarray(model.predict(np.load('batch.npy'), verbose=0)))")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    child = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    expected = np.asarray(model.predict(batch, verbose=0))
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), expected, atol=1e-6)


def test_builtin_pieces_give_the_efficientnet_packages_weights_and_outputs(monkeypatch):
    """Built with Keras' swish and Dropout or with efficientnet's own swish and FixedDropout, the same seed
    gives the same weights, and the same weights the same outputs, in inference and in training mode."""
    import contextlib

    import keras

    spec = DEMO.model("cell.b7_e1")
    keras.utils.set_random_seed(3)
    new = models.build_classifier(spec)
    monkeypatch.setattr(models, "builtin_efficientnet_pieces", lambda keras: contextlib.nullcontext())
    keras.utils.set_random_seed(3)
    old = models.build_classifier(spec)
    def kinds(model):
        return {type(layer).__name__ for layer in model._flatten_layers()}

    assert "FixedDropout" in kinds(old) and "FixedDropout" not in kinds(new) and "Dropout" in kinds(new)
    for mine, theirs in zip(new.get_weights(), old.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    batch = data.model_input(batch_for(spec), spec.channels)
    np.testing.assert_array_equal(np.asarray(new(batch, training=False)), np.asarray(old(batch, training=False)))
    keras.utils.set_random_seed(5)
    trained_new = np.asarray(new(batch, training=True))
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(trained_new, np.asarray(old(batch, training=True)))

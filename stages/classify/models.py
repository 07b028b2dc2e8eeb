"""Keras 3 classifiers from zoo entries: an EfficientNet backbone, global average pooling, Dense(19, sigmoid).

Every model reads **uint8 pixels** ``(S, S, C)``: C = 3 for the RGB channel set, C = 1 for green (the model
repeats the plane three times, so the backbone sees the original's green x3 and 3-channel initial weights
load unchanged). Casting and normalising happen inside the model, so the host never builds float batches.

Two backbone sources build the same architecture:

- ``efficientnet`` (default): ``efficientnet.tfkeras`` EfficientNetB0..B7 (the package the original used;
  TensorFlow only). Its inputs are normalised like its ImageNet / noisy-student weights expect.
- ``keras_applications``: ``keras.applications`` EfficientNetB0..B7, which carries its own rescaling and
  normalisation and runs on every Keras backend (JAX included).

Initial weights are ``None`` (random) or a local file a user downloaded once; nothing is ever downloaded:
``imagenet`` / ``noisy-student`` and a missing file are errors that say what to do.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from stages.classes import NUM_CLASSES
from stages.classify.data import input_channels
from stages.zoo import BACKBONE_SOURCES, BACKBONES, DOWNLOADING_WEIGHTS, LOSSES

# efficientnet.tfkeras' own preprocessing ("torch" mode): scale to [0, 1], then ImageNet mean and std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FOCAL_GAMMA = 2.0


class WeightsNotFound(FileNotFoundError):
    """A configured initial-weights file that is not there."""


def _keras():
    from stages import quiet

    return quiet.import_keras()  # TensorFlow's start-up lines off the console unless [console] verbose


def _efficientnet():
    try:
        import efficientnet.tfkeras as efn  # registers its custom objects (swish, FixedDropout) with Keras
    except ImportError as error:  # no TensorFlow (e.g. KERAS_BACKEND=jax) or the package is missing
        raise ImportError(
            f"backbone source 'efficientnet' needs TensorFlow and the efficientnet package ({error}); "
            "use backbone source 'keras_applications' on other Keras backends"
        ) from error
    return efn


def check_initial_weights(model_name: str, weights: str | os.PathLike | None) -> str | None:
    """The local weights file to start from, or None; never a name that would make Keras download."""
    if weights is None or str(weights) == "":
        return None
    if str(weights) in DOWNLOADING_WEIGHTS:
        raise ValueError(
            f"model {model_name}: initial_weights {str(weights)!r} would download from the internet; download the "
            f".h5 file once and set initial_weights to its local path (or null for random initialisation)"
        )
    path = Path(weights)
    if not path.is_file():
        raise WeightsNotFound(
            f"model {model_name}: initial weights file {path} does not exist; download it once (e.g. the "
            f"EfficientNet 'notop' .h5 of the backbone) and point initial_weights in stages/zoo.yaml at it, or set "
            f"it to null for random initialisation"
        )
    return str(path)


def build_backbone(backbone: str, input_size: int, weights: str | None = None, source: str = "efficientnet"):
    """An EfficientNet without its top, global-average pooled: ``(S, S, 3)`` float -> ``(features,)``."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {BACKBONES}")
    if source not in BACKBONE_SOURCES:
        raise ValueError(f"unknown backbone source {source!r}; known: {BACKBONE_SOURCES}")
    arguments = {"include_top": False, "weights": weights, "input_shape": (input_size, input_size, 3),
                 "pooling": "avg"}
    if source == "efficientnet":
        efn = _efficientnet()
        with builtin_efficientnet_pieces(_keras()):
            return getattr(efn, backbone)(**arguments)
    return getattr(_keras().applications, backbone)(**arguments)


@contextlib.contextmanager
def builtin_efficientnet_pieces(keras):
    """efficientnet.tfkeras builds with its own ``swish`` function and ``FixedDropout`` class, so a saved model
    names objects that only exist after ``import efficientnet.tfkeras`` ("Could not locate function 'swish'"
    in a fresh process). Inside this block it builds with Keras' own: the ``swish`` activation (x * sigmoid(x),
    saved as ``silu``) and ``keras.layers.Dropout`` (FixedDropout only fixed tf.keras 2's noise shape; Keras 3's
    Dropout fills the None itself). Same layers, names, order and random draws: the same initial weights from a
    seed and the same outputs, and a ``model.keras`` that plain ``keras.models.load_model`` opens."""
    import efficientnet.model as efficientnet_model

    saved = efficientnet_model.get_swish, efficientnet_model.get_dropout
    efficientnet_model.get_swish = lambda **kwargs: "swish"
    efficientnet_model.get_dropout = lambda **kwargs: keras.layers.Dropout
    try:
        yield
    finally:
        efficientnet_model.get_swish, efficientnet_model.get_dropout = saved


def build_classifier(spec, weights: str | None = None, source: str = "efficientnet"):
    """The classifier of a zoo entry (:class:`stages.zoo.ModelSpec`): uint8 pixels in, 19 probabilities out."""
    keras = _keras()
    if spec.role not in ("cell", "image"):
        raise ValueError(f"model {spec.name}: role {spec.role!r} is not a classifier")
    weights = check_initial_weights(spec.name, weights)
    size, planes = spec.input_size, input_channels(spec.channels)
    pixels = keras.Input((size, size, planes), dtype="uint8", name="pixels")
    if source == "efficientnet":
        x = keras.layers.Rescaling(1.0 / 255.0, name="to_unit")(pixels)
    else:  # keras.applications' EfficientNet rescales and normalises itself: only cast here
        x = keras.layers.Rescaling(1.0, name="to_float")(pixels)
    if planes == 1:
        x = keras.layers.Concatenate(name="green_x3")([x, x, x])
    if source == "efficientnet":
        x = keras.layers.Normalization(mean=IMAGENET_MEAN, variance=[s * s for s in IMAGENET_STD], name="imagenet")(x)
    features = build_backbone(spec.backbone, size, weights, source)(x)
    probabilities = keras.layers.Dense(NUM_CLASSES, activation="sigmoid", dtype="float32", name="classes")(features)
    return keras.Model(pixels, probabilities, name=spec.name.replace(".", "_"))


def make_loss(name: str):
    keras = _keras()
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(name=name)
    if name == "binary_focal_crossentropy":
        return keras.losses.BinaryFocalCrossentropy(gamma=FOCAL_GAMMA, name=name)
    raise ValueError(f"unknown loss {name!r}; known: {LOSSES}")


def compile_classifier(model, loss: str, learning_rate, run_eagerly: bool = False, jit_compile=False,
                       accumulation: int = 1):
    """Adam (the original's optimiser for the cell models), the zoo's loss, multi-label ROC-AUC as metric;
    ``learning_rate`` is a number or a Keras learning-rate schedule; ``accumulation`` forward passes make
    one optimiser step.

    The optimiser's variables are built here, before the first step: building them inside the traced
    train step would make TensorFlow trace it twice (about a quarter of a small model's first epoch).
    """
    keras = _keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate,
                                        gradient_accumulation_steps=accumulation if accumulation > 1 else None),
        loss=make_loss(loss),
        metrics=[keras.metrics.AUC(multi_label=True, num_labels=NUM_CLASSES, name="auc")],
        run_eagerly=run_eagerly,
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def save_classifier(model, path: str | os.PathLike) -> None:
    model.save(str(path))


def load_classifier(path: str | os.PathLike):
    """A saved classifier, ready to predict (not compiled)."""
    keras = _keras()
    try:
        _efficientnet()  # files saved before builtin_efficientnet_pieces name its swish and FixedDropout
    except ImportError:
        pass
    try:
        return keras.saving.load_model(str(path), compile=False)
    except (TypeError, ValueError) as error:
        if "swish" in str(error) or "FixedDropout" in str(error):
            raise ValueError(
                f"{path}: the model was built with backbone source 'efficientnet', which needs TensorFlow; load it "
                f"on the TensorFlow backend, or train with backbone source 'keras_applications'"
            ) from error
        raise


def classifier_bytes(model) -> bytes:
    """The saved ``.keras`` file's bytes (Keras saves to a path only)."""
    from stages import scratch

    with scratch.folder("model-") as folder:
        path = Path(folder) / "model.keras"
        save_classifier(model, path)
        return path.read_bytes()

"""The classify stage: the ensemble's EfficientNet classifiers, trained on every training shard and run per
shard: cell models on tiles, image models on whole images (broadcast to their cells), image model #2 on
every cell's image-on-cell input. Keras and TensorFlow are imported inside ``run`` only, so building the
task graph stays fast."""

from __future__ import annotations

import contextlib
import dataclasses

import luigi

from stages import inputs, local_paths, storage
from stages.classify import contract, core, inference
from stages.classify.settings import TrainSettings, model_seed
from stages.config import pipeline
from stages.declare import Stage, TaskSpec, every_shard, single, this_shard
from stages.pseudolabel import contract as pseudolabel_contract
from stages.segment import contract as segment_contract
from stages.tile import contract as tile_contract
from stages.zoo import BACKBONE_SOURCES, PREDICTION_ONLY, ModelSpec, get_profile


class classify(luigi.Config):  # noqa: N801 -- Luigi derives the [classify] section name from the class name
    backbone_source = luigi.ChoiceParameter(
        choices=BACKBONE_SOURCES, default="efficientnet",
        description="efficientnet (efficientnet.tfkeras, TensorFlow) | keras_applications (any Keras backend)")
    learning_rate = luigi.OptionalFloatParameter(
        default=None, description="Adam learning rate; unset: the zoo profile's (hpa2021: 1e-3, the original's)")
    seed = luigi.IntParameter(default=0, description="seed of initial weights, shuffling, augmentation, folds")
    run_eagerly = luigi.BoolParameter(
        default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="train without tf.function: faster to start, slower per step (tiny tests only)")
    jit_compile = luigi.BoolParameter(
        default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="XLA-compile the train step (worth it on a GPU, slow to start on a CPU)")
    predict_batch_size = luigi.IntParameter(default=64, description="images per prediction batch")
    loader_workers = luigi.IntParameter(default=1, description="threads assembling training batches")
    verbose = luigi.IntParameter(default=0, description="Keras fit verbosity (0 silent, 2 one line per epoch)")
    micro_batch = luigi.IntParameter(
        default=0, description="samples per forward pass when a batch does not fit in memory (divides the batch "
                               "size; gradients are accumulated into one step); 0: the whole batch")
    max_steps = luigi.IntParameter(
        default=0, description="cap on each model's optimiser steps, to try a profile at full size in minutes "
                               "(the models are then not the profile's); 0: none")


OPERATIONAL = ("classify.run_eagerly", "classify.jit_compile", "classify.predict_batch_size",
               "classify.loader_workers", "classify.verbose", "classify.micro_batch", "classify.max_steps")


def profile():
    return get_profile(pipeline().profile)


def classifier_spec(name: str, role: str) -> ModelSpec:
    spec = profile().model(name)
    if spec.role != role:
        raise ValueError(f"model {name} is a {spec.role} model, not a {role} model "
                         f"(known {role} models: {[s.name for s in profile().role(role)]})")
    return spec


def training_splits(spec: ModelSpec) -> list[str]:
    return core.training_splits(spec.external_data, bool(pipeline().external))


def train_settings(spec: ModelSpec) -> TrainSettings:
    config, zoo = classify(), profile()
    return TrainSettings(
        epochs=spec.epochs, batch_size=zoo.batch_size, steps_per_epoch=zoo.steps_per_epoch,
        validation_fraction=zoo.validation_fraction, learning_rate=config.learning_rate or zoo.learning_rate,
        schedule=zoo.lr_schedule, augment=spec.augment, seed=model_seed(config.seed, spec.name),
        run_eagerly=config.run_eagerly, jit_compile=config.jit_compile, workers=config.loader_workers,
        verbose=config.verbose, micro_batch=config.micro_batch, max_steps=config.max_steps,
    )


def pseudo_label_splits() -> list[str]:
    """The splits the pseudo labels cover: those the fold models (the pseudo_label block's model) train on."""
    return training_splits(profile().model(profile().pseudo_label.model))


def training_content(spec: ModelSpec) -> dict:
    """What changes a trained model: its zoo entry, the training settings, the backbone source, the data."""
    splits = training_splits(spec)
    entry = {name: value for name, value in dataclasses.asdict(spec).items() if name not in PREDICTION_ONLY}
    return {"model": entry, "training": train_settings(spec).content(),
            "backbone_source": classify().backbone_source, "splits": splits,
            # 2: efficientnet backbones built with Keras' own swish and Dropout (the saved file opens with
            # plain keras.models.load_model; gradients differ from version 1 by float rounding)
            "build": 2,
            "external": pipeline().external if core.EXTERNAL_SPLIT in splits else ""}


def prediction_content(spec: ModelSpec) -> dict:
    """What changes a trained model's predictions beyond the model. Empty without test-time augmentation, so
    the outputs of runs from before the setting existed keep their fingerprints (and are not recomputed)."""
    return {"test_time_augment": list(spec.test_time_augment)} if spec.test_time_augment else {}


def split_inputs(task_name: str, splits: list[str], **params) -> dict:
    return {f"{task_name.lower()}_{split}": every_shard(task_name, split=split, **params) for split in splits}


def shards_of(ctx, task_name: str, splits: list[str]) -> list[tuple[str, object]]:
    """``(split, upstream shard)`` of every shard of every split, in one stable order."""
    return [(split, shard) for split in splits for shard in ctx.input(f"{task_name.lower()}_{split}")]


@contextlib.contextmanager
def released_after():
    """Around one model's training in a worker that trains several: Keras' global state (the model, its
    traced functions) is released at the end, so the next model starts from the memory the first began with
    (at full size, B7 after B7 in one process ran out of 24 GiB)."""
    try:
        yield
    finally:
        from stages import quiet

        quiet.import_keras().backend.clear_session(free_memory=True)


def fit_outputs(ctx, spec: ModelSpec, bank, targets, groups, rows=None, extra: dict | None = None):
    """Train one classifier: ``(model, {artifact: value})`` with the model file, history and training record."""
    from stages import quiet

    quiet.setup()  # before Keras and TensorFlow are imported
    from stages.classify import models
    from stages.classify.train import final_values, fit_classifier, quality_warning

    with contextlib.ExitStack() as stack:
        weights = spec.initial_weights
        if weights and storage.is_s3(weights):
            weights = str(stack.enter_context(local_paths.local_copy(weights, ".h5")))
        model, history, result = fit_classifier(spec, train_settings(spec), bank, targets, groups, rows, weights,
                                                classify().backbone_source, log=ctx.progress, progress=ctx.progress)
    final = final_values(history)
    warning = quality_warning(spec.name, final, result["validation_samples"])
    if warning:
        quiet.warn(ctx, warning)
    record = {**training_content(spec), **result, **(extra or {}), "final": final}
    return model, {contract.MODEL: models.classifier_bytes(model), contract.HISTORY: history,
                   contract.TRAINING: record}


# ----------------------------------------------------------------------------------------------- training


def cell_model_needs(task) -> dict:
    spec = classifier_spec(task.model, "cell")
    needs = split_inputs("Tile", training_splits(spec))
    if spec.pseudo_labels:
        needs["pseudo_labels"] = single("PseudoLabel")
    return needs


def run_train_cell(ctx) -> dict:
    from stages.classify import data
    from stages.pseudolabel.core import pseudo_targets

    spec = classifier_spec(ctx.params["model"], "cell")
    splits = training_splits(spec)
    shards = shards_of(ctx, "Tile", splits)
    index = core.stacked_index([(split, shard.read(tile_contract.INDEX)) for split, shard in shards])
    targets = core.weak_targets(index, {split: inputs.image_labels(split) for split in splits})
    rows, extra = None, {"labels": "weak (image labels)"}
    if spec.pseudo_labels:
        labels = ctx.input("pseudo_labels").read(pseudolabel_contract.PSEUDO_LABELS)
        targets, rows, extra = pseudo_targets(labels, index, targets, pseudo_label_splits())
    with tile_contract.TILES.mapped([shard.folder for _, shard in shards]) as arrays, released_after():
        _, outputs = fit_outputs(ctx, spec, data.ArrayBank(arrays), targets, core.image_keys(index), rows, extra)
    return outputs


def run_train_image(ctx) -> dict:
    from stages.classify import data

    spec = classifier_spec(ctx.params["model"], "image")
    shards = shards_of(ctx, "ImageInputs", training_splits(spec))
    index = core.stacked_index([(split, shard.read(tile_contract.IMAGE_INDEX)) for split, shard in shards])
    with tile_contract.IMAGE_INPUTS.mapped([shard.folder for _, shard in shards]) as arrays, released_after():
        _, outputs = fit_outputs(ctx, spec, data.ArrayBank(arrays), core.image_targets(index), core.image_keys(index),
                                 extra={"labels": "image labels"})
    return outputs


MODEL_PARAMETER = {"model": luigi.Parameter(description="zoo model name, e.g. cell.b0_ext_pseudo_e10")}

TRAIN_CELL_MODEL = TaskSpec(
    name="TrainCellModel", doc="A cell model on every tile of the training split(s): weak or pseudo labels.",
    needs=cell_model_needs, outputs=(contract.MODEL, contract.HISTORY, contract.TRAINING),
    content=lambda task: training_content(classifier_spec(task.model, "cell")), params=MODEL_PARAMETER,
    run=run_train_cell, splits=("train",), folder="{model}", gpu=True, operational=OPERATIONAL, reads_labels=True,
)

TRAIN_IMAGE_MODEL = TaskSpec(
    name="TrainImageModel", doc="An image model on the green channel of every training image.",
    needs=lambda task: split_inputs("ImageInputs", training_splits(spec := classifier_spec(task.model, "image")),
                                    size=spec.input_size),
    outputs=(contract.MODEL, contract.HISTORY, contract.TRAINING),
    content=lambda task: training_content(classifier_spec(task.model, "image")), params=MODEL_PARAMETER,
    run=run_train_image, splits=("train",), folder="{model}", gpu=True, operational=OPERATIONAL,
)


# ----------------------------------------------------------------------------------------------- prediction


def run_predict_cells(ctx) -> dict:
    spec = classifier_spec(ctx.params["model"], "cell")
    return inference.predict_tiles(ctx, tile_contract.TILES, spec, classify().predict_batch_size)


def run_predict_image_on_cell(ctx) -> dict:
    return inference.predict_tiles(ctx, tile_contract.IMAGE_ON_CELL, profile().image_on_cell,
                                   classify().predict_batch_size)


def run_predict_images(ctx) -> dict:
    from stages.classify import data

    image_inputs = ctx.input("image_inputs")
    index = image_inputs.read(tile_contract.IMAGE_INDEX)
    scores = inference.probabilities(ctx, image_inputs, tile_contract.IMAGE_INPUTS,
                                     classifier_spec(ctx.params["model"], "image"), classify().predict_batch_size)
    images = data.image_score_table(index["ID"], scores)
    cells = ctx.input("segment").read(segment_contract.CELLS)
    return {contract.IMAGE_SCORES: images, contract.SCORES: data.broadcast_to_cells(images, cells)}


PREDICT_CELLS = TaskSpec(
    name="PredictCells", doc="A cell model on every tile of the shard: one score row per cell.",
    needs=lambda task: {"tiles": this_shard("Tile"), "model": single("TrainCellModel", model=task.model)},
    outputs=(contract.SCORES,), params={"model": luigi.Parameter(description="zoo cell model name")},
    content=lambda task: prediction_content(classifier_spec(task.model, "cell")), run=run_predict_cells,
    per_shard=True, folder="shard-{shard:05d}", gpu=True, operational=OPERATIONAL,
)

PREDICT_IMAGES = TaskSpec(
    name="PredictImages", doc="An image model on every whole image of the shard, broadcast to its cells.",
    needs=lambda task: {
        "image_inputs": this_shard("ImageInputs", size=classifier_spec(task.model, "image").input_size),
        "segment": this_shard("Segment"), "model": single("TrainImageModel", model=task.model)},
    outputs=(contract.SCORES, contract.IMAGE_SCORES), params={"model": luigi.Parameter(description="zoo image model")},
    content=lambda task: prediction_content(classifier_spec(task.model, "image")), run=run_predict_images,
    per_shard=True, folder="shard-{shard:05d}", gpu=True, operational=OPERATIONAL,
)

PREDICT_IMAGE_ON_CELL = TaskSpec(
    name="PredictImageOnCell", doc="Image model #2 (the profile's image_on_cell_model) on every cell's "
                                   "image-on-cell input.",
    needs=lambda task: {"tiles": this_shard("Tile"),
                        "model": single("TrainImageModel", model=profile().image_on_cell.name)},
    outputs=(contract.SCORES,), content=lambda task: prediction_content(profile().image_on_cell),
    run=run_predict_image_on_cell, per_shard=True, folder="shard-{shard:05d}",
    gpu=True, operational=OPERATIONAL,
)

STAGE = Stage(name="classify", doc="The EfficientNet cell and image classifiers: training and prediction.",
              tasks=(TRAIN_CELL_MODEL, TRAIN_IMAGE_MODEL, PREDICT_CELLS, PREDICT_IMAGES, PREDICT_IMAGE_ON_CELL),
              whole="TrainClassifiers")


class TrainClassifiers(luigi.WrapperTask):
    """Every classifier of the profile: the cell models and the image models."""

    def requires(self):
        from stages.tasking import task_class

        zoo = profile()
        return [task_class("TrainCellModel")(model=spec.name) for spec in zoo.role("cell")] + [
            task_class("TrainImageModel")(model=spec.name) for spec in zoo.role("image")]

"""Luigi tasks of the classify stage: whole-image inputs, training, prediction.

- ``ImageInputs(split, shard, size)``: the green channel of every image, square-padded and area-resized.
- ``TrainCellModel(model)`` / ``TrainImageModel(model)``: one zoo classifier trained on every training shard
  (plus the external split where the zoo entry asks for it and one is configured).
- ``PredictCells(model, split, shard)``, ``PredictImages(model, split, shard)``, ``PredictImageOnCell(split,
  shard)``: one score table per shard (``contract.SCORES_FILE``), the same shape for every source.

Keras and TensorFlow are imported inside ``run()`` only, so building the task graph stays fast and stages
that never classify do not need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from pathlib import Path

import luigi
import numpy as np
import pandas as pd

from stages import storage
from stages.classify import contract
from stages.config import pipeline
from stages.manifest import core as manifest_core
from stages.manifest.task import Manifest, load_manifest, load_shard, split_folder, split_shard_count
from stages.tasking import AllShards, FolderTask, ShardTask, StageTask
from stages.zoo import ModelSpec, get_profile


BACKBONE_SOURCES = ("efficientnet", "keras_applications")  # stages.classify.models.BACKBONE_SOURCES


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


def profile():
    return get_profile(pipeline().profile)


def classifier_spec(name: str, role: str) -> ModelSpec:
    spec = profile().model(name)
    if spec.role != role:
        raise ValueError(f"model {name} is a {spec.role} model, not a {role} model "
                         f"(known {role} models: {[s.name for s in profile().role(role)]})")
    return spec


def training_splits(spec: ModelSpec) -> list[str]:
    """The splits a model trains on: ``train``, plus ``external`` where the zoo entry uses external data and
    the pipeline has some configured (without it the model trains on ``train`` alone, as recorded)."""
    if spec.external_data and pipeline().external:
        return ["train", manifest_core.EXTERNAL_SPLIT]
    return ["train"]


def train_settings(spec: ModelSpec):
    from stages.classify.settings import TrainSettings, model_seed

    config, zoo = classify(), profile()
    return TrainSettings(
        epochs=spec.epochs, batch_size=zoo.batch_size, steps_per_epoch=zoo.steps_per_epoch,
        validation_fraction=zoo.validation_fraction, learning_rate=config.learning_rate or zoo.learning_rate,
        schedule=zoo.lr_schedule, augment=spec.augment, seed=model_seed(config.seed, spec.name),
        run_eagerly=config.run_eagerly, jit_compile=config.jit_compile, workers=config.loader_workers,
        verbose=config.verbose,
    )


def training_content(spec: ModelSpec) -> dict:
    """What changes a trained model: its zoo entry, the training settings, the backbone source, the data."""
    return {
        "model": dataclasses.asdict(spec),
        "training": train_settings(spec).content(),
        "backbone_source": classify().backbone_source,
        "splits": training_splits(spec),
        "external": pipeline().external if manifest_core.EXTERNAL_SPLIT in training_splits(spec) else "",
    }


# --------------------------------------------------------------------------------------------------- arrays


@contextlib.contextmanager
def opened_arrays(uris: list[str]):
    """The ``.npy`` artifacts as read-only memory maps: a local file is mapped where it lies, an S3 object
    is copied to a scratch folder first (kept until the block ends). Nothing is read into memory here."""
    with tempfile.TemporaryDirectory(prefix="hpa-classify-") as scratch:
        arrays = []
        for number, uri in enumerate(uris):
            path = Path(uri)
            if storage.is_s3(uri):
                path = Path(scratch) / f"{number}.npy"
                path.write_bytes(storage.read_bytes(uri))
            elif not path.exists():
                raise storage.ArtifactNotFound(f"artifact not found: {uri}")
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        yield arrays


def image_labels(split: str) -> dict[str, str]:
    manifest = load_manifest(split)
    return dict(zip(manifest["ID"].astype(str), manifest["Label"].astype(str)))


def tile_shards(split: str) -> list[str]:
    from stages.tile.task import Tile

    return [Tile(split=split, shard=shard).folder() for shard in range(split_shard_count(split))]


def read_tile_index(folder: str) -> pd.DataFrame:
    from stages.tile import contract as tile_contract

    if not storage.is_done(folder):
        raise storage.ArtifactNotFound(f"tile shard not finished (no {storage.SUCCESS_MARKER}): {folder}")
    return storage.read_table(storage.join(folder, tile_contract.INDEX_FILE), dtype=tile_contract.INDEX_DTYPES)


@dataclasses.dataclass
class TileSet:
    """Every tile of some splits: where the arrays are and one index row per tile (ID, cell_id, split)."""

    tile_uris: list[str]
    on_cell_uris: list[str]
    index: pd.DataFrame


def tile_set(splits: list[str]) -> TileSet:
    from stages.tile import contract as tile_contract

    tiles, on_cell, indexes = [], [], []
    for split in splits:
        for folder in tile_shards(split):
            indexes.append(read_tile_index(folder).assign(split=split))
            tiles.append(storage.join(folder, tile_contract.TILES_FILE))
            on_cell.append(storage.join(folder, tile_contract.IMAGE_ON_CELL_FILE))
    index = pd.concat(indexes, ignore_index=True) if indexes else pd.DataFrame(columns=["ID", "cell_id", "split"])
    return TileSet(tiles, on_cell, index)


def weak_targets(index: pd.DataFrame) -> np.ndarray:
    """Every tile inherits its image's labels (the weak-label baseline)."""
    from stages.classify import data

    labels = {}
    for split in index["split"].unique():
        labels.update({(split, image_id): label for image_id, label in image_labels(split).items()})
    return data.label_matrix([labels[(split, image_id)] for split, image_id in zip(index["split"], index["ID"])])


def image_keys(index: pd.DataFrame) -> np.ndarray:
    """One key per row naming its image across splits (external data may reuse a training ID)."""
    return (index["split"].astype(str) + "/" + index["ID"].astype(str)).to_numpy()


# --------------------------------------------------------------------------------------------------- training


def fit_and_save(task: luigi.Task, spec: ModelSpec, folder: str, bank, targets: np.ndarray, groups: np.ndarray,
                 rows: np.ndarray | None = None, extra: dict | None = None):
    """Build, train and save one classifier into ``folder`` (model, history, training record); returns the
    trained model for callers that predict with it next."""
    import keras

    from stages.classify import models
    from stages.classify.train import train_classifier

    settings = train_settings(spec)
    keras.utils.set_random_seed(settings.seed)
    with contextlib.ExitStack() as stack:
        weights = spec.initial_weights
        if weights and storage.is_s3(weights):
            weights = str(stack.enter_context(storage.local_copy(weights, ".h5")))
        model = models.build_classifier(spec, weights=weights, source=classify().backbone_source)
    result = train_classifier(model, spec, bank, targets, groups, settings, rows=rows,
                              log=task.progress)
    with storage.staged_output(storage.join(folder, contract.MODEL_FILE), ".keras") as path:
        models.save_classifier(model, path)
    history = pd.DataFrame(result.pop("history"))
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    storage.write_table(storage.join(folder, contract.HISTORY_FILE), history)
    record = {**training_content(spec), **result, **(extra or {}), "final": history.iloc[-1].to_dict()}
    storage.write_json(storage.join(folder, contract.TRAINING_FILE), json.loads(json.dumps(record, default=str)))
    return model


class TrainTask(FolderTask):
    """A trained classifier in ``<work>/<stage>/<fingerprint>/train/<model>/``, closed by a success marker."""

    model = luigi.Parameter(description="zoo model name, e.g. cell.b0_ext_pseudo_e10")
    split = "train"  # a training task always reads the training split(s): no split parameter
    role = "cell"

    def spec(self) -> ModelSpec:
        return classifier_spec(self.model, self.role)

    def content_settings(self) -> dict:
        return training_content(self.spec())

    def folder(self) -> str:
        return storage.join(self.stage_root(), self.model)


class TrainCellModel(TrainTask):
    """A cell model on every tile of the training split(s): weak labels, or pseudo labels where the zoo says."""

    stage = "train_cell"
    role = "cell"

    def pseudo_label_task(self):
        from stages.pseudolabel.task import PseudoLabel

        return PseudoLabel() if self.spec().pseudo_labels else None

    def upstream(self) -> list[StageTask]:
        from stages.tile.task import Tile

        # Every shard of a split shares one fingerprint, so shard 0 stands for all (the manifest need not exist yet)
        tasks = [Tile(split=split, shard=0) for split in training_splits(self.spec())]
        return tasks + [task for task in [self.pseudo_label_task()] if task is not None]

    def requires(self):
        from stages.tile.task import TileAll

        tasks = [TileAll(split=split) for split in training_splits(self.spec())]
        return tasks + [task for task in [self.pseudo_label_task()] if task is not None]

    def fill(self, folder: str) -> None:
        from stages.classify import data
        from stages.pseudolabel import task as pseudolabel_task

        spec = self.spec()
        tiles = tile_set(training_splits(spec))
        targets, rows, extra = weak_targets(tiles.index), None, {"labels": "weak (image labels)"}
        if spec.pseudo_labels:
            targets, rows, extra = pseudolabel_task.pseudo_targets(self.pseudo_label_task(), tiles.index, targets)
        with opened_arrays(tiles.tile_uris) as arrays:
            fit_and_save(self, spec, folder, data.ArrayBank(arrays), targets, image_keys(tiles.index), rows, extra)


class TrainImageModel(TrainTask):
    """An image model on the green channel of every training image (resized to the zoo's input size)."""

    stage = "train_image"
    role = "image"

    def upstream(self) -> list[StageTask]:
        size = self.spec().input_size
        return [ImageInputs(split=split, shard=0, size=size) for split in training_splits(self.spec())]

    def requires(self):
        size = self.spec().input_size
        return [ImageInputsAll(split=split, size=size) for split in training_splits(self.spec())]

    def fill(self, folder: str) -> None:
        from stages.classify import data

        spec = self.spec()
        uris, indexes = [], []
        for split in training_splits(spec):
            for shard in range(split_shard_count(split)):
                shard_folder = ImageInputs(split=split, shard=shard, size=spec.input_size).folder()
                uris.append(storage.join(shard_folder, contract.IMAGES_FILE))
                indexes.append(read_image_index(shard_folder).assign(split=split))
        index = pd.concat(indexes, ignore_index=True)
        targets = data.label_matrix(index["Label"].fillna("").astype(str).tolist())
        groups = image_keys(index)
        with opened_arrays(uris) as arrays:
            fit_and_save(self, spec, folder, data.ArrayBank(arrays), targets, groups,
                         extra={"labels": "image labels"})


class TrainClassifiers(luigi.WrapperTask):
    """Every classifier of the profile: the cell models and the image models."""

    def requires(self):
        zoo = profile()
        return [TrainCellModel(model=spec.name) for spec in zoo.role("cell")] + [
            TrainImageModel(model=spec.name) for spec in zoo.role("image")
        ]


# --------------------------------------------------------------------------------------------------- inputs


class ImageInputs(ShardTask):
    """Per shard: the green channel of every image, square-padded and area-resized to ``size`` (the image
    models' input; green alone, the model repeats it three times)."""

    stage = "image_inputs"
    size = luigi.IntParameter(description="side of the square model input in pixels")

    def content_settings(self) -> dict:
        return {"size": self.size, "channel": "green", "resize": "square_pad_area"}

    def upstream(self) -> list[StageTask]:
        return [Manifest(split=self.split)]

    def fill(self, folder: str) -> None:
        from stages.fields import decode_channel
        from stages.tile.core import square_pad_resize

        images = load_shard(self.split, self.shard)
        source = split_folder(self.split)
        inputs = np.empty((len(images), self.size, self.size), contract.ARRAY_DTYPE)
        sizes = []
        for row, image in enumerate(images.to_dict("records")):
            self.progress(f"{image['ID']}: image {row + 1}/{len(images)}", 100 * row // max(1, len(images)))
            if not image["green"]:
                raise storage.ArtifactNotFound(f"image {image['ID']}: no green channel file in {source}")
            uri = storage.join(source, image["green"])
            green = decode_channel(storage.read_bytes(uri), image["ID"], uri)
            inputs[row] = square_pad_resize(green, self.size)
            sizes.append((image["ID"], green.shape[1], green.shape[0], image["Label"]))
        storage.write_array(storage.join(folder, contract.IMAGES_FILE), inputs)
        storage.write_table(storage.join(folder, contract.IMAGE_INDEX_FILE),
                            pd.DataFrame(sizes, columns=list(contract.IMAGE_INDEX_COLUMNS)))


def read_image_index(folder: str) -> pd.DataFrame:
    return storage.read_table(storage.join(folder, contract.IMAGE_INDEX_FILE), dtype=contract.IMAGE_INDEX_DTYPES,
                              keep_default_na=False)


# --------------------------------------------------------------------------------------------------- prediction


class PredictTask(ShardTask):
    """One score table per shard; subclasses say which model, which inputs and how rows map to cells."""

    def model_task(self) -> TrainTask:
        raise NotImplementedError

    def predict(self, model, folder: str) -> None:
        raise NotImplementedError

    def content_settings(self) -> dict:
        return {"predict": type(self).__name__}

    def fill(self, folder: str) -> None:
        from stages.classify import models

        trained = self.model_task()
        self.progress(f"loading {trained.model}")
        with storage.local_copy(storage.join(trained.folder(), contract.MODEL_FILE), ".keras") as path:
            model = models.load_classifier(path)
        self.predict(model, folder)

    def probabilities(self, model, uri: str, channels: str) -> np.ndarray:
        from stages.classify.predict import predict_probabilities

        with opened_arrays([uri]) as (images,):
            expected = model.input_shape[1:3]
            if len(images) and tuple(images.shape[1:3]) != tuple(expected):
                raise ValueError(f"{uri}: inputs of {images.shape[1:3]} px, but the model reads {expected}")
            self.progress(f"predicting {len(images)} input(s)")
            return predict_probabilities(model, images, channels, classify().predict_batch_size)

    def write_scores(self, folder: str, table: pd.DataFrame) -> None:
        storage.write_table(storage.join(folder, contract.SCORES_FILE), table[list(contract.SCORE_TABLE_COLUMNS)])


class PredictCells(PredictTask):
    """A cell model on every tile of the shard: one score row per cell."""

    stage = "predict_cells"
    model = luigi.Parameter(description="zoo cell model name")

    def model_task(self) -> TrainCellModel:
        return TrainCellModel(model=self.model)

    def upstream(self) -> list[StageTask]:
        from stages.tile.task import Tile

        return [Tile(split=self.split, shard=self.shard), self.model_task()]

    def predict(self, model, folder: str) -> None:
        from stages.classify import data
        from stages.tile import contract as tile_contract
        from stages.tile.task import Tile

        tiles = Tile(split=self.split, shard=self.shard).folder()
        index = read_tile_index(tiles)
        spec = self.model_task().spec()
        scores = self.probabilities(model, storage.join(tiles, tile_contract.TILES_FILE), spec.channels)
        self.write_scores(folder, data.score_table(index["ID"], index["cell_id"], scores))


class PredictImageOnCell(PredictTask):
    """Image model #2 (the profile's ``image_on_cell_model``) on every cell's image-on-cell input."""

    stage = "predict_image_on_cell"

    def model_task(self) -> TrainImageModel:
        return TrainImageModel(model=profile().image_on_cell.name)

    def upstream(self) -> list[StageTask]:
        from stages.tile.task import Tile

        return [Tile(split=self.split, shard=self.shard), self.model_task()]

    def predict(self, model, folder: str) -> None:
        from stages.classify import data
        from stages.tile import contract as tile_contract
        from stages.tile.task import Tile

        tiles = Tile(split=self.split, shard=self.shard).folder()
        index = read_tile_index(tiles)
        scores = self.probabilities(model, storage.join(tiles, tile_contract.IMAGE_ON_CELL_FILE), "green")
        self.write_scores(folder, data.score_table(index["ID"], index["cell_id"], scores))


class PredictImages(PredictTask):
    """An image model on every whole image of the shard; its probabilities go to every cell of the image."""

    stage = "predict_images"
    model = luigi.Parameter(description="zoo image model name")

    def model_task(self) -> TrainImageModel:
        return TrainImageModel(model=self.model)

    def inputs_task(self) -> ImageInputs:
        return ImageInputs(split=self.split, shard=self.shard, size=self.model_task().spec().input_size)

    def upstream(self) -> list[StageTask]:
        from stages.segment.task import Segment

        return [self.inputs_task(), Segment(split=self.split, shard=self.shard), self.model_task()]

    def predict(self, model, folder: str) -> None:
        from stages.classify import data
        from stages.segment.task import Segment, read_shard_cells

        inputs = self.inputs_task().folder()
        index = read_image_index(inputs)
        scores = self.probabilities(model, storage.join(inputs, contract.IMAGES_FILE), "green")
        images = data.image_score_table(index["ID"], scores)
        storage.write_table(storage.join(folder, contract.IMAGE_SCORES_FILE), images)
        cells = read_shard_cells(Segment(split=self.split, shard=self.shard).folder())
        self.write_scores(folder, data.broadcast_to_cells(images, cells))


# --------------------------------------------------------------------------------------------------- all shards


class ImageInputsAll(AllShards):
    shard_task = ImageInputs
    size = luigi.IntParameter()

    def shard_parameters(self) -> dict:
        return {"size": self.size}


class PredictCellsAll(AllShards):
    shard_task = PredictCells
    model = luigi.Parameter()

    def shard_parameters(self) -> dict:
        return {"model": self.model}


class PredictImagesAll(AllShards):
    shard_task = PredictImages
    model = luigi.Parameter()

    def shard_parameters(self) -> dict:
        return {"model": self.model}


class PredictImageOnCellAll(AllShards):
    shard_task = PredictImageOnCell

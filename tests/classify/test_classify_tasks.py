"""The classify and pseudolabel tasks end to end on tiny synthetic data: pseudo labels, training, every
prediction task, the score-table contract, fingerprints. Training is shortened (2 steps, eager) here; the
learning itself is checked in test_classify_learning.py."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import luigi
import luigi.configuration
import numpy as np
import pandas as pd
import pytest
from conftest import overridden

import stages
from stages import inputs, storage, tasking
from stages.classes import SCORE_COLUMNS
from stages.classify import contract
from stages.classify import core as classify_core
from stages.classify import stage as classify_stage
from stages.dev.synth.core import write_dataset
from stages.pseudolabel import contract as pseudo_contract
from stages.pseudolabel.core import pseudo_label_lists
from stages.scores import TABLE_COLUMNS
from stages.segment import contract as segment_contract
from stages.context import Context
from stages.tile import contract as tile_contract
from stages.zoo import get_profile

ImageInputs, Manifest, Segment, Tile = stages.ImageInputs, stages.Manifest, stages.Segment, stages.Tile
PredictCells, PredictImages, PredictImageOnCell = stages.PredictCells, stages.PredictImages, stages.PredictImageOnCell
PredictCellsAll, PredictImagesAll = stages.PredictCellsAll, stages.PredictImagesAll
PredictImageOnCellAll = stages.PredictImageOnCellAll
TrainCellModel, TrainImageModel = stages.TrainCellModel, stages.TrainImageModel
PseudoLabel, TrainFoldModel = stages.PseudoLabel, stages.TrainFoldModel

CELL_MODEL = "cell.b0_ext_pseudo_e1"  # trains on pseudo labels
IMAGE_MODEL = get_profile("demo").image_on_cell_model


def short_profile():
    """The demo profile with 2 training steps and 1 epoch per model: the tasks, not the learning; with the
    original's augmentations (cutmix + mixup for cell models), which the demo profile replaces."""
    demo, faithful = get_profile("demo"), get_profile("hpa2021")
    models = {name: dataclasses.replace(spec, epochs=1, augment=faithful.model(name).augment)
              for name, spec in demo.models.items()}
    return dataclasses.replace(demo, steps_per_epoch=2, validation_fraction=0.25, models=MappingProxyType(models))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    write_dataset(str(root / "data"), n_train=8, n_test=3, height=192, width=256, seed=3)
    settings = {"pipeline": {"input": root / "data", "work": root / "work", "profile": "demo", "shard_size": 4},
                "classify": {"run_eagerly": "true", "predict_batch_size": 16}}
    with overridden(settings), pytest.MonkeyPatch.context() as patch:
        patch.setattr(classify_stage, "profile", short_profile)
        tasks = [
            PredictCellsAll(split="test", model=CELL_MODEL),
            PredictImagesAll(split="test", model=IMAGE_MODEL),
            PredictImageOnCellAll(split="test"),
        ]
        ok = luigi.build(tasks, local_scheduler=True, workers=1, log_level="WARNING")
        yield {"root": root, "ok": ok}


def test_the_whole_chain_runs(world):
    assert world["ok"]
    assert TrainCellModel(model=CELL_MODEL).complete() and TrainImageModel(model=IMAGE_MODEL).complete()


def test_trained_model_folder_holds_model_history_and_record(world):
    folder = TrainCellModel(model=CELL_MODEL).folder()
    assert f"/train/{CELL_MODEL}." in folder  # then the digest of what the model read
    for name in (contract.MODEL.name, contract.HISTORY.name, contract.TRAINING.name, storage.SUCCESS_MARKER):
        assert storage.exists(storage.join(folder, name)), name
    history = storage.read_table(storage.join(folder, contract.HISTORY.name))
    assert history["epoch"].tolist() == [1] and {"loss", "auc", "val_loss"} <= set(history.columns)
    record = contract.TRAINING.read(folder)
    assert record["model"]["name"] == CELL_MODEL and record["labels"] == "pseudo labels"
    assert record["model"]["augment"] == ["cutmix", "mixup"] and record["batch_norm_recalibration_batches"] > 0
    assert record["splits"] == ["train"] and record["external"] == ""  # no external data configured
    assert record["training"]["steps_per_epoch"] == 2
    assert record["train_samples"] + record["validation_samples"] + record["dropped_tiles"] == \
        record["pseudo_labelled_tiles"] + record["dropped_tiles"]


def segment_keys(split: str, shard: int) -> pd.DataFrame:
    cells = segment_contract.CELLS.read(Segment(split=split, shard=shard).folder())
    return cells[["ID", "cell_id"]].astype({"ID": str}).reset_index(drop=True)


@pytest.mark.parametrize("task", [
    lambda: PredictCells(split="test", shard=0, model=CELL_MODEL),
    lambda: PredictImages(split="test", shard=0, model=IMAGE_MODEL),
    lambda: PredictImageOnCell(split="test", shard=0),
], ids=["cells", "images", "image_on_cell"])
def test_every_prediction_task_writes_one_row_per_segmented_cell(world, task):
    scores = contract.SCORES.read(task().folder())
    assert tuple(scores.columns) == TABLE_COLUMNS == contract.SCORES.columns
    keys = segment_keys("test", 0)
    assert len(keys) > 0
    pd.testing.assert_frame_equal(scores[["ID", "cell_id"]], keys, check_dtype=False)
    values = scores[list(SCORE_COLUMNS)].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()


def test_image_scores_are_broadcast_to_the_cells_of_each_image(world):
    folder = PredictImages(split="test", shard=0, model=IMAGE_MODEL).folder()
    images = contract.IMAGE_SCORES.read(folder)
    cells = contract.SCORES.read(folder)
    assert set(cells["ID"]) <= set(images["ID"])
    for image_id, group in cells.groupby("ID"):
        expected = images.loc[images["ID"] == image_id, list(SCORE_COLUMNS)].to_numpy()
        np.testing.assert_allclose(group[list(SCORE_COLUMNS)].to_numpy(), np.repeat(expected, len(group), axis=0))


def test_image_inputs_are_green_at_the_model_size(world):
    spec = short_profile().model(IMAGE_MODEL)
    folder = ImageInputs(split="test", shard=0, size=spec.input_size).folder()
    arrays = tile_contract.IMAGE_INPUTS.read(folder)
    index = tile_contract.IMAGE_INDEX.read(folder)
    assert arrays.shape == (3, spec.input_size, spec.input_size) and arrays.dtype == np.uint8
    assert index.columns.tolist() == ["ID", "width", "height", "Label"] == list(tile_contract.IMAGE_INDEX.columns)
    assert (index[["width", "height"]].to_numpy() == [256, 192]).all()


def test_pseudo_labels_follow_the_rule_on_the_out_of_fold_scores(world):
    task = PseudoLabel()
    folder = task.folder()
    oof = pseudo_contract.OOF_SCORES.read(folder)
    assert tuple(oof.columns) == ("ID", "cell_id", "split", "fold", *SCORE_COLUMNS)
    assert tuple(oof.columns) == pseudo_contract.OOF_SCORES.columns
    # every training tile is predicted exactly once, by the fold model that did not see its image
    assert not oof.duplicated(["split", "ID", "cell_id"]).any()
    assert oof.groupby("ID")["fold"].nunique().max() == 1
    assert sorted(oof["fold"].unique()) == [0, 1]
    rule = get_profile("demo").pseudo_label
    lists = pseudo_label_lists(oof[list(SCORE_COLUMNS)].to_numpy(), rule.positive_threshold, rule.negative_threshold)
    expected = {(image_id, cell_id): "|".join(map(str, classes))
                for image_id, cell_id, classes in zip(oof["ID"], oof["cell_id"], lists) if classes}
    labels = pseudo_contract.PSEUDO_LABELS.read(folder)
    assert dict(zip(zip(labels["ID"], labels["cell_id"]), labels["Label"])) == expected
    summary = pseudo_contract.SUMMARY.read(folder)
    assert summary["kept"] == len(labels) and summary["tiles"] == len(oof)
    for fold in (0, 1):
        record = contract.TRAINING.read(TrainFoldModel(fold=fold).folder())
        assert record["fold"] == fold and record["labels"].startswith("weak")


def test_fingerprints_follow_the_settings(world):
    before = TrainCellModel(model=CELL_MODEL).fingerprint()
    predict_before = PredictCells(split="test", shard=0, model=CELL_MODEL).fingerprint()
    assert TrainCellModel(model="cell.b7_e1").fingerprint() != before
    with overridden({"classify": {"learning_rate": 0.0005}}):
        assert TrainCellModel(model=CELL_MODEL).fingerprint() != before
        assert PredictCells(split="test", shard=0, model=CELL_MODEL).fingerprint() != predict_before
    with overridden({"classify": {"predict_batch_size": 7, "loader_workers": 3}}):  # operational: same artifacts
        assert TrainCellModel(model=CELL_MODEL).fingerprint() == before


def test_test_time_augment_changes_the_predictions_not_the_trained_models(world, monkeypatch):
    def fingerprints():
        return {task.task_id: task.fingerprint() for task in (
            TrainCellModel(model="cell.b7_e1"), TrainImageModel(model=IMAGE_MODEL), TrainFoldModel(fold=0),
            TrainCellModel(model=CELL_MODEL),
            PredictCells(split="test", shard=0, model=CELL_MODEL),
            PredictImages(split="test", shard=0, model=IMAGE_MODEL), PredictImageOnCell(split="test", shard=0))}

    before = fingerprints()
    short = short_profile()
    augmented = dataclasses.replace(short, models=MappingProxyType({
        name: spec if spec.role == "detector" else dataclasses.replace(spec, test_time_augment=("flip",))
        for name, spec in short.models.items()}))
    monkeypatch.setattr(classify_stage, "profile", lambda: augmented)
    monkeypatch.setattr(tasking, "_fingerprints", {})  # cached per config state, which a patched zoo leaves alone
    after = fingerprints()
    trained = list(before)[:2]  # models on weak labels: retraining them would change nothing
    assert {name: after[name] for name in trained} == {name: before[name] for name in trained}
    # the fold models predict their held-out folds, so the pseudo labels and the model trained on them change
    # too; and the three prediction tasks predict
    assert all(after[name] != before[name] for name in list(before)[2:])


def test_role_mismatch_and_unknown_models_fail_loudly(world):
    # the task's declared needs and content both resolve the model's zoo entry: either fails loudly
    for resolve in ("needs", "content_settings"):
        with pytest.raises(ValueError, match="not a cell model"):
            getattr(TrainCellModel(model=IMAGE_MODEL), resolve)()
        with pytest.raises(KeyError, match="unknown model"):
            getattr(TrainImageModel(model="image.nope"), resolve)()
    assert json.loads(json.dumps(classify_stage.training_content(short_profile().model(CELL_MODEL))))


def tile_index(task, splits: list[str]) -> pd.DataFrame:
    """Every tile a training task reads, through its declared inputs: one index row per tile, with its split."""
    shards = classify_stage.shards_of(Context(task, task.folder()), "Tile", splits)
    assert [(split, shard.folder) for split, shard in shards] == [
        (split, Tile(split=split, shard=shard).folder())
        for split in splits for shard in range(inputs.shard_count(split))]
    return classify_core.stacked_index([(split, shard.read(tile_contract.INDEX)) for split, shard in shards])


def test_external_data_is_a_second_training_split(world):
    """A configured external root (same layout) becomes the ``external`` split: segmented and tiled like the
    training split and read by the models whose zoo entry sets external_data, and by no other."""
    external_model, plain_model = "cell.b7_ext_green_e1", "cell.b7_e1"
    assert classify_stage.training_splits(short_profile().model(external_model)) == ["train"]
    with pytest.raises(ValueError, match="no external data is configured"):
        Manifest(split="external").run_here()
    root = world["root"]
    write_dataset(str(root / "external"), n_train=3, n_test=0, height=160, width=224, seed=11)
    with overridden({"pipeline": {"external": root / "external"}}), pytest.MonkeyPatch.context() as patch:
        patch.setattr(classify_stage, "profile", short_profile)
        assert classify_stage.training_splits(short_profile().model(plain_model)) == ["train"]
        assert luigi.build([TrainCellModel(model=external_model)], local_scheduler=True, workers=1,
                           log_level="WARNING")
        trained = TrainCellModel(model=external_model)
        record = contract.TRAINING.read(trained.folder())
        tiles = tile_index(trained, ["train", "external"])
    assert record["splits"] == ["train", "external"] and record["external"] == str(root / "external")
    assert set(tiles["split"]) == {"train", "external"}
    assert len(set(tiles.loc[tiles["split"] == "external", "ID"])) == 3
    assert record["train_samples"] + record["validation_samples"] == len(tiles)

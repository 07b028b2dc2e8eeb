"""The submit-stage tasks on a tiny synthetic run whose score sources are stand-ins (no model training):
Fuse -> WriteSubmission -> Evaluate -> Report -> Submission, reruns, and the graph shrinking with the
fusion weights."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import zlib
from pathlib import Path

import luigi
import luigi.configuration
import numpy as np
import pandas as pd
import pytest
from pycocotools import mask as coco_mask

import stages.registry
from stages import Fuse, Segment, Submission, WriteSubmission, inputs, storage
from stages.classes import NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.config import pipeline
from stages.declare import Stage, TaskSpec, this_shard
from stages.dev.synth.core import write_dataset
from stages.fuse import stage as fuse_stage
from stages.inputs import load_manifest
from stages.scores import SCORES
from stages.segment import contract as segment_contract
from stages.submit import contract as submit_contract
from stages.submit import summary
from stages.submit.evaluate import iou_matrix
from stages.submit.stage import read_truth_labels
from stages.shards import fan_out_classes
from stages.submit.publish import published_text
from stages.tasking import make_task_class


def build(*tasks) -> bool:
    return luigi.build(list(tasks), local_scheduler=True, workers=1, log_level="WARNING")


def stand_in_scores(ctx) -> dict:
    """A score source for tests: ``quality`` 1 scores each cell by the truth cell it overlaps most (an
    oracle), 0 scores at random; always one row per segment cell, the shape every real source has."""
    segment = ctx.input("segment")
    cells = segment.read(segment_contract.CELLS)
    truth_root = storage.join(pipeline().input, "truth")
    truth_cells = storage.read_table(storage.join(truth_root, "cells.csv"), dtype={"ID": str})
    quality, seed, shard = ctx.params["quality"], ctx.params["seed"], ctx.params["shard"]
    rng = np.random.default_rng(seed + 1000 * shard)
    rows = []
    for image_id, group in cells.groupby("ID", sort=False):
        labels, _ = segment.read(segment_contract.LABELS, image_id=image_id)
        truth = read_truth_labels(truth_root, image_id)
        iou = iou_matrix(labels, truth)
        classes = dict(zip(truth_cells.loc[truth_cells.ID == image_id, "cell_id"],
                           truth_cells.loc[truth_cells.ID == image_id, "Label"]))
        for cell_id in group["cell_id"]:
            oracle = np.zeros(NUM_CLASSES)
            best = int(iou[cell_id].argmax()) if cell_id < len(iou) else 0
            if best and iou[cell_id, best] > 0:
                oracle[parse_labels(classes.get(best, ""))] = 1.0
            noise = rng.uniform(0, 1, NUM_CLASSES)
            rows.append([image_id, cell_id, *(quality * (0.5 + 0.5 * oracle * noise) + (1 - quality) * noise)])
    return {SCORES: pd.DataFrame(rows, columns=["ID", "cell_id", *SCORE_COLUMNS])}


STAND_IN = TaskSpec(
    name="StandInScores", doc="Per shard: a stand-in score source (no model), in the one score-table shape.",
    needs=lambda task: {"segment": this_shard("Segment")}, outputs=(SCORES,),
    content=lambda task: {"quality": task.quality, "seed": task.seed,
                          "truth": str(luigi.configuration.get_config().get("pipeline", "input"))},
    params={"quality": luigi.FloatParameter(), "seed": luigi.IntParameter(default=0)},
    run=stand_in_scores, per_shard=True, folder="shard-{shard:05d}", directory="test_stand_in_scores",
)
StandInScores = make_task_class(Stage(name="test_stand_in", doc="stand-in sources", tasks=(STAND_IN,),
                                      whole="StandInScores"), STAND_IN)
STAND_IN_FAN_OUT = fan_out_classes(StandInScores)


QUALITY = {"cell": 1.0, "image": 0.0, "detector": 0.5, "image_on_cell": 0.0}


def stand_in_needs(sources):
    """In place of :func:`stages.fuse.stage.source_needs`: each fused source read from a stand-in."""
    return {source: [this_shard("StandInScores", quality=QUALITY[source], seed=index)]
            for index, source in enumerate(sources)}




@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("data"))
    write_dataset(folder, 1, 5, 144, 208, 11)  # not square
    return folder


@pytest.fixture
def run(data, tmp_path, pipeline_settings, config_section, monkeypatch):
    monkeypatch.setitem(stages.registry.TASKS, "StandInScores", StandInScores)
    for name, task_class in STAND_IN_FAN_OUT.items():
        monkeypatch.setitem(stages.registry.TASKS, name, task_class)
    monkeypatch.setattr(fuse_stage, "source_needs", stand_in_needs)
    pipeline_settings(input=data, work=str(tmp_path / "work"), profile="demo", shard_size=2)
    config_section("fuse", weights=json.dumps({"cell": 0.5, "image": 0.2, "detector": 0.3}))
    return tmp_path / "work"


def coco_decode(text, height, width):
    counts = zlib.decompress(base64.b64decode(text))
    return coco_mask.decode({"size": [height, width], "counts": counts}).astype(bool)


def test_submission_end_to_end_on_stand_in_sources(run, data):
    started = time.monotonic()
    assert build(Submission())
    first_run = time.monotonic() - started
    work = run
    manifest = load_manifest("test")

    submission = pd.read_csv(work / "submission.csv", dtype={"ID": str}, keep_default_na=False)
    assert submission["ID"].tolist() == manifest["ID"].tolist()
    assert (work / "submission.csv").read_bytes() == storage.read_bytes(
        submit_contract.SUBMISSION.uri(WriteSubmission().folder()))
    for row in submission.itertuples():
        shard = int(manifest.loc[manifest.ID == row.ID, "shard"].iloc[0])
        labels, _ = segment_contract.LABELS.read(Segment(split="test", shard=shard).folder(), image_id=row.ID)
        assert (row.ImageHeight, row.ImageWidth) == labels.shape == (144, 208)
        tokens = row.PredictionString.split()
        cells = [int(value) for value in np.unique(labels) if value]
        assert len(tokens) == 3 * NUM_CLASSES * len(cells) > 0
        for index in range(0, len(tokens), 3 * NUM_CLASSES):  # every cell's 19 triples share one mask
            triples = [tokens[index + 3 * k: index + 3 * k + 3] for k in range(NUM_CLASSES)]
            assert [int(t[0]) for t in triples] == list(range(NUM_CLASSES))
            assert len({t[2] for t in triples}) == 1
            decoded = coco_decode(triples[0][2], row.ImageHeight, row.ImageWidth)
            (cell_id,) = np.unique(labels[decoded])
            np.testing.assert_array_equal(decoded, labels == cell_id)

    evaluation = json.loads((work / "evaluation.json").read_text())
    assert set(evaluation["sources"]) == {"cell", "image", "detector"}  # image_on_cell has no weight
    assert evaluation["images"] == len(manifest)
    oracle, noise = evaluation["sources"]["cell"]["mAP"], evaluation["sources"]["image"]["mAP"]
    # the oracle ranks at least as well as noise (on so few images the metric forgives a lot: it only
    # compares cells of images that hold the class, and most synthetic cells show their image's labels)
    assert oracle >= noise and oracle >= evaluation["sources"]["detector"]["mAP"], evaluation
    assert evaluation["submission_file"]["mAP"] == pytest.approx(evaluation["fused"]["mAP"], abs=1e-4)
    # what a command prints at its end, naming the rule (the demo profile's gate included)
    assert f"fused ({summary.fusion_label(evaluation['fusion'])}): mAP" in published_text()

    page = (work / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "<svg" in page and "image alone" in page
    assert f"{evaluation['fused']['mAP']:.4f}" in page
    published = json.loads((work / "published.json").read_text())
    assert set(published["copies"]) == {str(work / name) for name in ("submission.csv", "report.html", "evaluation.json")}
    assert published["pipeline"] == {"work": str(work), "input": data, "external": "", "profile": "demo",
                                     "shard_size": 2}  # what later commands (stages.predict) read back

    # nothing to do: complete at once, no file touched
    stamps = {path: os.path.getmtime(path) for path in published["copies"]}
    started = time.monotonic()
    assert Submission().complete()
    assert build(Submission())
    assert time.monotonic() - started < max(5.0, first_run / 3)
    assert {path: os.path.getmtime(path) for path in published["copies"]} == stamps


def test_a_published_copy_changed_by_anything_else_is_published_again(run):
    assert build(Submission())
    work = Path(pipeline().work)
    record = json.loads((work / "published.json").read_text())
    good = (work / "submission.csv").read_bytes()
    assert record["sha256"][str(work / "submission.csv")] == hashlib.sha256(good).hexdigest()
    (work / "submission.csv").write_bytes(good[: len(good) // 2])  # e.g. another run's copy, or a cut one
    assert not Submission().complete()
    assert build(Submission())
    assert (work / "submission.csv").read_bytes() == good and Submission().complete()
    # a publish that dies after its first copy leaves no record: the next run publishes again
    (work / "published.json").unlink()
    assert not Submission().complete()


def test_changed_weights_make_new_artifacts_and_republish(run, config_section):
    assert build(Submission())
    before = WriteSubmission().output().uri
    fused_before = Fuse(split="test", shard=0).folder()
    config_section("fuse", weights=json.dumps({"cell": 1.0}), mode="multiplicative")
    assert Fuse(split="test", shard=0).folder() != fused_before
    assert WriteSubmission().output().uri != before
    assert not Submission().complete()
    assert build(Submission())
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert list(evaluation["sources"]) == ["cell"] and evaluation["fusion"]["mode"] == "multiplicative"
    assert evaluation["fused"]["mAP"] == pytest.approx(evaluation["sources"]["cell"]["mAP"])  # one source


def test_without_truth_there_is_no_evaluation(run, config_section, tmp_path):
    config_section("submit", truth=str(tmp_path / "no-truth-here"))
    assert [type(task).__name__ for task in Submission().requires()] == ["WriteSubmission", "Report"]
    assert build(Submission())
    assert not (run / "evaluation.json").exists()
    assert "No per-cell truth" in (run / "report.html").read_text()


def add_test_image(data: Path, seed: int) -> str:
    """A test image from another synthetic set, copied in as a user would add one: its four channel files,
    its row of sample_submission.csv, and its truth. Its ID sorts after the others: the last shard gets it."""
    extra = data.parent / f"extra-{seed}"
    write_dataset(str(extra), 0, 1, 144, 208, seed)
    (image_id,) = pd.read_csv(extra / "sample_submission.csv", dtype=str)["ID"]
    for source in [*(extra / "test").iterdir(), *(extra / "truth").glob(f"{image_id}_*")]:
        (data / source.parent.name / source.name).write_bytes(source.read_bytes())
    for table in ("sample_submission.csv", "truth/cells.csv", "truth/images.csv"):
        with open(data / table, "a") as handle:
            handle.write("".join((extra / table).read_text().splitlines(keepends=True)[1:]))
    return image_id


def test_an_added_test_image_appears_in_the_submission_and_the_other_shards_are_reused(run, data, tmp_path,
                                                                                       pipeline_settings):
    own = tmp_path / "data"
    write_dataset(str(own), 1, 5, 144, 208, 11)
    pipeline_settings(input=str(own))
    assert build(Submission())
    shards = load_manifest("test")["shard"].max() + 1
    segmented = {shard: os.path.getmtime(Segment(split="test", shard=shard).output().uri) for shard in range(shards)}

    added = add_test_image(own, seed=12)
    inputs.refresh()  # a new run
    assert not Submission().complete()
    assert build(Submission())

    submission = pd.read_csv(run / "submission.csv", dtype={"ID": str}, keep_default_na=False)
    assert submission["ID"].tolist()[-1] == added and len(submission) == 6
    assert submission["PredictionString"].iloc[-1].split()  # its cells are there
    last = int(load_manifest("test").set_index("ID").loc[added, "shard"])
    for shard, stamp in segmented.items():  # the shards that did not change were not segmented again
        now = os.path.getmtime(Segment(split="test", shard=shard).output().uri)
        assert (now == stamp) == (shard != last), shard
    assert json.loads((run / "evaluation.json").read_text())["images"] == 6


@pytest.mark.parametrize(
    "weights, gate, expected",
    [
        ({"cell": 1}, "none", {"PredictCells"}),
        ({"detector": 1, "image": 0}, "none", {"Match"}),
        ({"image": 0.5, "image_on_cell": 0.5}, "none", {"PredictImages", "PredictImageOnCell"}),
        ({"detector": 1}, "cells", {"Match", "PredictCells"}),  # a gate's source is read without a weight
        ({"detector": 1}, "image", {"Match", "PredictImages"}),
    ],
)
def test_a_source_left_out_is_not_in_the_graph(weights, gate, expected, pipeline_settings, config_section, tmp_path):
    pipeline_settings(work=str(tmp_path / "work"), profile="demo")
    config_section("fuse", weights=json.dumps(weights), gate=gate)
    required = {type(task).__name__ for task in Fuse(split="test", shard=0).requires()}
    assert required == expected


def test_bad_fusion_config_fails_before_work(pipeline_settings, config_section, tmp_path):
    pipeline_settings(work=str(tmp_path / "work"), profile="demo")
    config_section("fuse", weights='{"cell": 1, "yolo": 1}')
    with pytest.raises(KeyError, match="unknown fusion source"):
        Fuse(split="test", shard=0).requires()
    config_section("fuse", weights="{}", mode="")
    with pytest.raises(ValueError, match="positive weight"):
        Fuse(split="test", shard=0).requires()
    config_section("fuse", weights="", mode="sum")
    with pytest.raises(ValueError, match="fusion mode"):
        Fuse(split="test", shard=0).requires()

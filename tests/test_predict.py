"""``python -m stages.predict``: one field of view through a trained run.

Training the demo ensemble takes minutes, so the trained run here is made of stand-ins: untrained models
of the zoo's exact architectures, saved where the training tasks put theirs (their folders asked from the
tasks under the same settings) and closed with the tasks' done markers. Loading, prediction, matching,
fusion, printing and drawing are the command's real code; learning is tested in tests/classify and
tests/detect. The command run in a subprocess uses the image-on-cell and detector sources (one Keras model,
one YOLO, about 20 s); every source together, the cell and image models included, is checked in-process
with stand-in predictors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import overridden

from stages import inputs, local_paths, predict, storage
from stages.classes import CHANNELS, CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS
from stages.dev.synth.core import write_dataset
from stages.fields import read_field
from stages.manifest.core import channel_files
from stages.segment.core import SegmentSettings, cell_table, segment_classic
from stages.inmemory import trained_models
from stages.zoo import get_profile

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 160, 224  # not square: the overlay and the centroids must keep (x, y) apart
RUN_WEIGHTS = {"image_on_cell": 0.6, "detector": 0.4}
LINE = re.compile(r"^cell\s+(\d+) at x=\s*([-\d.]+) y=\s*([-\d.]+): (.*)$")
CLASS_ITEM = re.compile(r"^(.+) \((\d+)\) ([\d.]+)$")


def write_stand_in_models(tasks, profile, config_dir: Path) -> None:
    """Untrained models of the zoo's architectures where the training tasks would have written theirs."""
    from stages.classify import contract as classify_contract
    from stages.classify import models
    from stages.detect import contract as detect_contract
    from stages.detect import yolo

    for task in tasks:
        if task.get_task_family() == "TrainYolo":
            model = yolo.build_model(profile.detector.architecture, config_dir=config_dir)
            with local_paths.staged_output(detect_contract.WEIGHTS.uri(task.folder()), ".pt") as path:
                model.save(str(path))
        else:
            model = models.build_classifier(profile.model(task.model))
            classify_contract.MODEL.write(task.folder(), models.classifier_bytes(model))
        storage.mark_done(task.folder())  # the tasks' done marker, written last


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data, work, config_dir = root / "data", root / "work", root / "ultralytics"
    write_dataset(str(data), 1, 1, HEIGHT, WIDTH, 5)
    values = {
        "pipeline": {"input": str(data), "work": str(work), "profile": "demo", "shard_size": "32"},
        "fuse": {"weights": json.dumps(RUN_WEIGHTS), "mode": "weighted", "gate": "none"},
        "detector": {"device": "cpu", "config_dir": str(config_dir)},
    }
    cfg = root / "run.cfg"  # what the run's user has: the luigi.cfg the pipeline ran with
    cfg.write_text("".join(f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items()) + "\n"
                           for section, keys in values.items()))
    with overridden(values):
        tasks = trained_models(predict.shard_task("Fuse"))
        assert sorted(task.get_task_family() for task in tasks) == ["TrainImageModel", "TrainYolo"]
        write_stand_in_models(tasks, get_profile("demo"), config_dir)
    (image_id,) = channel_files(storage.listdir(str(data / "test")))
    return {"root": root, "data": data, "work": work, "cfg": cfg, "image_id": image_id,
            "prefix": str(data / "test" / image_id)}


def reference_segmentation(folder: Path, image_id: str) -> tuple[np.ndarray, pd.DataFrame]:
    files = channel_files(storage.listdir(str(folder)))[image_id]
    field = read_field(str(folder), image_id, files)
    cells, _ = segment_classic(field, SegmentSettings())
    return field, cell_table(cells)


def run_command(run, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(run["cfg"]), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "stages.predict", *arguments], check=False, cwd=os.getcwd(),
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_command_prints_every_cell_and_writes_the_overlay(trained_run):
    out, scores = trained_run["root"] / "overlay.png", trained_run["root"] / "cells.csv"
    done = run_command(trained_run, "--run", str(trained_run["work"]), trained_run["prefix"],
                       "--out", str(out), "--top", "2", "--scores", str(scores))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    _, table = reference_segmentation(trained_run["data"] / "test", trained_run["image_id"])
    assert len(table) > 1
    printed = [LINE.match(line) for line in done.stdout.splitlines() if line.startswith("cell ")]
    assert all(printed), done.stdout
    assert [int(match[1]) for match in printed] == table["cell_id"].tolist()
    np.testing.assert_allclose([[float(match[2]), float(match[3])] for match in printed],
                               table[["centroid_x", "centroid_y"]].to_numpy(), atol=0.051)
    for match in printed:
        items = [CLASS_ITEM.match(item) for item in match[4].split(", ")]
        assert len(items) == 2 and all(items), match[0]
        assert all(CLASS_NAMES[int(item[2])] == item[1] and 0 <= float(item[3]) <= 1 for item in items)
        assert float(items[0][3]) >= float(items[1][3])
    header = done.stdout.splitlines()[0]
    assert f"{WIDTH}x{HEIGHT} px, {len(table)} cell(s)" in header and "detector 0.4, image_on_cell 0.6" in header

    overlay = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert overlay is not None and overlay.shape == (HEIGHT, WIDTH, 3)  # full resolution by default
    written = pd.read_csv(scores, dtype={"ID": str})
    assert written["cell_id"].tolist() == table["cell_id"].tolist()
    values = written[list(SCORE_COLUMNS)].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()


def test_a_missing_model_is_a_clear_error(trained_run, pipeline_settings, tmp_path, capsys):
    with overridden({"fuse": {"weights": "", "mode": "", "gate": ""}}):  # the profile's fusion: every source
        out = tmp_path / "overlay.png"
        empty = tmp_path / "never-trained"
        assert predict.main(["--run", str(empty), trained_run["prefix"], "--input", str(trained_run["data"]),
                             "--profile", "demo", "--out", str(out)]) == 2
        message = capsys.readouterr().err
        assert "run the pipeline first" in message and str(empty) in message
        for task in ("TrainCellModel", "TrainImageModel", "TrainYolo"):
            assert task in message
        # cell, image (image-on-cell reads image model #2: one model, named once), detector: the demo's members
        demo = get_profile("demo")
        assert message.count("not found at") == len(demo.role("cell")) + len(demo.role("image")) + 1 == 3
        assert not out.exists()

        # The stand-in run holds image model #2 and the detector, not the other ensemble members.
        assert predict.main(["--run", str(trained_run["work"]), trained_run["prefix"], "--input",
                             str(trained_run["data"]), "--out", str(out)]) == 2
        message = capsys.readouterr().err
        assert "has no trained model for 1 of the 3 model(s)" in message, message
        assert demo.role("cell")[0].name in message and "image.b7_600_noext" not in message
        assert "TrainYolo" not in message and not out.exists()


class StandInClassifier:
    """Keras' prediction interface: a fixed probability vector per input, and a record of the batches."""

    def __init__(self, size: int, planes: int, probabilities: np.ndarray):
        self.input_shape = (None, size, size, planes)
        self.probabilities = probabilities
        self.batches: list[tuple[int, ...]] = []

    def predict_on_batch(self, batch):
        self.batches.append(batch.shape)
        return np.tile(self.probabilities, (len(batch), 1)).astype(np.float32)


def test_every_source_is_predicted_from_the_pipelines_inputs_and_fused(trained_run, monkeypatch, tmp_path):
    profile = get_profile("demo")
    field, table = reference_segmentation(trained_run["data"] / "test", trained_run["image_id"])
    rng = np.random.default_rng(0)
    stand_ins = {spec.name: StandInClassifier(spec.input_size, 3 if spec.channels == "rgb" else 1,
                                              rng.uniform(0, 1, NUM_CLASSES))
                 for spec in (*profile.role("cell"), *profile.role("image"))}
    # the trained run's model files, as the prediction tasks load them: <work>/.../<model>/model.keras
    monkeypatch.setattr("stages.classify.inference.load_model",
                        lambda uri: stand_ins[uri.rsplit("/", 2)[-2].rsplit(".", 1)[0]])
    monkeypatch.setattr("stages.detect.runtime.cached_model", lambda *args: "stand-in detector")
    first = table.iloc[0]
    seen = {}

    def stand_in_detector(model, greens, image_ids, size, device, batch=16):
        seen.update(model=model, shape=greens[0].shape, size=size)
        # one box of class 5 centred on the first cell (pixel edges: the centroid plus half a pixel)
        x, y = first["centroid_x"] + 0.5, first["centroid_y"] + 0.5
        return pd.DataFrame({"ID": image_ids, "class": [5], "confidence": [0.9], "x0": [x - 3], "y0": [y - 3],
                             "x1": [x + 3], "y1": [y + 3]})

    monkeypatch.setattr("stages.detect.yolo.detect_greens", stand_in_detector)
    weights = {"cell": 0.5, "image": 0.3, "detector": 0.1, "image_on_cell": 0.1}
    values = {"pipeline": {"input": str(trained_run["data"]), "work": str(tmp_path / "work"), "profile": "demo"},
              "fuse": {"weights": json.dumps(weights), "mode": "weighted", "gate": "cells"},
              "classify": {"predict_batch_size": 4},
              "detector": {"device": "cpu"}}
    with overridden(values):
        for task in trained_models(predict.shard_task("Fuse")):  # every model "trained": the stand-ins load
            storage.mark_done(task.folder())
        cells, rows, fused = predict.predict_image("img", field)

    assert rows["cell_id"].tolist() == fused["cell_id"].tolist() == table["cell_id"].tolist()
    assert set(fused["ID"]) == {"img"}
    n = len(table)
    for spec in profile.role("cell"):  # tiles of the tile size, RGB or green alone, in batches of 4
        planes = 3 if spec.channels == "rgb" else 1
        batches = stand_ins[spec.name].batches
        assert sum(shape[0] for shape in batches) >= n and {shape[0] for shape in batches} == {min(4, n)}
        assert {shape[1:] for shape in batches} == {(profile.tile_size, profile.tile_size, planes)}
    image_on_cell = profile.image_on_cell
    for spec in profile.role("image"):  # one whole green image per image model
        batches = stand_ins[spec.name].batches
        assert (1, spec.input_size, spec.input_size, 1) in batches
        if spec.name != image_on_cell.name:
            assert batches == [(1, spec.input_size, spec.input_size, 1)]
    # image model #2 also reads every cell's image-on-cell input, green, at its own input size
    batches = stand_ins[image_on_cell.name].batches
    assert sum(shape[0] for shape in batches) >= 1 + n
    assert {shape[1:] for shape in batches} == {(image_on_cell.input_size, image_on_cell.input_size, 1)}
    assert seen == {"model": "stand-in detector", "shape": (HEIGHT, WIDTH), "size": profile.detector.input_size}

    detector = np.zeros((n, NUM_CLASSES))
    detector[0, 5] = 0.9
    cell = np.mean([stand_ins[spec.name].probabilities for spec in profile.role("cell")], axis=0)
    image = np.mean([stand_ins[spec.name].probabilities for spec in profile.role("image")], axis=0)
    expected = 0.5 * cell + 0.3 * image + 0.1 * stand_ins[image_on_cell.name].probabilities + 0.1 * detector
    expected = expected * cell  # the cells gate: every cell scores ``cell``, so that is also its mean over the image
    np.testing.assert_allclose(fused[list(SCORE_COLUMNS)].to_numpy(), expected, rtol=1e-6)

    lines = predict.cell_lines(rows, fused, 3)
    assert len(lines) == n and all(LINE.match(line) for line in lines)
    png = predict.overlay_png(field, cells, fused, 2, max_side=112)
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (80, 112, 3)

    # a model that reads another input size than the run's inputs fails, naming the model
    name = profile.role("cell")[0].name
    stand_ins[name] = StandInClassifier(profile.tile_size * 2, 3, np.zeros(NUM_CLASSES))
    with overridden(values), pytest.raises(ValueError, match=name):
        predict.predict_image("img", field)


def test_the_image_is_found_by_prefix_or_by_a_channel_file(any_root):
    folder = storage.join(any_root, "images")
    for channel in CHANNELS:
        storage.write_bytes(storage.join(folder, f"r_1_x_{channel}.jpg"), b"")
    storage.write_bytes(storage.join(folder, "r_2_red.png"), b"")
    assert predict.locate_image(storage.join(folder, "r_1_x")) == (
        folder, "r_1_x", {channel: f"r_1_x_{channel}.jpg" for channel in CHANNELS})
    assert predict.locate_image(storage.join(folder, "r_1_x_green.jpg"))[1] == "r_1_x"
    with pytest.raises(predict.PredictError, match="no green, blue, yellow channel"):
        predict.locate_image(storage.join(folder, "r_2"))
    with pytest.raises(predict.PredictError, match="no channel files"):
        predict.locate_image(storage.join(folder, "r_3"))


def test_an_image_without_cells_still_gets_its_overlay(trained_run, pipeline_settings, tmp_path, capsys):
    for channel in CHANNELS:  # an empty field of view: nothing to segment
        cv2.imwrite(str(tmp_path / f"blank_{channel}.png"), np.zeros((48, 64), np.uint8))
    with overridden({"fuse": {"weights": json.dumps(RUN_WEIGHTS), "mode": "weighted", "gate": "none"}}):
        out = tmp_path / "blank.png"
        assert predict.main(["--run", str(trained_run["work"]), str(tmp_path / "blank"), "--input",
                             str(trained_run["data"]), "--profile", "demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "64x48 px, 0 cell(s)" in printed and "no cells found" in printed and "\ncell " not in printed
    assert cv2.imread(str(out)).shape == (48, 64, 3)


def test_the_runs_record_gives_the_defaults(tmp_path):
    """A published run records its pipeline settings, so the command needs only --run."""
    from stages.submit.publish import Submission

    work = tmp_path / "work"
    recorded = {"input": str(tmp_path / "data"), "external": str(tmp_path / "ext"), "profile": "hpa2021",
                "shard_size": 7}
    write_dataset(recorded["input"], 1, 1, 64, 64, 0)
    write_dataset(recorded["external"], 1, 0, 64, 64, 1)
    with overridden({"pipeline": {**recorded, "work": str(work)}}):
        record = Submission().record()
        storage.write_json(storage.join(str(work), "published.json"), record)
    assert set(record["inputs"]) == {"train", "test", "external"}
    with overridden({"pipeline": {"input": "elsewhere", "external": "", "profile": "demo", "shard_size": 32}}):
        assert predict.configure(str(work)) == {"work": str(work), "input": recorded["input"], "profile": "hpa2021"}
        assert predict.pipeline().external == recorded["external"] and predict.pipeline().shard_size == 7
        shutil.rmtree(recorded["input"])  # the models are found by the input the run read, wherever it is now
        inputs.refresh()
        assert inputs.listing_digest("train") == record["inputs"]["train"]
        assert predict.configure(str(work), input_uri="given", profile="demo")["input"] == "given"

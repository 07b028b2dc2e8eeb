"""The detect and match tasks end to end on synthetic data, offline on CPU (demo profile).

One child process trains the detector and predicts with every network call made to fail (see
offline_run.py); the tests below read what it left in storage. A second, model-free test drives the
Detect and Match tasks over a non-square image with a stand-in detector, to prove that boxes come back in
original pixels with x = column and y = row.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import luigi
import luigi.configuration
import numpy as np
import pandas as pd
import pytest
from conftest import REAL_DATA
import yaml

import stages
from stages import inputs, local_paths, storage
from stages.classes import NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.detect import contract, core, runtime, yolo
from stages.dev.synth.core import write_dataset
from stages.inputs import load_manifest
from stages.match import contract as match_contract
from stages.match import core as match_core
from stages.scores import TABLE_COLUMNS
from stages.segment import contract as segment_contract
from stages.segment.labels import cell_table
from stages.zoo import get_profile

Detect, DetectAll, Manifest, Match = stages.Detect, stages.DetectAll, stages.Manifest, stages.Match
Segment, TrainYolo, YoloDataset, YoloExport = stages.Segment, stages.TrainYolo, stages.YoloDataset, stages.YoloExport

OFFLINE_RUN = Path(__file__).with_name("offline_run.py")
HEIGHT, WIDTH = 128, 160  # non-square on purpose
SHARD_SIZE = 4


def load_boxes(split: str, shard: int) -> pd.DataFrame:
    """A Detect shard's box table, read through the contract."""
    return contract.BOXES.read(Detect(split=split, shard=shard).folder())


def load_scores(split: str, shard: int) -> pd.DataFrame:
    """A Match shard's score table, read through the contract."""
    return match_contract.SCORES.read(Match(split=split, shard=shard).folder())


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect_offline")
    data, work, config_dir = root / "data", root / "work", root / "ultralytics"
    write_dataset(str(data), 12, 3, HEIGHT, WIDTH, 5)
    settings = {
        "input": str(data), "work": str(work), "profile": "demo", "shard_size": SHARD_SIZE,
        "config_dir": str(config_dir), "report": str(root / "report.json"),
        "tasks": [["MatchAll", {"split": "test"}]],
    }
    (root / "settings.json").write_text(json.dumps(settings))
    child = subprocess.run([sys.executable, str(OFFLINE_RUN), str(root / "settings.json")],
                           capture_output=True, text=True, timeout=900)
    report = json.loads((root / "report.json").read_text()) if (root / "report.json").exists() else {}
    return SimpleNamespace(root=root, data=data, work=work, config_dir=config_dir, report=report,
                           returncode=child.returncode, log=child.stdout[-4000:] + child.stderr[-8000:])


@pytest.fixture
def offline(offline_run, pipeline_settings, detector_settings):
    """The child's artifacts, with this process configured like the child so task paths resolve."""
    pipeline_settings(input=offline_run.data, work=offline_run.work, profile="demo", shard_size=SHARD_SIZE)
    detector_settings(device="cpu", workers=0, config_dir=offline_run.config_dir)
    return offline_run


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access attempted in an offline test")

    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_training_and_prediction_run_with_every_network_call_failing(offline_run):
    assert offline_run.returncode == 0 and offline_run.report.get("ok"), offline_run.log
    assert offline_run.report["attempts"] == []
    assert offline_run.report["ultralytics_online"] is False
    assert (offline_run.config_dir / "Ultralytics" / "Arial.ttf").stat().st_size > 0
    settings = json.loads((offline_run.config_dir / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False


def test_dataset_export_follows_the_contract(offline):
    size = get_profile("demo").detector.input_size
    root = YoloDataset(split="train").folder()
    description = yaml.safe_load(contract.DATASET.read(root))
    assert description["nc"] == NUM_CLASSES and "path" not in description
    subsets = {name: storage.read_bytes(storage.join(root, file)).decode().split()
               for name, file in contract.SUBSET_FILES.items()}
    manifest = load_manifest("train")
    assert len(subsets["val"]) >= 1 and not set(subsets["train"]) & set(subsets["val"])
    assert len(subsets["train"]) + len(subsets["val"]) == len(manifest) == 12
    # the list lines name images relative to the YoloExport root, beside their label files
    export_root = YoloExport(split="train", shard=0).folder().rsplit("/", 1)[0]
    for line in subsets["train"] + subsets["val"]:
        image_path = storage.join(export_root, line.removeprefix("./"))
        assert storage.exists(image_path) and storage.exists(contract.label_path(image_path)), line
    for shard in sorted(manifest["shard"].unique()):
        folder = YoloExport(split="train", shard=int(shard)).folder()
        assert folder.rsplit("/", 1)[0] == export_root
        cells = segment_contract.CELLS.read(Segment(split="train", shard=int(shard)).folder())
        # training read a local tree of its own: no Ultralytics label cache lands in the artifact
        assert storage.listdir(folder) == sorted(["_SUCCESS", contract.EXPORT_INDEX.name, "images", "labels"])
        for _, row in manifest[manifest["shard"] == shard].iterrows():
            image = cv2.imdecode(np.frombuffer(contract.IMAGE.read(folder, image_id=row["ID"]), np.uint8),
                                 cv2.IMREAD_UNCHANGED)
            assert image.shape == (*core.detector_shape(HEIGHT, WIDTH, size), 3)
            assert np.array_equal(image[..., 0], image[..., 2])
            label = contract.LABEL.read(folder, image_id=row["ID"])
            lines = core.parse_label_lines(label.decode())
            image_cells = cells[cells["ID"] == row["ID"]]
            labels = parse_labels(row["Label"])
            assert len(lines) == len(image_cells) * len(labels)
            assert set(lines[:, 0].astype(int)) <= set(labels)
            assert np.all((lines[:, 1:] > 0) & (lines[:, 1:] <= 1))


def test_weights_and_metrics_of_both_phases_are_in_storage(offline):
    spec = get_profile("demo").detector
    trained = TrainYolo()
    assert trained.complete()
    metrics = contract.METRICS.read(trained.folder())
    assert [(phase["phase"], phase["epochs"]) for phase in metrics["phases"]] == [
        ("basic", spec.epochs), ("finetune", spec.finetune_epochs)]
    assert metrics["device"] == "cpu" and "metrics/mAP50(B)" in metrics["final"]
    for name in (contract.WEIGHTS.name, "weights_basic.pt", "weights_finetune.pt", "results_basic.csv"):
        assert storage.exists(storage.join(trained.folder(), name)), name


def test_saved_weights_reload_and_predict_offline(offline, no_network):
    size = get_profile("demo").detector.input_size
    manifest = load_manifest("test")
    row = manifest.iloc[0]
    green = inputs.green_of("test", row)
    with local_paths.local_copy(contract.WEIGHTS.uri(TrainYolo().folder()), suffix=".pt") as path:
        model = yolo.load_model(path, offline.config_dir)
    image = core.detector_image(green, size)
    # At a near-zero threshold a barely trained model still proposes boxes: the reloaded network runs.
    (xyxy, classes, confidences), = yolo.predict(model, [image], size, 1e-9, 0.5, 50, "cpu")
    assert len(xyxy) > 0 and xyxy.shape == (len(classes), 4)
    assert np.all((classes >= 0) & (classes < NUM_CLASSES)) and np.all((confidences > 0) & (confidences <= 1))
    assert np.all(xyxy[:, [0, 2]] <= image.shape[1] + 1e-3) and np.all(xyxy[:, [1, 3]] <= image.shape[0] + 1e-3)
    # The Detect task's boxes are what the reloaded weights predict, in original pixels.
    again = yolo.detect_greens(model, [green], [row["ID"]], size, "cpu")
    stored = load_boxes("test", int(row["shard"]))
    stored = stored[stored["ID"] == row["ID"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, stored, check_exact=False, atol=1e-3)
    assert no_network == []


def test_detect_and_match_cover_every_test_image_and_cell(offline):
    manifest = load_manifest("test")
    for shard in sorted(manifest["shard"].unique()):
        shard = int(shard)
        images = contract.DETECT_IMAGES.read(Detect(split="test", shard=shard).folder())
        assert list(images["ID"]) == list(manifest.loc[manifest["shard"] == shard, "ID"])
        assert set(images["width"]) == {WIDTH} and set(images["height"]) == {HEIGHT}
        boxes = load_boxes("test", shard)
        assert tuple(boxes.columns) == contract.BOX_COLUMNS
        assert np.all(boxes[["x0", "x1"]].to_numpy() <= WIDTH) and np.all(boxes[["y0", "y1"]].to_numpy() <= HEIGHT)
        cells = segment_contract.CELLS.read(Segment(split="test", shard=shard).folder())
        scores = load_scores("test", shard)
        assert tuple(scores.columns) == TABLE_COLUMNS
        assert list(zip(scores["ID"], scores["cell_id"])) == list(zip(cells["ID"], cells["cell_id"]))
        values = scores[list(SCORE_COLUMNS)].to_numpy()
        assert np.all((values >= 0) & (values <= 1))
        pd.testing.assert_frame_equal(scores, match_core.match_scores(cells, boxes))


# ------------------------------------------------------------------ non-square, with a stand-in detector
RECTANGLES = {1: (5, 10, 30, 60), 2: (50, 20, 85, 70), 3: (10, 120, 40, 250), 4: (55, 150, 88, 200),
              5: (60, 215, 80, 255)}  # cell id: (row0, col0, row1, col1) in a 90-row x 260-column image


def brightness(cell_id: int) -> int:
    return 50 + 30 * cell_id


def blob_detector(model, images, imgsz, conf, iou, max_det, device, batch=16):
    """Stands in for YOLO: one box per bright blob of the detector image, its class read from the blob's
    brightness (cell k -> class k + 2), in the detector image's own pixel edges."""
    out = []
    for image in images:
        grey = image[..., 0]
        count, labels, stats, _ = cv2.connectedComponentsWithStats((grey > 0).astype(np.uint8))
        boxes, classes = [], []
        for component in range(1, count):
            x, y, w, h = stats[component, :4]
            cell_id = round((int(grey[labels == component].max()) - 50) / 30)
            boxes.append([x, y, x + w, y + h])
            classes.append(cell_id + 2)
        out.append((np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(classes, dtype=np.int64),
                    np.full(len(classes), 0.9)))
    return out


def wide_field() -> tuple[np.ndarray, np.ndarray]:
    """A 90-row x 260-column field: its cell labels and a green channel lit per cell."""
    labels = np.zeros((90, 260), dtype=np.uint16)
    green = np.zeros((90, 260), dtype=np.uint8)
    for cell_id, (y0, x0, y1, x1) in RECTANGLES.items():
        labels[y0:y1, x0:x1] = cell_id
        green[y0:y1, x0:x1] = brightness(cell_id)
    return labels, green


def write_wide_split(data: str, split: str, image_ids: list[str]) -> None:
    """The split's images in the Kaggle layout (green lit, other channels dark) and its label table."""
    labels, green = wide_field()
    for image_id in image_ids:
        for channel in ("red", "green", "blue", "yellow"):
            pixels = green if channel == "green" else np.zeros_like(green)
            storage.write_bytes(storage.join(data, split, f"{image_id}_{channel}.png"), core.encode_png(pixels))
    if split == "test":
        table = pd.DataFrame({"ID": image_ids, "ImageWidth": 260, "ImageHeight": 90, "PredictionString": ""})
        storage.write_table(storage.join(data, "sample_submission.csv"), table)
    else:
        storage.write_table(storage.join(data, "train.csv"), pd.DataFrame({"ID": image_ids, "Label": "3|7"}))


def write_segment_outputs(split: str, shard: int, image_ids: list[str]) -> None:
    """The segment stage's artifacts for a shard of wide fields, as Segment writes them."""
    labels, _ = wide_field()
    folder = Segment(split=split, shard=shard).folder()
    tables = []
    for image_id in image_ids:
        table = cell_table(labels)
        table.insert(0, "ID", image_id)
        tables.append(table)
        segment_contract.LABELS.write(folder, (labels, labels), image_id=image_id)
    segment_contract.CELLS.write(folder, pd.concat(tables, ignore_index=True))
    sizes = pd.DataFrame([(image_id, 260, 90, len(RECTANGLES)) for image_id in image_ids],
                         columns=list(segment_contract.IMAGES_COLUMNS))
    segment_contract.IMAGES.write(folder, sizes)
    storage.mark_done(folder, {"ids": list(image_ids)})


def test_non_square_image_through_detect_and_match_tasks(any_root, pipeline_settings, detector_settings,
                                                         monkeypatch):
    data, image_id = storage.join(any_root, "data"), "wide_1"
    write_wide_split(data, "test", [image_id])
    write_wide_split(data, "train", ["wide_train"])  # what the stand-in detector was "trained" on
    pipeline_settings(input=data, work=storage.join(any_root, "work"), profile="demo", shard_size=SHARD_SIZE)
    detector_settings(device="cpu")

    # The cells of the segment stage, as it would write them; a trained detector stands ready.
    write_segment_outputs("test", 0, [image_id])
    contract.WEIGHTS.write(TrainYolo().folder(), b"stand-in")
    storage.mark_done(TrainYolo().folder())
    monkeypatch.setattr(runtime, "cached_model", lambda *args: "stand-in")
    monkeypatch.setattr(yolo, "predict", blob_detector)

    assert luigi.build([Match(split="test", shard=0)], local_scheduler=True, workers=1, log_level="WARNING")
    boxes = load_boxes("test", 0)
    assert len(boxes) == len(RECTANGLES)
    for _, box in boxes.iterrows():
        y0, x0, y1, x1 = RECTANGLES[box["class"] - 2]
        # back in original pixels: x along the 260 columns, y along the 90 rows (within a detector pixel)
        np.testing.assert_allclose([box["x0"], box["y0"], box["x1"], box["y1"]], [x0, y0, x1, y1], atol=2.1)
    scores = load_scores("test", 0)
    assert list(scores["cell_id"]) == list(RECTANGLES)
    for cell_id in RECTANGLES:
        row = scores.loc[scores["cell_id"] == cell_id, list(SCORE_COLUMNS)].to_numpy()[0]
        assert row[cell_id + 2] == pytest.approx(0.9) and np.count_nonzero(row) == 1


def test_export_and_training_inputs_through_storage(any_root, pipeline_settings, detector_settings, monkeypatch,
                                                    tmp_path):
    """YoloExport and YoloDataset write through storage (a folder or S3); TrainYolo hands Ultralytics a
    local copy whose dataset.yaml resolves every image and label, and stores what training returns."""
    data = storage.join(any_root, "data")
    ids = [f"wide_{index}" for index in range(6)]
    write_wide_split(data, "train", ids)
    pipeline_settings(input=data, work=storage.join(any_root, "work"), profile="demo", shard_size=SHARD_SIZE)
    detector_settings(device="cpu", config_dir=tmp_path / "ultralytics")
    assert luigi.build([Manifest(split="train")], local_scheduler=True, workers=1, log_level="WARNING")
    for shard in range(2):
        write_segment_outputs("train", shard, ids[shard * SHARD_SIZE:(shard + 1) * SHARD_SIZE])
    seen = {}

    def stand_in_training(dataset_yaml, architecture, phases, work_dir, initial_weights=None, config_dir=None,
                          progress=None):
        yolo.prepare_offline(config_dir)
        from ultralytics.data.utils import check_det_dataset

        description = check_det_dataset(str(dataset_yaml))  # Ultralytics' own resolution of the paths
        for subset in ("train", "val"):
            listed = Path(description[subset]).read_text().split()
            images = [Path(description[subset]).parent / line for line in listed]
            seen[subset] = [image.stem for image in images]
            for image in images:  # the local copy vanishes with the task: look at it now
                label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
                seen.setdefault("labels", []).append(core.parse_label_lines(label.read_text()))
                seen.setdefault("shapes", []).append(cv2.imread(str(image)).shape)
        weights = Path(work_dir) / "best.pt"
        weights.parent.mkdir(parents=True, exist_ok=True)
        weights.write_bytes(b"weights")
        return yolo.TrainingResult(weights=weights, phase_weights={"basic": weights},
                                   metrics=[{"phase": "basic", "epochs": 1, "metrics": {"fitness": 0.5}}],
                                   results={})

    monkeypatch.setattr(yolo, "train", stand_in_training)
    assert luigi.build([TrainYolo()], local_scheduler=True, workers=1, log_level="WARNING")
    assert sorted(seen["train"] + seen["val"]) == ids
    assert seen["val"] and not set(seen["train"]) & set(seen["val"])
    assert seen["shapes"] == [(44, 128, 3)] * len(ids)
    for lines in seen["labels"]:
        assert len(lines) == 2 * len(RECTANGLES)  # one line per (cell, image label 3|7)
        x0, y0, x1, y1 = RECTANGLES[3][1], RECTANGLES[3][0], RECTANGLES[3][3], RECTANGLES[3][2]
        assert [3, (x0 + x1) / 2 / 260, (y0 + y1) / 2 / 90] == pytest.approx(list(lines[4, :3]), abs=1e-6)
    assert contract.WEIGHTS.read(TrainYolo().folder()) == b"weights"
    assert contract.METRICS.read(TrainYolo().folder())["final"] == {"fitness": 0.5}
    split = contract.SPLIT.read(YoloDataset().folder())
    assert sorted(split["ID"]) == ids and set(split["shard"]) == {0, 1}




def test_detect_runs_on_real_fields_of_view(offline, tmp_path, pipeline_settings):
    """The trained weights, reloaded by Detect, on real HPA images (PNG and colourised JPEG, 1728 and
    2048 px): each image is read, shrunk to the detector size, predicted, and its boxes land in its own
    pixel frame."""
    weights = contract.WEIGHTS.read(TrainYolo().folder())
    data = tmp_path / "data"  # the real fields as the test split, beside a training split for the weights
    data.mkdir()
    for name in ("test", "sample_submission.csv"):
        (data / name).symlink_to(REAL_DATA / name)
    write_wide_split(str(data), "train", ["wide_1"])
    pipeline_settings(input=str(data), work=tmp_path / "work", profile="demo", shard_size=2)
    contract.WEIGHTS.write(TrainYolo().folder(), weights)
    storage.mark_done(TrainYolo().folder())
    assert luigi.build([DetectAll(split="test")], local_scheduler=True, workers=1, log_level="WARNING")
    truth = pd.read_csv(REAL_DATA / "sample_submission.csv", dtype={"ID": str}).set_index("ID")
    manifest = load_manifest("test")
    assert len(manifest) == len(truth) == 3
    for shard in sorted(manifest["shard"].unique()):
        folder = Detect(split="test", shard=int(shard)).folder()
        images = contract.DETECT_IMAGES.read(folder)
        for _, image in images.iterrows():
            assert (image["width"], image["height"]) == (truth.at[image["ID"], "ImageWidth"],
                                                        truth.at[image["ID"], "ImageHeight"])
        boxes = load_boxes("test", int(shard)).merge(images, on="ID")
        assert np.all(boxes["x1"] <= boxes["width"]) and np.all(boxes["y1"] <= boxes["height"])

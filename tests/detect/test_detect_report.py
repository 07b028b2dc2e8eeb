"""What the detector tasks tell their user: one ``epoch E/N`` line per epoch of TrainYolo with a percentage
(from Ultralytics' ``on_fit_epoch_end`` callback), and a warning when training ends at mAP50 0 or a shard gets
no box at all."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from stages.detect import contract, core, runtime, yolo
from stages.detect import stage as detect_stage


def fake_trainer(epoch, epochs, metrics):
    losses = np.array([1.25, 2.5, 0.75])
    return SimpleNamespace(
        epoch=epoch, epochs=epochs, tloss=losses, metrics=metrics,
        label_loss_items=lambda items, prefix="train": {f"{prefix}/{name}": float(value)
                                                       for name, value in zip(("box_loss", "cls_loss", "dfl_loss"),
                                                                              items)})


def test_epoch_line_and_percent_over_both_phases():
    calls = []
    phase = core.TrainingPhase("finetune", 2, {})
    report = yolo.epoch_reporter(lambda *args: calls.append(args), phase, done_before=2, total=4)
    metrics = {yolo.MAP50: 0.0123, yolo.MAP50_95: 0.0031, "val/box_loss": 3.0}
    report(fake_trainer(0, 2, metrics))
    report(fake_trainer(1, 2, metrics))
    report(fake_trainer(2, 2, metrics))  # Ultralytics' final validation of the best weights: not an epoch
    assert calls == [
        ("epoch 3/4 (finetune 1/2): loss 4.5 (box 1.25, cls 2.5, dfl 0.75), val mAP50 0.012, mAP50-95 0.003", 75),
        ("epoch 4/4 (finetune 2/2): loss 4.5 (box 1.25, cls 2.5, dfl 0.75), val mAP50 0.012, mAP50-95 0.003", 100),
    ]


def test_train_registers_the_callback_on_every_phase(monkeypatch, tmp_path):
    registered = []

    class StandIn:
        def __init__(self):
            self.trainer = None

        def add_callback(self, event, function):
            registered.append((event, function))

        def train(self, **overrides):
            weights = tmp_path / "weights.pt"
            weights.write_bytes(b"w")
            self.trainer = SimpleNamespace(best=weights, last=weights, metrics={yolo.MAP50: 0.5}, save_dir=tmp_path)
            for event, function in registered[-1:]:
                function(fake_trainer(0, 1, self.trainer.metrics))

    monkeypatch.setattr(yolo, "build_model", lambda *args: StandIn())
    monkeypatch.setattr(yolo, "load_model", lambda *args: StandIn())
    calls = []
    phases = [core.TrainingPhase("basic", 1, {}), core.TrainingPhase("finetune", 1, {})]
    yolo.train(tmp_path / "dataset.yaml", "yolov5nu.yaml", phases, tmp_path / "runs",
               progress=lambda *args: calls.append(args))
    assert [event for event, _ in registered] == ["on_fit_epoch_end"] * 2
    assert [(message.split(":")[0], percent) for message, percent in calls] == [("epoch 1/2 (basic 1/1)", 50),
                                                                               ("epoch 2/2 (finetune 1/1)", 100)]


def fake_ctx(task_id, **inputs):
    return SimpleNamespace(task=SimpleNamespace(task_id=task_id), progress=lambda *args: None,
                           input=lambda name: inputs[name], write=lambda *args, **kwargs: None)


def luigi_warnings(caplog):
    return [record.getMessage() for record in caplog.records
            if record.name == "luigi-interface" and record.levelno == logging.WARNING]


def test_a_detector_that_ends_at_map50_zero_is_reported(monkeypatch, detector_settings, tmp_path, caplog):
    detector_settings(device="cpu")
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"w")

    def stand_in(dataset_yaml, architecture, phases, work_dir, initial_weights=None, config_dir=None, progress=None):
        progress("epoch 1/1 (basic 1/1): loss 1", 100)
        return yolo.TrainingResult(weights=weights, phase_weights={"basic": weights}, results={},
                                   metrics=[{"phase": "basic", "epochs": 1, "metrics": {yolo.MAP50: 0.0}}])

    monkeypatch.setattr(runtime, "materialise_dataset", lambda *args: tmp_path)
    monkeypatch.setattr(yolo, "train", stand_in)
    ctx = fake_ctx("TrainYolo_test", dataset=SimpleNamespace(folder="dataset"),
                   exports=[SimpleNamespace(folder="exports/shard-00000")])
    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        outputs = detect_stage.run_train(ctx)
    assert outputs[contract.METRICS]["final"] == {yolo.MAP50: 0.0}
    assert luigi_warnings(caplog) == [
        "TrainYolo_test: the trained detector's final mAP50 is 0 on its validation images: it finds no labelled "
        "cell, so its scores will add nothing to the fusion (more images or epochs needed)"]


@pytest.mark.parametrize("found", [0, 1])
def test_a_shard_without_any_box_is_reported_once(monkeypatch, detector_settings, caplog, found):
    detector_settings(device="cpu", predict_batch=1)
    rows = pd.DataFrame({"ID": ["a", "b", "c"]})
    monkeypatch.setattr(runtime, "cached_model", lambda *args: "stand-in")

    def stand_in(model, greens, image_ids, size, device, batch):
        ids = [image_id for image_id in image_ids if found and image_id == "b"]
        return core.boxes_table(ids[0], np.array([[1, 1, 5, 5]]), [3], [0.5]) if ids else core.empty_boxes()

    monkeypatch.setattr(yolo, "detect_greens", stand_in)
    ctx = fake_ctx("Detect_test", model=SimpleNamespace(uri=lambda artifact: "weights.pt"))
    ctx.rows, ctx.green = (lambda: rows), (lambda row: np.zeros((8, 8), np.uint8))
    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        detect_stage.run_detect(ctx)
    expected = [] if found else [
        "Detect_test: the detector found no box in any of the 3 image(s) of this shard (confidence >= 0.001): its "
        "scores for these cells are all 0"]
    assert luigi_warnings(caplog) == expected

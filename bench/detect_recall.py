"""Benchmark (not a test): train the detector longer on synthetic data, report box recall at IoU 0.5.

    .venv/bin/python bench/detect_recall.py --images 96 --test-images 24 --size 256 --epochs 40

Synthetic fields of view (stages.dev.synth) are exported exactly as the YoloExport task does it (green x3 at
the detector size, one label line per cell box and image-level label; here the boxes come from the truth
cell labels, or with ``--boxes segment`` from the classic segmentation, as the pipeline does), trained
with the project's two-phase recipe offline, and the test images predicted as the Detect task does it
(conf 0.001, NMS IoU 0.5, boxes back in original pixels). Reported, against the truth cells of the test
images:

- ``box_recall``: share of truth cells with a predicted box (any class) at IoU >= 0.5;
- ``box_recall_conf25``: the same counting only boxes of confidence >= 0.25;
- ``class_recall``: share of truth (cell, class) pairs (the per-cell truth the real data lacks) with a box
  of that class at IoU >= 0.5.

Result (2 CPU cores, shared, 2026-11-26; 15 min of training):

    .venv/bin/python bench/detect_recall.py --images 192 --test-images 32 --size 256 --imgsz 128 \
        --epochs 100 --finetune-epochs 10 --batch 8

    yolov5nu, 128 px: box_recall 0.980 (198 of 202 truth cells), box_recall_conf25 0.173,
    class_recall 0.518, 69.7 boxes per image; Ultralytics val mAP50 0.269 (image-level labels).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages import storage  # noqa: E402
from stages.classes import CHANNELS, parse_labels  # noqa: E402
from stages.detect import contract, core, yolo  # noqa: E402
from stages.dev.synth.core import write_dataset  # noqa: E402
from stages.fields import read_field  # noqa: E402
from stages.segment.core import SegmentSettings, make_segmenter  # noqa: E402
from stages.segment.labels import cell_table  # noqa: E402


def truth_cells(data: Path, image_id: str) -> pd.DataFrame:
    labels = cv2.imread(str(data / "truth" / f"{image_id}_cells.png"), cv2.IMREAD_UNCHANGED)
    return cell_table(labels)


def segmented_cells(data: Path, split: str, image_id: str, segment_field) -> pd.DataFrame:
    """The cells the segment stage finds (``segment_field`` from ``make_segmenter``), as its cell table."""
    files = {channel: f"{image_id}_{channel}.png" for channel in CHANNELS}
    field = read_field(str(data / split), image_id, files)
    cells, _ = segment_field(field)
    return cell_table(cells)


def green(data: Path, split: str, image_id: str) -> np.ndarray:
    return cv2.imread(str(data / split / f"{image_id}_green.png"), cv2.IMREAD_GRAYSCALE)


def export(data: Path, root: Path, size: int, fraction: float, boxes: str) -> int:
    """The YoloExport + YoloDataset artifacts, locally, through the stage's core and contract: the export
    (one shard) under ``root/shard-00000`` and the dataset files (lists relative to ``root``) in ``root``."""
    labels = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    shard = str(root / "shard-00000")
    lines_total = 0
    index = []
    segment_field = make_segmenter(SegmentSettings()) if boxes == "segment" else None  # classic, the default
    for image_id, label in zip(labels["ID"], labels["Label"]):
        channel = green(data, "train", image_id)
        if segment_field is None:
            cells = truth_cells(data, image_id)
        else:
            cells = segmented_cells(data, "train", image_id, segment_field)
        bboxes = cells[["bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]].to_numpy()
        png, label_text, sizes = core.export_image(channel, bboxes, parse_labels(label), size)
        contract.IMAGE.write(shard, png, image_id=image_id)
        contract.LABEL.write(shard, label_text, image_id=image_id)
        lines_total += sizes[-1]
        index.append((image_id, *sizes))
    contract.EXPORT_INDEX.write(shard, pd.DataFrame(index, columns=list(contract.EXPORT_INDEX.columns)))
    images = contract.EXPORT_INDEX.read(shard).assign(shard=0, folder="shard-00000")
    lists, split, description = core.dataset_lists(images, fraction)
    for subset, artifact in zip(contract.SUBSET_FILES, contract.SUBSETS):
        artifact.write(str(root), lists[subset])
    contract.SPLIT.write(str(root), split)
    contract.DATASET.write(str(root), yaml.safe_dump(description, sort_keys=False).encode())
    return lines_total


def evaluate(data: Path, model, size: int, device: str) -> dict:
    truth = pd.read_csv(data / "truth" / "cells.csv", dtype={"ID": str}, keep_default_na=False)
    images = pd.read_csv(data / "truth" / "images.csv", dtype={"ID": str}, keep_default_na=False)
    test_ids = list(images.loc[images["split"] == "test", "ID"])
    start = time.perf_counter()
    predicted = yolo.detect_greens(model, [green(data, "test", i) for i in test_ids], test_ids, size, device)
    seconds = time.perf_counter() - start
    found = found25 = total = class_found = class_total = 0
    for image_id in test_ids:
        cells = truth_cells(data, image_id)
        truth_boxes = cells[["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]].to_numpy(np.float64)
        mine = predicted[predicted["ID"] == image_id]
        xyxy = mine[["x0", "y0", "x1", "y1"]].to_numpy()
        hit, count = core.box_recall(truth_boxes, xyxy)
        hit25, _ = core.box_recall(truth_boxes, xyxy[mine["confidence"].to_numpy() >= 0.25])
        found, found25, total = found + hit, found25 + hit25, total + count
        cell_labels = truth[truth["ID"] == image_id].set_index("cell_id")["Label"]
        for row, cell_id in enumerate(cells["cell_id"]):
            for cls in parse_labels(cell_labels.get(cell_id, "")):
                class_total += 1
                same = xyxy[mine["class"].to_numpy() == cls]
                class_found += core.box_recall(truth_boxes[row:row + 1], same)[0]
    return {
        "test_images": len(test_ids),
        "truth_cells": total,
        "box_recall": found / max(total, 1),
        "box_recall_conf25": found25 / max(total, 1),
        "class_recall": class_found / max(class_total, 1),
        "boxes_per_image": len(predicted) / max(len(test_ids), 1),
        "predict_seconds": seconds,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96, help="synthetic training images")
    parser.add_argument("--test-images", type=int, default=24)
    parser.add_argument("--size", type=int, default=256, help="synthetic image side (pixels)")
    parser.add_argument("--imgsz", type=int, default=0, help="detector input size (default: --size)")
    parser.add_argument("--epochs", type=int, default=40, help="phase 1 (basic) epochs")
    parser.add_argument("--finetune-epochs", type=int, default=5, help="phase 2 (fine-tuning) epochs")
    parser.add_argument("--architecture", default="yolov5nu.yaml")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--boxes", choices=("truth", "segment"), default="truth",
                        help="training boxes from the truth cells or from the classic segmentation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Ultralytics train() argument for the basic phase, e.g. --set optimizer=SGD")
    parser.add_argument("--work", default="", help="keep data and runs here (default: a temp folder)")
    args = parser.parse_args(argv)
    size = args.imgsz or args.size

    with tempfile.TemporaryDirectory(prefix="detect-recall-") as scratch:
        work = Path(args.work or scratch)
        data, dataset = work / "data", work / "dataset"
        started = time.perf_counter()
        if not storage.is_done(str(data)):
            write_dataset(str(data), args.images, args.test_images, args.size, args.size, args.seed)
        lines = export(data, dataset, size, 0.15, args.boxes)
        prepared = time.perf_counter()
        phases = core.training_phases(size, args.epochs, args.finetune_epochs, args.batch, args.device,
                                      0 if args.device == "cpu" else 4, args.seed)
        extra = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
        phases[0] = dataclasses.replace(phases[0], overrides={**phases[0].overrides, **extra})
        result = yolo.train(dataset / contract.DATASET.name, args.architecture, phases, work / "runs",
                            config_dir=work / "ultralytics")
        trained = time.perf_counter()
        model = yolo.load_model(result.weights, work / "ultralytics")
        report = {
            "settings": vars(args) | {"imgsz": size},
            "label_lines": lines,
            "val_metrics": yolo.metrics_document(result)["final"],
            **evaluate(data, model, size, args.device),
            "seconds": {"data": prepared - started, "train": trained - prepared,
                        "total": time.perf_counter() - started},
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

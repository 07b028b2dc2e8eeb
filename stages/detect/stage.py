"""The detect stage: a YOLO detector on the green channel, trained on every cell's box once per image label,
run per shard. Every task runs in the ``detect`` image; operational knobs live in ``[detector]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stages import local_paths, quiet, scratch
from stages.classes import parse_labels
from stages.config import pipeline
from stages.declare import Stage, TaskSpec, every_shard, single, this_shard
from stages.detect import contract, core, runtime, yolo
from stages.segment import contract as segment_contract
from stages.zoo import get_profile

OPERATIONAL = ("detector.device", "detector.workers", "detector.predict_batch", "detector.config_dir",
               "detector.max_epochs")


def run_export(ctx) -> dict:
    size = runtime.detector_spec().input_size
    rows = ctx.rows()
    cells = ctx.input("segment").read(segment_contract.CELLS)
    bboxes_of = {image_id: group[list(segment_contract.BBOX_COLUMNS)].to_numpy()
                 for image_id, group in cells.groupby("ID", sort=False)}
    index = []
    for _, row in rows.iterrows():
        png, label_text, sizes = core.export_image(ctx.green(row),
                                                   bboxes_of.get(row["ID"], np.zeros((0, 4))),
                                                   parse_labels(row["Label"]), size)
        ctx.write(contract.IMAGE, png, image_id=row["ID"])
        ctx.write(contract.LABEL, label_text, image_id=row["ID"])
        index.append((row["ID"], *sizes))
    return {contract.EXPORT_INDEX: pd.DataFrame(index, columns=list(contract.EXPORT_INDEX.columns))}


def run_dataset(ctx) -> dict:
    shards = ctx.input("exports")
    images = pd.concat([shard.read(contract.EXPORT_INDEX).assign(shard=shard.task.shard,
                                                                 folder=shard.folder.rsplit("/", 1)[-1])
                        for shard in shards], ignore_index=True)
    lists, split, description = core.dataset_lists(images, get_profile(pipeline().profile).validation_fraction)
    subsets = dict(zip(contract.SUBSET_FILES, contract.SUBSETS))
    return {**{subsets[name]: data for name, data in lists.items()}, contract.SPLIT: split,
            contract.DATASET: yaml.safe_dump(description, sort_keys=False).encode()}


def run_train(ctx) -> dict:
    quiet.setup()  # before Ultralytics is imported: no banners, tables or progress bars unless [console] verbose
    spec, profile = runtime.detector_spec(), get_profile(pipeline().profile)
    device = runtime.resolved_device()
    phases = core.training_phases(spec.input_size, runtime.capped_epochs(spec.epochs),
                                  runtime.capped_epochs(spec.finetune_epochs), profile.batch_size, device,
                                  runtime.resolved_workers(device))
    dataset = ctx.input("dataset")
    export_root = ctx.input("exports")[0].folder.rsplit("/", 1)[0]  # the list files name paths below it
    with scratch.folder("detect-train-") as work_dir:
        local = runtime.materialise_dataset(dataset.folder, export_root, Path(work_dir) / "dataset")
        with initial_weights_path(spec.initial_weights) as initial:
            result = yolo.train(local / contract.DATASET.name, spec.architecture, phases, Path(work_dir) / "runs",
                                initial, runtime.config_dir(), progress=ctx.progress)
        for phase, path in result.phase_weights.items():
            ctx.write(contract.PHASE_WEIGHTS, path.read_bytes(), phase=phase)
        for phase, path in result.results.items():
            ctx.write(contract.RESULTS, path.read_bytes(), phase=phase)
        metrics = {**yolo.metrics_document(result), "device": device, "max_epochs": runtime.detector().max_epochs}
        if metrics["final"].get(yolo.MAP50, 1.0) <= 0:
            quiet.warn(ctx, "the trained detector's final mAP50 is 0 on its validation images: it finds no labelled "
                            "cell, so its scores will add nothing to the fusion (more images or epochs needed)")
        return {contract.METRICS: metrics, contract.WEIGHTS: result.weights.read_bytes()}


def initial_weights_path(uri: str | None):
    """A local path for the zoo's optional initial weights (a local path or a storage URI), or None."""
    import contextlib

    return local_paths.local_copy(uri, suffix=".pt") if uri else contextlib.nullcontext(None)


def run_detect(ctx) -> dict:
    quiet.setup()
    size = runtime.detector_spec().input_size
    device = runtime.resolved_device()
    model = runtime.cached_model(ctx.input("model").uri(contract.WEIGHTS), runtime.config_dir())
    rows = ctx.rows()
    batch = max(1, int(runtime.detector().predict_batch))
    tables, images = [], []
    for start in range(0, len(rows), batch):
        chunk = rows.iloc[start:start + batch]
        greens = [ctx.green(row) for _, row in chunk.iterrows()]
        boxes = yolo.detect_greens(model, greens, list(chunk["ID"]), size, device, batch)
        tables.append(boxes)
        counts = boxes["ID"].value_counts()
        images += [(image_id, green.shape[1], green.shape[0], int(counts.get(image_id, 0)))
                   for image_id, green in zip(chunk["ID"], greens)]
    boxes = core.concat_boxes(tables)
    if len(rows) and boxes.empty:
        quiet.warn(ctx, f"the detector found no box in any of the {len(rows)} image(s) of this shard (confidence >= "
                        f"{core.CONFIDENCE_THRESHOLD}): its scores for these cells are all 0")
    return {contract.BOXES: boxes,
            contract.DETECT_IMAGES: pd.DataFrame(images, columns=list(contract.DETECT_IMAGES.columns))}


def export_content(task) -> dict:
    spec = runtime.detector_spec()
    return {"input_size": spec.input_size, "channels": spec.channels}


def training_content(task) -> dict:
    spec = runtime.detector_spec()
    return {"architecture": spec.architecture, "input_size": spec.input_size, "epochs": spec.epochs,
            "finetune_epochs": spec.finetune_epochs, "initial_weights": spec.initial_weights,
            "batch": get_profile(pipeline().profile).batch_size, "basic": core.BASIC_OVERRIDES,
            "finetune": core.FINETUNE_OVERRIDES, "seed": 0}


YOLO_EXPORT = TaskSpec(
    name="YoloExport", doc="Per train shard: detector images (green x3) and YOLO label lines.",
    needs=lambda task: {"manifest": single("Manifest"), "segment": this_shard("Segment")},
    outputs=(contract.IMAGE, contract.LABEL, contract.EXPORT_INDEX), content=export_content, run=run_export,
    per_shard=True, splits=("train", "external"), folder="shard-{shard:05d}", reads_labels=True,
)

YOLO_DATASET = TaskSpec(
    name="YoloDataset", doc="The train/val split over every exported shard and the Ultralytics dataset.yaml.",
    needs=lambda task: {"exports": every_shard("YoloExport")},
    outputs=(*contract.SUBSETS, contract.SPLIT, contract.DATASET),
    content=lambda task: {"validation_fraction": get_profile(pipeline().profile).validation_fraction},
    run=run_dataset, splits=("train", "external"),
)

TRAIN_YOLO = TaskSpec(
    name="TrainYolo", doc="Two-phase YOLO training (basic, then fine-tuning), offline.",
    needs=lambda task: {"dataset": single("YoloDataset", split="train"),
                        "exports": every_shard("YoloExport", split="train")},
    outputs=(contract.WEIGHTS, contract.PHASE_WEIGHTS, contract.METRICS, contract.RESULTS),
    content=training_content, run=run_train, splits=("train",), gpu=True, operational=OPERATIONAL,
)

DETECT = TaskSpec(
    name="Detect", doc="Per shard: YOLO boxes at confidence 0.001 and NMS IoU 0.5, in original-image pixels.",
    needs=lambda task: {"model": single("TrainYolo"), "manifest": single("Manifest")},
    outputs=(contract.BOXES, contract.DETECT_IMAGES),
    content=lambda task: {"input_size": runtime.detector_spec().input_size, "conf": core.CONFIDENCE_THRESHOLD,
                          "iou": core.NMS_IOU, "max_det": core.MAX_DETECTIONS},
    run=run_detect, per_shard=True, folder="shard-{shard:05d}", gpu=True, operational=OPERATIONAL,
)

STAGE = Stage(name="detect", doc="The YOLO detector: dataset export, training, prediction per shard.",
              tasks=(YOLO_EXPORT, YOLO_DATASET, TRAIN_YOLO, DETECT), whole="DetectAll")

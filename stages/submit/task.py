"""Luigi tasks of the submit stage: the Kaggle submission, the evaluation where truth is known, the report.

- ``WriteSubmission(split)``: ``<work>/submission/<fingerprint>/<split>/submission.csv`` from the fused
  scores and the segment label images (masks in the Open Images encoding, one pass per image).
- ``Evaluate(split)``: mAP and per-class AP at mask IoU 0.6 for the fusion, for each fused source alone
  (the ablation) and for the written submission file itself; ``evaluation.json``, also printed.
  Needs per-cell truth (``[submit] truth``, default ``<input>/truth``: ``cells.csv`` with ``ID, cell_id,
  Label`` and ``<ID>_cells.png`` uint16 label images, the synthetic generator's layout).
- ``Report(split)``: ``report.html``, one self-contained file (AP chart, ablation, annotated images,
  settings and versions), plus the annotated PNGs beside it.
- ``Submission(split)``: the whole pipeline's goal (``luigi --module stages Submission``): requires the
  three above (Evaluate only where truth exists) and publishes ``<work>/submission.csv``,
  ``<work>/report.html`` and ``<work>/evaluation.json`` beside the hashed artifacts, with
  ``<work>/published.json`` naming the artifacts they came from; it is complete when that record matches
  the current settings' artifacts, so a rerun with nothing to do costs a few reads.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Mapping

import cv2
import luigi
import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CHANNELS
from stages.config import pipeline
from stages.fields import read_field
from stages.fuse.task import Fuse, FuseAll, fusion_settings, load_fused, load_source
from stages.manifest import core as manifest_core
from stages.manifest.task import load_manifest, split_folder, split_shard_count
from stages.segment.task import Segment, SegmentAll, read_labels, read_shard_images, segment
from stages.submit import contract, encoding, report
from stages.submit import evaluate as metric
from stages.tasking import StageTask, StorageTarget


VERSIONED_PACKAGES = (
    "numpy", "pandas", "luigi", "pycocotools", "opencv-python-headless", "scikit-image", "scipy",
    "tensorflow", "tensorflow-cpu", "keras", "efficientnet", "torch", "torchvision",
    "ultralytics-opencv-headless", "ultralytics", "boto3",
)


class submit(luigi.Config):  # noqa: N801 -- Luigi derives the [submit] section name from the class name
    truth = luigi.Parameter(
        default="",
        description="URI of per-cell truth (cells.csv + <ID>_cells.png); empty: <input>/truth where it exists",
    )
    report_images = luigi.IntParameter(default=4, description="test images drawn in the report")
    report_max_side = luigi.IntParameter(default=768, description="longest side of a report image, pixels")


def truth_uri() -> str:
    return submit().truth or storage.join(pipeline().input, "truth")


def truth_known() -> bool:
    return storage.exists(storage.join(truth_uri(), "cells.csv"))


def top_level_name(name: str, split: str) -> str:
    """``submission.csv`` for the test split, ``submission_<split>.csv`` for another."""
    if split == "test":
        return name
    stem, dot, extension = name.rpartition(".")
    return f"{stem}_{split}{dot}{extension}"


class FileTask(StageTask):
    """A stage task whose output is one file in its fingerprinted folder, written atomically."""

    file_name: str

    def output(self):
        return StorageTarget(storage.join(self.stage_root(), self.file_name))


class WriteSubmission(FileTask):
    """The Kaggle submission of a split: every image of the manifest, all 19 classes per cell."""

    stage = "submission"
    file_name = contract.SUBMISSION_FILE

    def content_settings(self) -> dict:
        return {"encoding": "coco-rle/zlib-9/base64", "confidence": "repr", "classes": "all 19 per cell",
                "version": 1}

    def upstream(self) -> list[StageTask]:
        # Every shard of a split shares one fingerprint, so shard 0 stands for all of them.
        return [Fuse(split=self.split, shard=0), Segment(split=self.split, shard=0)]

    def requires(self):
        return [FuseAll(split=self.split), SegmentAll(split=self.split)]

    def run_here(self):
        manifest = load_manifest(self.split)
        shards = split_shard_count(self.split)
        parts = []
        for shard in range(shards):
            self.progress(f"shard {shard + 1}/{shards}: encoding masks", 100 * shard // max(1, shards))
            parts.append(shard_submission(self.split, shard))
        table = pd.concat(parts, ignore_index=True).set_index("ID")
        missing = sorted(set(manifest["ID"]) - set(table.index))
        if missing:
            raise ValueError(f"no submission row for {len(missing)} image(s) of the manifest, e.g. {missing[:3]}")
        table = table.loc[manifest["ID"].tolist()].reset_index()[list(contract.SUBMISSION_COLUMNS)]
        storage.write_table(self.output().uri, table)
        self.progress(f"{len(table)} image(s) written to {self.output().uri}", 100)


def shard_submission(split: str, shard: int) -> pd.DataFrame:
    """One shard's submission rows, in the segment image table's order."""
    folder = Segment(split=split, shard=shard).folder()
    images = read_shard_images(folder)
    fused = load_fused(split, shard)
    encoded = {}
    for row in images.itertuples(index=False):
        cells, _ = read_labels(folder, row.ID)
        if cells.shape != (int(row.height), int(row.width)):
            raise ValueError(f"image {row.ID}: label image {cells.shape[1]}x{cells.shape[0]} but the segment "
                             f"table says {row.width}x{row.height}")
        encoded[row.ID] = encoding.encode_cells(cells)
    sizes = pd.DataFrame({"ID": images["ID"], "ImageWidth": images["width"], "ImageHeight": images["height"]})
    return encoding.build_submission(sizes, encoded, fused)


def read_truth_labels(uri: str, image_id: str) -> np.ndarray:
    path = storage.join(uri, f"{image_id}_cells.png")
    try:
        data = storage.read_bytes(path)
    except storage.ArtifactNotFound:
        raise storage.ArtifactNotFound(f"image {image_id}: no truth label image {path}") from None
    labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise ValueError(f"image {image_id}: {path} is not a single-channel label image")
    return labels


class TruthImages(Mapping):
    """Truth label images by image ID, read one at a time when asked (never all in memory)."""

    def __init__(self, uri: str):
        self.uri = uri

    def __getitem__(self, image_id: str) -> np.ndarray:
        return read_truth_labels(self.uri, image_id)

    def __iter__(self):
        raise TypeError("truth images are read by ID, not listed")

    def __len__(self) -> int:
        raise TypeError("truth images are read by ID, not counted")


class Evaluate(FileTask):
    """mAP at mask IoU 0.6 (Open Images style) of the fusion, of each source alone, and of the file."""

    stage = "evaluate"
    file_name = contract.EVALUATION_FILE

    def content_settings(self) -> dict:
        return {"truth": truth_uri(), "iou_threshold": contract.IOU_THRESHOLD, "version": 1}

    def upstream(self) -> list[StageTask]:
        return [Fuse(split=self.split, shard=0), Segment(split=self.split, shard=0), WriteSubmission(split=self.split)]

    def requires(self):
        return [FuseAll(split=self.split), SegmentAll(split=self.split), WriteSubmission(split=self.split)]

    def run_here(self):
        started = time.monotonic()
        truth = truth_uri()
        truth_cells = storage.read_table(storage.join(truth, "cells.csv"), dtype={"ID": str, "Label": str},
                                         keep_default_na=False)
        truth_of = {image_id: rows for image_id, rows in truth_cells.groupby("ID", sort=False)}
        sources = fusion_settings().sources
        evaluations = {"fused": metric.Evaluation(), **{source: metric.Evaluation() for source in sources}}
        shards = split_shard_count(self.split)
        for shard in range(shards):
            self.progress(f"shard {shard + 1}/{shards}", 100 * shard // max(1, shards))
            folder = Segment(split=self.split, shard=shard).folder()
            tables = {"fused": load_fused(self.split, shard),
                      **{source: load_source(self.split, shard, source) for source in sources}}
            rows_of = {name: {image_id: rows for image_id, rows in table.groupby("ID", sort=False)}
                       for name, table in tables.items()}
            for image_id in read_shard_images(folder)["ID"]:
                if image_id not in truth_of:
                    raise ValueError(f"image {image_id}: no truth cells in {storage.join(truth, 'cells.csv')}")
                cells, _ = read_labels(folder, image_id)
                overlap = metric.image_overlap(cells, read_truth_labels(truth, image_id), truth_of[image_id])
                for name, evaluation in evaluations.items():
                    evaluation.add_rows(overlap, rows_of[name].get(image_id))
        self.progress("scoring the submission file", 95)
        submission = storage.read_table(WriteSubmission(split=self.split).output().uri, dtype={"ID": str},
                                        keep_default_na=False)
        results = {name: evaluation.result() for name, evaluation in evaluations.items()}
        document = {
            "split": self.split,
            "truth": truth,
            "images": results["fused"]["images"],
            "mAP": results["fused"]["mAP"],
            "fused": results["fused"],
            "sources": {source: results[source] for source in sources},
            "submission_file": metric.evaluate_submission(submission, TruthImages(truth), truth_cells),
            "fusion": {"mode": fusion_settings().mode, "weights": dict(fusion_settings().weights)},
            "seconds": round(time.monotonic() - started, 2),
        }
        storage.write_json(self.output().uri, document)
        print(evaluation_text(document), flush=True)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def evaluation_text(document: dict) -> str:
    """The ablation as a few printable lines."""
    lines = [f"evaluation of {document['images']} {document['split']} image(s) against {document['truth']}:",
             f"  fused ({document['fusion']['mode']}): mAP {_fmt(document['fused']['mAP'])} over "
             f"{document['fused']['classes_evaluated']} class(es)"]
    for source, result in document["sources"].items():
        lines.append(f"  {source} alone: mAP {_fmt(result['mAP'])}")
    lines.append(f"  submission.csv as written: mAP {_fmt(document['submission_file']['mAP'])}")
    return "\n".join(lines)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


class Report(FileTask):
    """One HTML file a person opens: AP chart, ablation, annotated test images, settings, versions."""

    stage = "report"
    file_name = contract.REPORT_FILE

    def content_settings(self) -> dict:
        config = submit()
        return {"images": config.report_images, "max_side": config.report_max_side, "version": 1}

    def upstream(self) -> list[StageTask]:
        tasks: list[StageTask] = [WriteSubmission(split=self.split), Fuse(split=self.split, shard=0),
                                  Segment(split=self.split, shard=0)]
        if truth_known():
            tasks.append(Evaluate(split=self.split))
        return tasks

    def requires(self):
        return [task for task in self.upstream() if not isinstance(task, (Fuse, Segment))]

    def run_here(self):
        config = submit()
        evaluation = None
        if truth_known():
            evaluation = storage.read_json(Evaluate(split=self.split).output().uri)
        manifest = load_manifest(self.split)
        figures = []
        for number, image in enumerate(manifest.head(max(0, config.report_images)).to_dict("records"), start=1):
            self.progress(f"drawing {image['ID']} ({number}/{config.report_images})")
            figures.append(self.figure(image, config.report_max_side))
        submission_uri = WriteSubmission(split=self.split).output().uri
        results = None
        if evaluation is not None:
            results = {"fused": evaluation["fused"],
                       **{f"{source} alone": result for source, result in evaluation["sources"].items()}}
        fusion = fusion_settings()
        summary = {
            "split": self.split,
            "images": len(manifest),
            "submission": submission_uri,
            "fused mAP": _fmt(evaluation["mAP"]) if evaluation else "no truth",
            "fusion": f"{fusion.mode}: " + ", ".join(f"{k} {v:g}" for k, v in fusion.weights.items() if v),
            "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        settings = {
            "pipeline": {key: getattr(pipeline(), key) for key in ("input", "work", "profile", "shard_size")},
            "segment": segment().settings().content(),
            "fusion": {"mode": fusion.mode, "weights": dict(fusion.weights)},
            "truth": truth_uri() if evaluation else None,
            "fingerprints": {"submission": WriteSubmission(split=self.split).fingerprint(),
                             "fuse": Fuse(split=self.split, shard=0).fingerprint()},
        }
        text = report.render_html(f"HPA single-cell classification: {self.split} run", summary, results, figures,
                                  settings, package_versions())
        storage.write_bytes(self.output().uri, text.encode("utf-8"))

    def figure(self, image: dict, max_side: int) -> tuple[str, bytes, str]:
        image_id = image["ID"]
        shard = int(image["shard"])
        cells, _ = read_labels(Segment(split=self.split, shard=shard).folder(), image_id)
        field = read_field(split_folder(self.split), image_id,
                           {channel: image[channel] for channel in CHANNELS})
        fused = load_fused(self.split, shard)
        top = report.top_classes(fused[fused["ID"] == image_id])
        png = report.png_bytes(report.annotate(field, cells, top, max_side))
        storage.write_bytes(storage.join(self.stage_root(), "images", f"{image_id}.png"), png)
        caption = f"{image_id}: {field.shape[1]}x{field.shape[0]}, {len(top)} cell(s)"
        if image.get("Label"):
            caption += f", image labels {image['Label']}"
        return image_id, png, caption


class PublishedTarget(luigi.Target):
    """Exists when ``<work>/published.json`` names exactly the expected artifacts and every copy is there."""

    def __init__(self, uri: str, expected: dict[str, str]):
        self.uri = uri
        self.expected = expected

    def exists(self) -> bool:
        if not storage.exists(self.uri):
            return False
        try:
            recorded = storage.read_json(self.uri)
        except (ValueError, storage.ArtifactNotFound):
            return False
        return recorded == self.expected and all(storage.exists(copy) for copy in recorded.get("copies", {}))


class Submission(luigi.Task):
    """The whole pipeline: submission, evaluation where truth is known, report; published at the work root."""

    split = luigi.ChoiceParameter(choices=manifest_core.SPLITS, default="test")

    def artifacts(self) -> dict[str, StageTask]:
        tasks: dict[str, StageTask] = {"submission": WriteSubmission(split=self.split),
                                       "report": Report(split=self.split)}
        if truth_known():
            tasks["evaluation"] = Evaluate(split=self.split)
        return tasks

    def requires(self):
        return list(self.artifacts().values())

    def copies(self) -> dict[str, str]:
        """Top-level copy URI -> hashed artifact URI."""
        names = {"submission": contract.SUBMISSION_FILE, "report": contract.REPORT_FILE,
                 "evaluation": contract.EVALUATION_FILE}
        work = pipeline().work
        return {storage.join(work, top_level_name(names[key], self.split)): task.output().uri
                for key, task in self.artifacts().items()}

    def record(self) -> dict:
        return {"split": self.split, "copies": self.copies()}

    def output(self):
        return PublishedTarget(storage.join(pipeline().work, top_level_name("published.json", self.split)),
                               self.record())

    def run(self):
        record = self.record()
        for copy, source in record["copies"].items():
            storage.write_bytes(copy, storage.read_bytes(source))
        storage.write_json(self.output().uri, record)  # last: its presence means the copies are complete
        print(published_text(self.split), flush=True)


def published_text(split: str = "test") -> str:
    """Where the last published run's results are, and its mAP: for the end of a command."""
    work = pipeline().work
    record_uri = storage.join(work, top_level_name("published.json", split))
    if not storage.exists(record_uri):
        return f"nothing published yet under {work}"
    copies = list(storage.read_json(record_uri)["copies"])
    lines = [f"{name.rsplit('/', 1)[-1]}: {name}" for name in copies]
    evaluation = [name for name in copies if name.endswith(".json")]
    if evaluation:
        lines.append(evaluation_text(storage.read_json(evaluation[0])))
    return "\n".join(lines)

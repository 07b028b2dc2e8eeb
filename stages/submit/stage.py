"""The submit stage: the Kaggle submission, the evaluation where per-cell truth is known, the report.

``Submission`` (:mod:`stages.submit.publish`) then publishes them at the work root.
"""

from __future__ import annotations

import time

import cv2
import luigi
import numpy as np
import pandas as pd

from stages import inputs, storage
from stages.classify.stage import classify, profile
from stages.config import pipeline
from stages.declare import Stage, TaskSpec, every_shard, single
from stages.fuse import contract as fuse_contract
from stages.fuse.stage import fusion_settings
from stages.manifest.contract import MANIFEST
from stages.segment import contract as segment_contract
from stages.segment.stage import segment
from stages.submit import contract, encoding, file_score, report, summary
from stages.submit import evaluate as metric


class submit(luigi.Config):  # noqa: N801 -- Luigi derives the [submit] section name from the class name
    truth = luigi.Parameter(
        default="",
        description="URI of per-cell truth (cells.csv + <ID>_cells.png); empty: <input>/truth where it exists",
    )
    report_images = luigi.IntParameter(
        default=24, description="at most this many images of the split drawn in the report (the manifest's first)")
    report_max_side = luigi.IntParameter(
        default=768, description="longest side of a report image, pixels (the enlarged view; thumbnails are smaller)")


def truth_uri() -> str:
    return submit().truth or storage.join(pipeline().input, "truth")


def truth_known() -> bool:
    return storage.exists(storage.join(truth_uri(), "cells.csv"))


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


class TruthImages(dict):
    """Truth label images by image ID, read one at a time when asked (never all in memory)."""

    def __init__(self, uri: str):
        super().__init__()
        self.uri = uri

    def __missing__(self, image_id: str) -> np.ndarray:
        return read_truth_labels(self.uri, image_id)


def shard_pairs(ctx):
    """Each shard's (segment folder, fused folder), in shard order."""
    return list(zip(ctx.input("segment"), ctx.input("fused")))


def shard_labels(segment_shard, images: pd.DataFrame):
    """Each image's cell label image, read one at a time, checked against the segment table's size."""
    for row in images.itertuples(index=False):
        cells, _ = segment_shard.read(segment_contract.LABELS, image_id=row.ID)
        if cells.shape != (int(row.height), int(row.width)):
            raise ValueError(f"image {row.ID}: label image {cells.shape[1]}x{cells.shape[0]} but the segment "
                             f"table says {row.width}x{row.height}")
        yield row.ID, cells


def run_submission(ctx) -> dict:
    manifest = ctx.input("manifest").read(MANIFEST)
    parts = []
    pairs = shard_pairs(ctx)
    for number, (segment_shard, fused) in enumerate(pairs):
        ctx.progress(f"shard {number + 1}/{len(pairs)}: encoding masks", 100 * number // max(1, len(pairs)))
        images = segment_shard.read(segment_contract.IMAGES)
        encoded = {image_id: encoding.encode_cells(cells) for image_id, cells in shard_labels(segment_shard, images)}
        sizes = pd.DataFrame({"ID": images["ID"], "ImageWidth": images["width"], "ImageHeight": images["height"]})
        parts.append(encoding.build_submission(sizes, encoded, fused.read(fuse_contract.SCORES)))
    table = encoding.in_manifest_order(parts, manifest["ID"].tolist())
    ctx.progress(f"{len(table)} image(s) written", 100)
    return {contract.SUBMISSION: table}


def run_evaluation(ctx) -> dict:
    started = time.monotonic()
    truth = truth_uri()
    truth_cells = storage.read_table(storage.join(truth, "cells.csv"), dtype={"ID": str, "Label": str},
                                     keep_default_na=False)
    fusion = fusion_settings()
    pairs = shard_pairs(ctx)
    tables = {summary.FUSED: pd.concat([fused.read(fuse_contract.SCORES) for _, fused in pairs], ignore_index=True),
              **{source: pd.concat([fused.read(fuse_contract.SOURCE, source=source) for _, fused in pairs],
                                   ignore_index=True) for source in fusion.sources}}

    def images():
        for number, (segment_shard, _) in enumerate(pairs):
            ctx.progress(f"shard {number + 1}/{len(pairs)}", 100 * number // max(1, len(pairs)))
            for image_id, cells in shard_labels(segment_shard, segment_shard.read(segment_contract.IMAGES)):
                yield image_id, cells, read_truth_labels(truth, image_id)

    results = metric.evaluate_sources(images(), tables, truth_cells)
    ctx.progress("scoring the submission file", 95)
    written = ctx.input("submission").read(contract.SUBMISSION)
    submission_file = file_score.evaluate_submission(written, TruthImages(truth), truth_cells)
    document = summary.evaluation_document(ctx.split, truth, results, submission_file, fusion,
                                           time.monotonic() - started)
    ctx.progress(f"fused ({summary.fusion_label(document['fusion'])}): {summary.measure_text(document['fused'])}",
                 100)
    return {contract.EVALUATION: document}


def run_report(ctx) -> dict:
    from stages.classes import parse_labels
    from stages.submit import report_notes, report_tables
    from stages.submit.publish import top_level_name  # publish imports this module: import at run time

    config = submit()
    evaluation = ctx.input("evaluation").read(contract.EVALUATION) if "evaluation" in ctx.task.needs() else None
    manifest = inputs.load_manifest(ctx.split)
    pairs = shard_pairs(ctx)
    fusion = fusion_settings()
    ctx.progress("reading each source's scores")
    patterns = report_notes.score_patterns((source, fused.read(fuse_contract.SOURCE, source=source))
                                           for _, fused in pairs for source in fusion.sources)
    truth_cells = None
    if evaluation is not None:  # the truth the evaluation measured against
        truth_cells = storage.read_table(storage.join(evaluation["truth"], "cells.csv"),
                                         dtype={"ID": str, "Label": str}, keep_default_na=False)
    drawn = manifest.head(max(0, config.report_images)).to_dict("records")
    figures, shard_scores = [], {}
    for number, image in enumerate(drawn, start=1):
        ctx.progress(f"drawing {image['ID']} ({number}/{len(drawn)})", 100 * (number - 1) // max(1, len(drawn)))
        shard = int(image["shard"])
        segment_shard, fused = pairs[shard]
        if shard not in shard_scores:  # one shard's table at a time: images come in shard order
            shard_scores = {shard: fused.read(fuse_contract.SCORES)}
        cells, nuclei = segment_shard.read(segment_contract.LABELS, image_id=image["ID"])
        image_truth, cell_truth = parse_labels(image.get("Label") or "") or None, None
        if truth_cells is not None:
            rows = truth_cells[truth_cells["ID"] == image["ID"]]
            image_truth = sorted({klass for label in rows["Label"] for klass in parse_labels(label)})
            try:
                truth_labels = read_truth_labels(evaluation["truth"], image["ID"])
            except storage.ArtifactNotFound:
                truth_labels = None
            if truth_labels is not None and truth_labels.shape == cells.shape:
                cell_truth = report_tables.pair_truth(cells, truth_labels, rows)
        drawing = report.figure(image["ID"], inputs.field_of(ctx.split, image), cells, nuclei, shard_scores[shard],
                                config.report_max_side, image_truth, cell_truth)
        ctx.write(contract.REPORT_IMAGE, drawing.png, image_id=image["ID"])
        figures.append(drawing)
    run_settings = {
        "pipeline": {key: getattr(pipeline(), key) for key in ("input", "work", "profile", "shard_size")},
        "segment": segment().settings().content(),
        "ensemble": report_notes.ensemble_summary(profile(), bool(pipeline().external),
                                                 classify().max_steps),
        "submit": {"report_images": config.report_images, "report_max_side": config.report_max_side},
        "fingerprints": {"submission": ctx.input("submission").task.fingerprint(),
                         "fuse": pairs[0][1].task.fingerprint() if pairs else None},
    }
    published = storage.join(pipeline().work, top_level_name(contract.SUBMISSION.name, ctx.split))
    text = report.report_html(ctx.split, len(manifest), evaluation, figures, fusion, run_settings,
                              report.package_versions(), ctx.input("submission").uri(contract.SUBMISSION),
                              time.strftime("%Y-%m-%d %H:%M:%S %Z"), published_uri=published,
                              profile=pipeline().profile, patterns=patterns)
    return {contract.REPORT: text.encode("utf-8")}


SHARDS = {"segment": every_shard("Segment"), "fused": every_shard("Fuse")}

WRITE_SUBMISSION = TaskSpec(
    name="WriteSubmission", doc="The Kaggle submission of a split: every image of the manifest, 19 classes per cell.",
    needs=lambda task: {**SHARDS, "manifest": single("Manifest")}, outputs=(contract.SUBMISSION,),
    content=lambda task: {"encoding": "coco-rle/zlib-9/base64", "confidence": "repr", "classes": "all 19 per cell",
                          "version": 1},
    run=run_submission,
)

EVALUATE = TaskSpec(
    name="Evaluate", doc="mAP at mask IoU 0.6 (Open Images style) of the fusion, of each source alone, of the file.",
    needs=lambda task: {**SHARDS, "submission": single("WriteSubmission")}, outputs=(contract.EVALUATION,),
    content=lambda task: {"truth": truth_uri(), "iou_threshold": contract.IOU_THRESHOLD, "version": 2},
    run=run_evaluation, source=lambda task: inputs.folder_digest(truth_uri()),
)

REPORT = TaskSpec(
    name="Report", doc="One HTML file a person opens: AP chart, ablation, annotated test images, settings, versions.",
    needs=lambda task: {**SHARDS, "submission": single("WriteSubmission"),
                        **({"evaluation": single("Evaluate")} if truth_known() else {})},
    outputs=(contract.REPORT, contract.REPORT_IMAGE),
    content=lambda task: {"images": submit().report_images, "max_side": submit().report_max_side, "version": 2},
    run=run_report, reads_labels=True,  # the image labels shown beside each test image
)

STAGE = Stage(name="submit", doc="The submission, its evaluation and the report.",
              tasks=(WRITE_SUBMISSION, EVALUATE, REPORT), whole="Submission")

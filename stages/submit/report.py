"""The human-readable report: one self-contained HTML file (pure: dicts and arrays in, text and pixels out).

From the top: the run's summary (linking the published submission.csv), notes to read first (demo-sized
models, a source that contributed nothing, the chance level of the metric), the ablation (each source alone
against the fusion: challenge mAP, strict mAP and per-cell AUC where evaluated), the per-class AP as a table
and a chart, a channel legend, then every drawn test image with cell and nucleus outlines and cell ids (a
thumbnail that enlarges on click) beside a table of each cell's top classes and the truth where it is
known; last the settings and package versions. Images are PNG data URIs, each embedded once, and the few
lines of CSS and JS are inline, so the file travels alone.

The parts live in :mod:`stages.submit.report_draw` (drawing), :mod:`stages.submit.report_tables` (tables),
:mod:`stages.submit.report_notes` (legend and notes) and :mod:`stages.submit.report_chart` (the SVG chart).
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import platform
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from stages.submit import report_notes, report_tables
from stages.submit.report_chart import ap_chart_svg, page_style, script
from stages.submit.report_draw import draw_cells
from stages.submit.report_overlay import annotate
from stages.submit.report_tables import image_top, top_classes
from stages.submit.summary import FUSED, score_text
from stages.zoo import FusionSettings

__all__ = ["Figure", "Markup", "annotate", "ap_chart_svg", "figure", "package_versions", "png_bytes",
           "render_html", "report_html", "top_classes"]

TOP = 3  # classes listed per cell
# Both TensorFlow and ultralytics names: whichever build is installed is the one a reader needs to know.
VERSIONED_PACKAGES = (
    "numpy", "pandas", "luigi", "pycocotools", "opencv-python-headless", "scikit-image", "scipy",
    "tensorflow", "tensorflow-cpu", "keras", "efficientnet", "torch", "torchvision",
    "ultralytics-opencv-headless", "ultralytics", "boto3",
)
WRITTEN_FILE = "submission.csv as written"
MEASURE_TEXT = (
    ("mAP", "<b>mAP (challenge)</b>: Open Images instance-segmentation style, a prediction of a class counted only "
            "in images whose truth has it, averaged over the classes with truth cells"),
    ("strict_mAP", "<b>strict mAP</b>: the same with every prediction counted (a class predicted in an image "
                   "without it is a false positive), as for a user without image labels"),
    ("cell_auc", "<b>per-cell AUC</b>: macro ROC-AUC over the truth cells, each scored by its best-overlapping "
                 "predicted cell, averaged over the classes with both positive and negative cells"),
)


class Markup(str):
    """Text that is already HTML: put on the page as it is (every other value is escaped)."""


class Figure(NamedTuple):
    """One drawn image: its ID, the PNG, a one-line caption and the HTML table of its cells' classes."""

    image_id: str
    png: bytes
    caption: str
    table: str = ""


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {rgb.shape}")
    return buffer.tobytes()


def figure(image_id: str, field: np.ndarray, cells: np.ndarray, nuclei: np.ndarray | None, scores: pd.DataFrame,
           max_side: int, image_truth: Sequence[int] | None = None,
           cell_truth: Mapping[int, tuple[int, Sequence[int]]] | None = None, k: int = TOP) -> Figure:
    """One report image: outlines and ids drawn (:func:`stages.submit.report_draw.draw_cells`), and the table of
    each cell's top ``k`` classes. ``scores``: a score table holding (at least) this image's rows;
    ``image_truth``: the image's truth classes where known; ``cell_truth``: predicted cell id -> (truth cell
    id, its classes) from :func:`stages.submit.report_tables.pair_truth`, where per-cell truth is known."""
    rows = scores[scores["ID"] == image_id]
    top = top_classes(rows, k)
    png = png_bytes(draw_cells(field, cells, nuclei, max_side))
    caption = f"{image_id}: {field.shape[1]}x{field.shape[0]}, {len(top)} cell(s)"
    table = report_tables.cell_table(top, image_top(rows, k), image_truth, cell_truth)
    return Figure(image_id, png, caption, table)


def cell_text(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def key_table(rows: Mapping[str, object], css: str = "") -> str:
    return (f"<table class='{css}'>" + "".join(f"<tr><th>{html.escape(str(key))}</th><td class='text'>"
                                               f"{cell_text(value)}</td></tr>" for key, value in rows.items())
            + "</table>")


def flat_settings(settings: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    """Nested settings as ``{"pipeline.input": "data", ...}``; lists and other values as JSON text."""
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_settings(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return flat


def figure_html(item: Figure) -> str:
    data = base64.b64encode(item.png).decode("ascii")
    name = html.escape(item.image_id)
    return (f"<section class='image' id='image-{name}'><img class='thumb' src='data:image/png;base64,{data}' "
            f"alt='{html.escape(item.caption)}' title='click to enlarge' onclick='enlarge(this)'>"
            f"<div class='cells'><h3>{html.escape(item.caption)}</h3>{item.table}</div></section>")


def render_html(
    title: str,
    summary: Mapping[str, object],
    results: Mapping[str, dict] | None,
    images: Sequence[Figure | tuple],
    settings: Mapping[str, object],
    versions: Mapping[str, str],
    notes: Sequence[str] = (),
    row_notes: Mapping[str, str] | None = None,
    written_file: Mapping | None = None,
) -> str:
    """The report. ``results``: name -> :func:`stages.submit.evaluate.Evaluation.result` dict (the fused
    one first), or None where no truth is known; ``images``: :class:`Figure`\\ s (or ``(ID, PNG, caption)``);
    ``notes``: paragraphs (HTML) to read first; ``row_notes``: result name -> note (HTML) in the ablation;
    ``written_file``: the submission file's own result, an extra ablation row."""
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{page_style()}</style></head><body><h1>{html.escape(title)}</h1>", key_table(summary, "summary")]
    if notes:
        out.append("<div class='notes'><h2>Read this first</h2>" + "".join(f"<p>{note}</p>" for note in notes)
                   + "</div>")
    if results:
        first = next(iter(results.values()))
        out.append(f"<h2>Evaluation at mask IoU &ge; {first['iou_threshold']:g}</h2>")
        out.append("<p>Each source alone against the fusion (the ablation). " + "; ".join(
            text for key, text in MEASURE_TEXT if key == "mAP" or any(key in result for result in results.values()))
            + ".</p>")
        rows = {**results, **({WRITTEN_FILE: written_file} if written_file else {})}
        out.append(report_tables.ablation_table(rows, row_notes))
        out.append("<h2>Per-class AP</h2>")
        out.append(report_tables.per_class_table(results))
        out.append(f"<details><summary>The same as a chart</summary>{ap_chart_svg(results)}</details>")
    else:
        out.append("<h2>Evaluation</h2><p>No per-cell truth is known for these images: no mAP.</p>")
    if images:
        out.append("<h2>Test images</h2>" + report_notes.legend_html())
        truth = any("<th>truth</th>" in (item.table if isinstance(item, Figure) else "") for item in images)
        out.append("<p>Beside each image: the image's best classes (each class's highest fused score over its "
                   "cells), then every cell's top classes by fused score" + (
                       "; &#10003; marks a class the truth has (the paired truth cell's labels where per-cell truth "
                       "is known, else the image's)." if truth else ".") + "</p>")
        out.extend(figure_html(item if isinstance(item, Figure) else Figure(*item)) for item in images)
        out.append("<div id='lightbox' hidden onclick='shut()'><img id='lightbox-img' alt=''>"
                   "<p id='lightbox-caption'></p></div>")
    out.append("<h2>Settings</h2>" + key_table(flat_settings(settings), "settings"))
    out.append("<h2>Versions</h2>" + key_table(versions, "versions"))
    out.append(f"<script>{script()}</script></body></html>")
    return "\n".join(out)


# what the summary adds to the fusion rule for each gate (none adds nothing)
GATE_TEXT = {"image": "; gated by the image models", "cells": "; gated by the cell models' mean over each image",
             "cells_max": "; gated by the cell models' highest score in each image"}


def report_html(
    split: str,
    image_count: int,
    evaluation: Mapping | None,
    figures: Sequence[Figure],
    fusion: FusionSettings,
    run_settings: Mapping[str, object],
    versions: Mapping[str, str],
    submission_uri: str,
    written: str,
    published_uri: str | None = None,
    profile: str | None = None,
    patterns: report_notes.Patterns | None = None,
) -> str:
    """The whole report of a run. ``evaluation``: the run's ``evaluation.json`` document
    (:func:`stages.submit.summary.evaluation_document`; ``strict_mAP``, ``cell_auc`` and ``cell_auc_classes``
    per result are shown where present), None where no truth is known; ``figures``: from :func:`figure`;
    ``run_settings``: what else the reader should see of the configuration (pipeline, segment,
    fingerprints), to which the fusion, the fingerprinted submission artifact (``submission_uri``) and the
    truth's URI are added; ``published_uri``: the submission's published copy, linked from the summary (by
    its file name: the report is published beside it); ``profile``: the zoo profile (``demo`` adds a note);
    ``patterns``: what the sources' score tables show (a constant source, image-level sources:
    :func:`stages.submit.report_notes.score_patterns`); ``written``: when, as text (the caller's clock keeps
    this function pure)."""
    patterns = patterns or report_notes.Patterns({}, frozenset())
    results = None
    if evaluation is not None:
        results = {FUSED: evaluation[FUSED],
                   **{f"{source} alone": result for source, result in evaluation["sources"].items()}}
    base = report_notes.baseline(results, patterns.constant) if results else None
    link = published_uri or submission_uri
    name = link.rstrip("/").rsplit("/", 1)[-1]
    summary = {
        "split": split,
        "images": f"{image_count} ({len(figures)} drawn below)",
        "submission": Markup(f"<a href='{html.escape(name)}'>{html.escape(link)}</a>"),
        "fused mAP": score_text(evaluation["mAP"]) if evaluation else "no truth",
        **({"strict mAP": score_text(evaluation[FUSED]["strict_mAP"])}
           if evaluation and "strict_mAP" in evaluation[FUSED] else {}),
        **({"per-cell AUC": score_text(evaluation[FUSED]["cell_auc"])}
           if evaluation and "cell_auc" in evaluation[FUSED] else {}),
        "fusion": f"{fusion.mode}: " + ", ".join(f"{k} {v:g}" for k, v in fusion.weights.items() if v)
                  + GATE_TEXT.get(fusion.gate, ""),
        **({"profile": profile} if profile else {}),
        "written": written,
    }
    settings = {
        **run_settings,
        "fusion": {"mode": fusion.mode, "weights": dict(fusion.weights), "gate": fusion.gate},
        "artifacts": {"submission": submission_uri},  # the fingerprinted file the published copy came from
        # the evaluation's own record of its truth: the URI these numbers were measured against
        "truth": evaluation["truth"] if evaluation else None,
    }
    notes = report_notes.reading_notes(profile, patterns.constant, base, evaluation is not None)
    row_notes = report_notes.source_notes(results, patterns, base) if results else {}
    return render_html(f"HPA single-cell classification: {split} run", summary, results, figures, settings,
                       versions, notes, row_notes, evaluation.get("submission_file") if evaluation else None)


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Python, the platform and each installed package's version (packages not installed are left out)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions

"""The human-readable report: one self-contained HTML file (pure: dicts and arrays in, text and pixels out).

It shows the per-class AP chart (an inline SVG, no plotting library), the ablation table (each source alone
against the fusion), a few test images with cell outlines and each cell's top classes drawn on them
(PNG, embedded as data URIs so the file travels alone), and the run's settings and package versions.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import platform
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.segmentation import find_boundaries

from stages.classes import CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS
from stages.fields import composite
from stages.submit.summary import FUSED, score_text
from stages.zoo import FusionSettings

OUTLINE = (255, 255, 255)
TEXT = (255, 255, 0)
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
# Both TensorFlow and ultralytics names: whichever build is installed is the one a reader needs to know.
VERSIONED_PACKAGES = (
    "numpy", "pandas", "luigi", "pycocotools", "opencv-python-headless", "scikit-image", "scipy",
    "tensorflow", "tensorflow-cpu", "keras", "efficientnet", "torch", "torchvision",
    "ultralytics-opencv-headless", "ultralytics", "boto3",
)


def top_classes(scores: pd.DataFrame, k: int = 2) -> dict[int, list[tuple[int, float]]]:
    """Per cell of one image's score rows, its ``k`` best ``(class, score)`` pairs, best first."""
    values = scores[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return {
        int(cell_id): [(int(klass), float(row[klass])) for klass in best]
        for cell_id, row, best in zip(scores["cell_id"].to_numpy(), values, order)
    }


def annotate(field: np.ndarray, cells: np.ndarray, top: Mapping[int, Sequence[tuple[int, float]]],
             max_side: int = 768) -> np.ndarray:
    """(h, w, 3) RGB uint8: the HPA composite shrunk to at most ``max_side``, cell outlines in white and
    each cell's top classes written at its centroid."""
    rows, cols = cells.shape
    scale = min(1.0, max_side / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    image = np.ascontiguousarray(cv2.resize(composite(field), size, interpolation=cv2.INTER_AREA))
    small = cv2.resize(cells, size, interpolation=cv2.INTER_NEAREST_EXACT)
    image[find_boundaries(small, mode="inner")] = OUTLINE
    ids = [cell_id for cell_id in top if (cells == cell_id).any()] if top else []
    if not ids:
        return image
    centres = ndimage.center_of_mass(np.ones_like(cells), cells, ids)
    font_scale = max(0.3, 0.35 * size[0] / 512)
    for cell_id, (cy, cx) in zip(ids, centres):
        lines = [f"{CLASS_NAMES[klass][:18]} {score:.2f}" for klass, score in top[cell_id]]
        y = int(cy * scale) - 6 * (len(lines) - 1)
        for line in lines:
            (width, height), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            x = int(np.clip(cx * scale - width / 2, 0, max(0, size[0] - width)))
            y_text = int(np.clip(y, height, size[1] - 1))
            cv2.putText(image, line, (x, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, line, (x, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT, 1, cv2.LINE_AA)
            y += height + 4
    return image


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {rgb.shape}")
    return buffer.tobytes()


def ap_chart_svg(results: Mapping[str, dict], width: int = 760) -> str:
    """Grouped horizontal bars: per class, the AP of every named result (e.g. fused, then each source).

    Classes without truth show "no truth" instead of bars.
    """
    names = list(results)
    bar, gap, label_width = 7, 8, 250
    group = bar * len(names) + gap
    plot = width - label_width - 60
    height = 30 + NUM_CLASSES * group + 20 * len(names) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11" role="img" aria-label="per-class AP">']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_width + tick * plot
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{20 + NUM_CLASSES * group}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="14" text-anchor="middle">{tick:g}</text>')
    for klass in range(NUM_CLASSES):
        top = 20 + klass * group
        name = html.escape(f"{klass} {CLASS_NAMES[klass]}")
        parts.append(f'<text x="{label_width - 6}" y="{top + group / 2 + 3:.1f}" text-anchor="end">{name}</text>')
        values = [results[series]["per_class"][str(klass)]["AP"] for series in names]
        if all(value is None for value in values):
            parts.append(f'<text x="{label_width + 4}" y="{top + group / 2 + 3:.1f}" fill="#999">no truth</text>')
            continue
        for index, (series, value) in enumerate(zip(names, values)):
            if value is None:
                continue
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            y = top + index * bar
            parts.append(f'<rect x="{label_width}" y="{y}" width="{max(value * plot, 0.5):.1f}" height="{bar - 1}" '
                         f'fill="{colour}"><title>{html.escape(series)}: {value:.3f}</title></rect>')
    legend_top = 30 + NUM_CLASSES * group
    for index, series in enumerate(names):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        mean = results[series]["mAP"]
        label = html.escape(f"{series} (mAP {mean:.3f})" if mean is not None else series)
        y = legend_top + 20 * index
        parts.append(f'<rect x="{label_width}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{label_width + 18}" y="{y + 10}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def ablation_table(results: Mapping[str, dict]) -> str:
    """HTML table: one row per result (mAP, classes evaluated), one column per class AP."""
    head = "".join(f'<th title="{html.escape(CLASS_NAMES[k])}">{k}</th>' for k in range(NUM_CLASSES))
    rows = []
    for name, result in results.items():
        cells = "".join(
            f"<td>{'' if (value := result['per_class'][str(k)]['AP']) is None else f'{value:.3f}'}</td>"
            for k in range(NUM_CLASSES)
        )
        mean = "n/a" if result["mAP"] is None else f"{result['mAP']:.4f}"
        rows.append(f"<tr><th>{html.escape(name)}</th><td><b>{mean}</b></td><td>{result['classes_evaluated']}</td>{cells}</tr>")
    return (f"<table><thead><tr><th>scores</th><th>mAP</th><th>classes</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222 }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0 }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right }
th { background: #f4f4f4 }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top }
figcaption { font-size: 12px; color: #555 }
pre { background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: 12px }
"""


def render_html(
    title: str,
    summary: Mapping[str, object],
    results: Mapping[str, dict] | None,
    images: Sequence[tuple[str, bytes, str]],
    settings: Mapping[str, object],
    versions: Mapping[str, str],
) -> str:
    """The report. ``results``: name -> :func:`stages.submit.evaluate.Evaluation.result` dict (the fused
    one first), or None where no truth is known; ``images``: ``(image ID, PNG bytes, caption)``."""
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    out.append("<table>" + "".join(f"<tr><th>{html.escape(str(key))}</th><td style='text-align:left'>"
                                   f"{html.escape(str(value))}</td></tr>" for key, value in summary.items()) + "</table>")
    if results:
        first = next(iter(results.values()))
        out.append(f"<h2>Evaluation: mAP at mask IoU &ge; {first['iou_threshold']:g}</h2>")
        out.append("<p>Open Images instance-segmentation style, over the classes that have truth cells; "
                   "each source alone against the fusion (the ablation).</p>")
        out.append(ablation_table(results))
        out.append("<h2>Per-class AP</h2>")
        out.append(ap_chart_svg(results))
    else:
        out.append("<h2>Evaluation</h2><p>No per-cell truth is known for these images: no mAP.</p>")
    if images:
        out.append("<h2>Test images</h2><p>Cell outlines in white; each cell's top classes and fused scores.</p>")
        for image_id, png, caption in images:
            data = base64.b64encode(png).decode("ascii")
            out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(image_id)}'>"
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    out.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(settings, indent=2, sort_keys=True, default=str)) + "</pre>")
    out.append("<h2>Versions</h2><table>" + "".join(
        f"<tr><th>{html.escape(name)}</th><td style='text-align:left'>{html.escape(version)}</td></tr>"
        for name, version in versions.items()) + "</table>")
    out.append("</body></html>")
    return "\n".join(out)


def figure(image_id: str, field: np.ndarray, cells: np.ndarray, scores: pd.DataFrame, max_side: int,
           label: object = None) -> tuple[str, bytes, str]:
    """One report image: ``(image ID, PNG bytes, caption)`` for :func:`render_html`. ``scores``: a score
    table holding (at least) this image's rows; ``label``: the image's labels from the manifest, if any."""
    top = top_classes(scores[scores["ID"] == image_id])
    png = png_bytes(annotate(field, cells, top, max_side))
    caption = f"{image_id}: {field.shape[1]}x{field.shape[0]}, {len(top)} cell(s)"
    if label:
        caption += f", image labels {label}"
    return image_id, png, caption


def report_html(
    split: str,
    image_count: int,
    evaluation: Mapping | None,
    figures: Sequence[tuple[str, bytes, str]],
    fusion: FusionSettings,
    run_settings: Mapping[str, object],
    versions: Mapping[str, str],
    submission_uri: str,
    written: str,
) -> str:
    """The whole report of a run. ``evaluation``: the run's ``evaluation.json`` document
    (:func:`stages.submit.summary.evaluation_document`), None where no truth is known; ``figures``: from
    :func:`figure`; ``run_settings``: what else the reader should see of the configuration (pipeline,
    segment, fingerprints), to which the fusion and the truth's URI are added; ``written``: when, as text
    (the caller's clock keeps this function pure)."""
    results = None
    if evaluation is not None:
        results = {FUSED: evaluation[FUSED],
                   **{f"{source} alone": result for source, result in evaluation["sources"].items()}}
    summary = {
        "split": split,
        "images": image_count,
        "submission": submission_uri,
        "fused mAP": score_text(evaluation["mAP"]) if evaluation else "no truth",
        "fusion": f"{fusion.mode}: " + ", ".join(f"{k} {v:g}" for k, v in fusion.weights.items() if v),
        "written": written,
    }
    settings = {
        **run_settings,
        "fusion": {"mode": fusion.mode, "weights": dict(fusion.weights)},
        # the evaluation's own record of its truth: the URI these numbers were measured against
        "truth": evaluation["truth"] if evaluation else None,
    }
    return render_html(f"HPA single-cell classification: {split} run", summary, results, figures, settings,
                       versions)


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Python, the platform and each installed package's version (packages not installed are left out)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions

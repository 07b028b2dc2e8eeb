"""The report page: summary, notes, ablation, per-class AP, every drawn image with its cell table and a
lightbox, settings, versions (the drawing and the tables alone: test_report_draw.py, test_report_tables.py)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from types import MappingProxyType

import cv2
import numpy as np
import pandas as pd

from stages.classes import CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS
from stages.submit import report, report_notes
from stages.submit.evaluate import Evaluation, image_overlap
from stages.zoo import FusionSettings, get_profile


def scores(rows, image_id="x"):
    table = pd.DataFrame({"ID": image_id, "cell_id": list(rows)})
    table[list(SCORE_COLUMNS)] = np.array(list(rows.values()), float)
    return table


MEASURE_KEYS = ("strict_mAP", "cell_auc", "cell_auc_classes", "truth_cells", "paired_cells")


def evaluation_result(perfect: bool, measures: bool = True) -> dict:
    """A real result; without ``measures`` as an evaluation made before the strict mAP and AUC existed."""
    truth = np.zeros((20, 20), np.uint16)
    truth[:10, :10] = 1
    truth[10:, 10:] = 2
    evaluation = Evaluation()
    overlap = image_overlap(truth, truth, {1: [0], 2: [5]})
    good = 0.9 if perfect else 0.1
    evaluation.add(overlap, [1, 2, 2], [0, 0, 5], [good, 0.5, 0.7])
    result = evaluation.result()
    if not measures:
        result = {key: value for key, value in result.items() if key not in MEASURE_KEYS}
        for entry in result["per_class"].values():
            entry.pop("strict_ap", None), entry.pop("cell_auc", None)
    return result


def fusion_settings():
    return FusionSettings(mode="weighted", weights=MappingProxyType({"cell": 0.5, "image": 0.0, "detector": 0.25}))


def evaluation_document(measures=False, **extra):
    fused, cell, detector = (evaluation_result(quality, measures) for quality in (True, False, False))
    for result in (fused, cell, detector):
        result.update(extra)
    return {"split": "test", "truth": "/data/truth<x>", "images": 1, "mAP": fused["mAP"], "fused": fused,
            "sources": {"cell": cell, "detector": detector}, "submission_file": fused,
            "fusion": {"mode": "weighted", "weights": {"cell": 0.5}}, "seconds": 1.0}


def settings_table(page: str) -> dict:
    block = page.split("<h2>Settings</h2>")[1].split("</table>")[0]
    return {html.unescape(key): html.unescape(value)
            for key, value in re.findall(r"<tr><th>([^<]+)</th><td class='text'>([^<]*)</td></tr>", block)}


def summary_table(page: str) -> dict:
    block = page.split("<table class='summary'>")[1].split("</table>")[0]
    return dict(re.findall(r"<tr><th>([^<]+)</th><td class='text'>(.*?)</td></tr>", block))


def page_of(evaluation=None, figures=(), **keywords):
    arguments = {"published_uri": "/work/submission.csv", "profile": "hpa2021", **keywords}
    return report.report_html("test", 7, evaluation, list(figures), fusion_settings(),
                              {"pipeline": {"shard_size": 4}, "fingerprints": {"fuse": "abc"}}, {"numpy": "2"},
                              "/work/write_submission/f1/test/submission.csv", "2026-01-01 00:00:00 UTC", **arguments)


def test_the_summary_says_which_gate_the_fusion_uses():
    for gate, said in (("none", "weighted: cell 0.5, detector 0.25"),
                       ("cells", "weighted: cell 0.5, detector 0.25; gated by the cell models&#x27; mean over "
                                 "each image"),
                       ("cells_max", "weighted: cell 0.5, detector 0.25; gated by the cell models&#x27; highest "
                                     "score in each image"),
                       ("image", "weighted: cell 0.5, detector 0.25; gated by the image models")):
        fusion = FusionSettings(mode="weighted", weights=fusion_settings().weights, gate=gate)
        page = report.report_html("test", 7, None, [], fusion, {}, {}, "/work/s.csv", "now")
        assert summary_table(page)["fusion"] == said
        assert settings_table(page)["fusion.gate"] == gate


def test_chart_and_page():
    results = {"fused": evaluation_result(True, False), "cell alone": evaluation_result(False, False)}
    svg = report.ap_chart_svg(results)
    root = ET.fromstring(svg)
    bars = [child for child in root if child.tag.endswith("rect") and child.find("{*}title") is not None]
    assert len(bars) == 4  # two classes with truth, two series
    assert svg.count("no truth") == NUM_CLASSES - 2
    page = report.render_html("run <1>", {"images": 3}, results, [("img&1", b"\x89PNG", "a caption")],
                              {"fusion": {"mode": "weighted"}}, {"numpy": np.__version__})
    assert "run &lt;1&gt;" in page and "img&amp;1" in page and "data:image/png;base64," in page
    assert re.search(r"<th>fused</th><td><b>1\.0000</b></td><td>2</td>", page)
    assert re.search(r"<th>cell alone</th><td><b>0\.7500</b></td>", page)
    assert "No per-cell truth" in report.render_html("t", {}, None, [], {}, {})


def test_report_html_with_an_evaluation():
    page = page_of(evaluation_document())
    assert page.startswith("<!DOCTYPE html>") and "HPA single-cell classification: test run" in page
    summary = summary_table(page)
    assert summary["images"] == "7 (0 drawn below)" and summary["fused mAP"] == "1.0000"
    assert summary["written"] == "2026-01-01 00:00:00 UTC" and summary["profile"] == "hpa2021"
    assert summary["fusion"] == "weighted: cell 0.5, detector 0.25"  # zero weights left out
    # the summary links the published copy at the work root, by name (the report is published beside it)
    assert summary["submission"] == "<a href='submission.csv'>/work/submission.csv</a>"
    assert "strict mAP" not in summary and "per-cell AUC" not in summary  # absent from this evaluation
    assert re.search(r"<th>fused</th><td><b>1\.0000</b>", page)
    assert re.search(r"<th>cell alone</th><td><b>0\.7500</b>", page)  # each source named "<source> alone"
    assert re.search(r"<th>submission.csv as written</th><td><b>1\.0000</b>", page)
    settings = settings_table(page)
    assert settings == {"pipeline.shard_size": "4", "fingerprints.fuse": "abc", "fusion.mode": "weighted",
                        "fusion.gate": "none", "fusion.weights.cell": "0.5", "fusion.weights.image": "0.0",
                        "fusion.weights.detector": "0.25",
                        "artifacts.submission": "/work/write_submission/f1/test/submission.csv",
                        "truth": "/data/truth<x>"}
    for klass, name in enumerate(CLASS_NAMES):  # the per-class AP table names every class
        assert f"<td>{klass}</td><th class='name'>{name}</th>" in page
    assert "Read this first" in page and "Chance level about" in page  # evaluated: the chance level
    assert "Demo-sized" not in page  # hpa2021: no demo note


def test_the_strict_map_and_per_cell_auc_are_shown_when_the_evaluation_has_them():
    document = evaluation_document(strict_mAP=0.5, cell_auc=0.625, cell_auc_classes=2)
    for entry in document["fused"]["per_class"].values():
        known = entry["AP"] is not None
        entry.update(strict_ap=0.25 if known else None, cell_auc=0.875 if known else None)
    document["sources"]["cell"].update(strict_mAP=0.375, cell_auc=0.5)
    page = page_of(document)
    assert "<th>mAP (challenge)</th><th>strict mAP</th><th>per-cell AUC</th>" in page
    assert re.search(r"<th>fused</th><td><b>1\.0000</b></td><td>0\.5000</td><td>0\.6250 <small>\(2 classes", page)
    assert re.search(r"<th>cell alone</th><td><b>0\.7500</b></td><td>0\.3750</td><td>0\.5000 <small>", page)
    summary = summary_table(page)
    assert summary["strict mAP"] == "0.5000" and summary["per-cell AUC"] == "0.6250"
    # per class too: the fusion's strict AP and per-cell AUC beside every result's AP
    assert "<th>fused</th><th>cell alone</th><th>detector alone</th><th>fused strict AP</th>" in page
    assert re.search(r"<td>0</td><th class='name'>Nucleoplasm</th><td>1</td><td>1\.000</td><td>[0-9.]+</td>"
                     r"<td>[0-9.]+</td><td>0\.250</td><td>0\.875</td></tr>", page)
    page = page_of(evaluation_document(strict_mAP=0.5, cell_auc=None, cell_auc_classes=0))
    assert re.search(r"<th>fused</th><td><b>1\.0000</b></td><td>0\.5000</td><td>n/a <small>\(0 classes", page)


def test_a_source_that_contributed_nothing_is_said_so():
    page = page_of(evaluation_document(), patterns=report_notes.Patterns({"detector": 0.0}, frozenset()))
    assert "The detector source contributed nothing" in page
    row = re.search(r"<tr><th>detector alone</th>.*?</tr>", page).group(0)
    assert "found no boxes" in row and "constant score" in row
    assert "found no boxes" not in re.search(r"<tr><th>cell alone</th>.*?</tr>", page).group(0)
    assert "contributed nothing" not in page_of(evaluation_document())
    # without truth the note is still there (no ablation row to carry it)
    assert "The detector source contributed nothing" in page_of(
        None, patterns=report_notes.Patterns({"detector": 0.0}, frozenset()))


def test_the_demo_profile_says_the_models_are_tiny():
    page = page_of(None, profile="demo")
    assert "Demo-sized models" in page and "pipeline works end to end, not biology" in page
    assert "Demo-sized" not in page_of(None, profile="hpa2021") and "Read this first" not in page_of(None)


def test_report_html_without_truth():
    page = report.report_html("val", 2, None, [], fusion_settings(), {}, {}, "/w/f/val/submission.csv", "now",
                              published_uri="/w/submission_val.csv")
    assert "No per-cell truth" in page and "<svg" not in page
    summary = summary_table(page)
    assert summary["fused mAP"] == "no truth"
    assert summary["submission"] == "<a href='submission_val.csv'>/w/submission_val.csv</a>"
    assert settings_table(page)["truth"] == "null"
    # without a published copy the summary links the artifact itself
    plain = report.report_html("val", 2, None, [], fusion_settings(), {}, {}, "/w/f/val/submission.csv", "now")
    assert summary_table(plain)["submission"] == "<a href='submission.csv'>/w/f/val/submission.csv</a>"


def drawn_images():
    field = np.zeros((60, 100, 4), np.uint8)
    cells = np.zeros((60, 100), np.uint16)
    nuclei = np.zeros((60, 100), np.uint16)
    cells[10:50, 10:40] = 1
    cells[10:50, 60:90] = 2
    nuclei[20:40, 15:35] = 1
    nuclei[20:40, 65:85] = 2
    return field, cells, nuclei


def test_figure_draws_its_image_and_lists_its_cells_classes():
    field, cells, nuclei = drawn_images()
    table = pd.concat([scores({1: np.eye(NUM_CLASSES)[3], 2: np.eye(NUM_CLASSES)[5]}, "a"),
                       scores({1: np.eye(NUM_CLASSES)[7]}, "b")], ignore_index=True)
    item = report.figure("a", field, cells, nuclei, table, 50, image_truth=[3, 16])
    assert item.image_id == "a" and item.caption == "a: 100x60, 2 cell(s)"
    assert cv2.imdecode(np.frombuffer(item.png, np.uint8), cv2.IMREAD_COLOR).shape == (30, 50, 3)
    assert "3 Nucleoli fibrillar center" in item.table and "5 Nuclear bodies" in item.table
    assert "7 Golgi apparatus" not in item.table  # image b's row
    assert "3 Nucleoli fibrillar center, 16 Cytosol" in item.table  # the image's truth by name
    assert report.figure("b", field, cells, nuclei, table, 50).caption == "b: 100x60, 1 cell(s)"
    assert "truth" not in report.figure("b", field, cells, nuclei, table, 50).table


def test_every_image_once_with_its_table_legend_and_lightbox():
    field, cells, nuclei = drawn_images()
    table = pd.concat([scores({1: np.eye(NUM_CLASSES)[0], 2: np.eye(NUM_CLASSES)[16]}, image_id)
                       for image_id in ("img-1", "img-2", "img-3")], ignore_index=True)
    figures = [report.figure(image_id, field, cells, nuclei, table, 100) for image_id in ("img-1", "img-2", "img-3")]
    page = page_of(evaluation_document(), figures)
    assert page.count("data:image/png;base64,") == 3  # each image embedded once: the lightbox reuses it
    for image_id in ("img-1", "img-2", "img-3"):
        assert f"id='image-{image_id}'" in page and f"<h3>{image_id}: 100x60, 2 cell(s)</h3>" in page
    assert page.count("onclick='enlarge(this)'") == 3 and "id='lightbox'" in page and "function enlarge" in page
    assert page.count("<table class='cells'>") == 3 and "16 Cytosol" in page
    assert "<th>green</th><td>the protein of interest" in page and "endoplasmic reticulum" in page  # legend
    assert not re.search(r"<script[^>]*src|<link|src=.https?:|url\(", page)  # nothing fetched from outside
    assert summary_table(page)["images"] == "7 (3 drawn below)"


def test_package_versions_names_what_is_installed_and_skips_the_rest():
    versions = report.package_versions(("numpy", "surely-not-an-installed-package"))
    assert versions["numpy"] == np.__version__ and "python" in versions and "platform" in versions
    assert "surely-not-an-installed-package" not in versions
    assert "pandas" in report.package_versions()


def test_the_ensemble_summary_names_each_member_its_training_and_its_test_time_views():
    demo = get_profile("demo")
    lines = report_notes.ensemble_summary(demo, external=False)
    assert list(lines) == list(demo.members)
    for spec in demo.role("cell") + demo.role("image"):
        line = lines[spec.name]
        assert f"{spec.epochs * demo.steps_per_epoch} steps of {demo.batch_size}" in line, line
        assert ("mirrored + quarter turns" in line) == (set(spec.test_time_augment) == {"flip", "rotate90"}), line
        assert "external" not in line  # no external root configured: nothing says the model read one
    assert lines[demo.detector.name].startswith(f"detector: {demo.detector.architecture}")
    capped = report_notes.ensemble_summary(demo, external=False, max_steps=3)
    assert all("capped at 3" in capped[spec.name] for spec in demo.role("cell"))
    faithful = report_notes.ensemble_summary(get_profile("hpa2021"), external=True)
    assert "pass(es) over the data in batches of 16 on pseudo labels of the training and external splits" in \
        faithful["cell.b0_ext_pseudo_e10"]
    assert all(line.endswith("test-time views: none") for name, line in faithful.items() if "yolo" not in name)

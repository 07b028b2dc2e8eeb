"""The report's pure parts: top classes, annotated images, the AP chart and the HTML page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pandas as pd

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.submit import report
from stages.submit.evaluate import Evaluation, image_overlap


def scores(rows):
    table = pd.DataFrame({"ID": "x", "cell_id": list(rows)})
    table[list(SCORE_COLUMNS)] = np.array(list(rows.values()), float)
    return table


def test_top_classes_best_first():
    a = np.zeros(NUM_CLASSES)
    a[[3, 7, 12]] = [0.2, 0.9, 0.5]
    b = np.linspace(0, 1, NUM_CLASSES)
    top = report.top_classes(scores({4: a, 9: b}), k=2)
    assert top == {4: [(7, 0.9), (12, 0.5)], 9: [(18, 1.0), (17, b[17])]}


def test_annotate_draws_outlines_and_text_on_a_shrunk_non_square_image():
    field = np.zeros((300, 500, 4), np.uint8)
    cells = np.zeros((300, 500), np.uint16)
    cells[50:250, 40:240] = 1
    cells[60:280, 300:480] = 2
    plain = report.annotate(field, cells, {}, max_side=250)
    assert plain.shape == (150, 250, 3) and plain.dtype == np.uint8
    assert (plain == 255).all(axis=2).sum() > 100  # white outlines on a black field
    labelled = report.annotate(field, cells, {1: [(0, 0.9)], 2: [(13, 0.8), (16, 0.1)]}, max_side=250)
    assert (labelled[..., 2] == 0).any() and ((labelled[..., 0] > 0) & (labelled[..., 2] == 0)).sum() > 20  # yellow text
    png = report.png_bytes(labelled)
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (150, 250, 3)


def evaluation_result(perfect: bool) -> dict:
    truth = np.zeros((20, 20), np.uint16)
    truth[:10, :10] = 1
    truth[10:, 10:] = 2
    evaluation = Evaluation()
    overlap = image_overlap(truth, truth, {1: [0], 2: [5]})
    good = 0.9 if perfect else 0.1
    evaluation.add(overlap, [1, 2, 2], [0, 0, 5], [good, 0.5, 0.7])
    return evaluation.result()


def test_chart_and_page():
    results = {"fused": evaluation_result(True), "cell alone": evaluation_result(False)}
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


# report_html and figure: what the Report task used to assemble inline ---------------------------------


def fusion_settings():
    from types import MappingProxyType

    from stages.zoo import FusionSettings

    return FusionSettings(mode="weighted", weights=MappingProxyType({"cell": 0.5, "image": 0.0, "detector": 0.25}))


def evaluation_document():
    fused, cell = evaluation_result(True), evaluation_result(False)
    return {"split": "test", "truth": "/data/truth<x>", "images": 1, "mAP": fused["mAP"], "fused": fused,
            "sources": {"cell": cell}, "submission_file": fused,
            "fusion": {"mode": "weighted", "weights": {"cell": 0.5}}, "seconds": 1.0}


def settings_block(page: str) -> dict:
    import html

    return json.loads(html.unescape(page.split("<h2>Settings</h2><pre>")[1].split("</pre>")[0]))


def test_report_html_with_an_evaluation():
    page = report.report_html("test", 7, evaluation_document(), [("img1", b"\x89PNG", "cap")], fusion_settings(),
                              {"pipeline": {"shard_size": 4}, "fingerprints": {"fuse": "abc"}}, {"numpy": "2"},
                              "s3://b/submission.csv", "2026-01-01 00:00:00 UTC")
    assert page.startswith("<!DOCTYPE html>") and "HPA single-cell classification: test run" in page
    summary = dict(re.findall(r"<tr><th>([^<]+)</th><td style='text-align:left'>([^<]*)</td></tr>", page))
    assert summary["images"] == "7" and summary["submission"] == "s3://b/submission.csv"
    assert summary["fused mAP"] == "1.0000" and summary["written"] == "2026-01-01 00:00:00 UTC"
    assert summary["fusion"] == "weighted: cell 0.5, detector 0.25"  # zero weights left out
    assert re.search(r"<th>fused</th><td><b>1\.0000</b>", page)
    assert re.search(r"<th>cell alone</th><td><b>0\.7500</b>", page)  # each source named "<source> alone"
    assert settings_block(page) == {"pipeline": {"shard_size": 4}, "fingerprints": {"fuse": "abc"},
                                    "fusion": {"mode": "weighted", "weights": {"cell": 0.5, "image": 0.0,
                                                                               "detector": 0.25}},
                                    "truth": "/data/truth<x>"}


def test_report_html_without_truth():
    page = report.report_html("val", 2, None, [], fusion_settings(), {}, {}, "/w/submission_val.csv", "now")
    assert "No per-cell truth" in page and "<svg" not in page
    assert "<th>fused mAP</th><td style='text-align:left'>no truth</td>" in page
    assert settings_block(page)["truth"] is None


def test_figure_draws_only_its_image_rows():
    field = np.zeros((60, 100, 4), np.uint8)
    cells = np.zeros((60, 100), np.uint16)
    cells[10:50, 10:40] = 1
    cells[10:50, 60:90] = 2
    table = pd.concat([scores({1: np.eye(NUM_CLASSES)[3], 2: np.eye(NUM_CLASSES)[5]}).assign(ID="a"),
                       scores({1: np.eye(NUM_CLASSES)[7]}).assign(ID="b")], ignore_index=True)
    image_id, png, caption = report.figure("a", field, cells, table, 50, "3|5")
    assert image_id == "a" and caption == "a: 100x60, 2 cell(s), image labels 3|5"
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (30, 50, 3)
    assert report.figure("b", field, cells, table, 50, "")[2] == "b: 100x60, 1 cell(s)"  # no labels, no clause


def test_package_versions_names_what_is_installed_and_skips_the_rest():
    versions = report.package_versions(("numpy", "surely-not-an-installed-package"))
    assert versions["numpy"] == np.__version__ and "python" in versions and "platform" in versions
    assert "surely-not-an-installed-package" not in versions
    assert "pandas" in report.package_versions()


def test_evaluation_document_keys_and_text():
    from stages.submit.summary import evaluation_document, evaluation_text

    results = {"fused": evaluation_result(True), "cell": evaluation_result(False)}
    submission_file = {**results["fused"], "mAP": None}
    fusion = type(fusion_settings())(mode="weighted", weights={"cell": 0.5, "image": 0.0})  # image: no weight
    document = evaluation_document("val", "/truth", results, submission_file, fusion, 12.345678)
    assert list(document) == ["split", "truth", "images", "mAP", "fused", "sources", "submission_file", "fusion",
                              "seconds"]
    assert document["images"] == 1 and document["mAP"] == 1.0 and document["fused"] is results["fused"]
    assert list(document["sources"]) == ["cell"]  # only sources with a weight
    assert document["fusion"] == {"mode": "weighted", "weights": {"cell": 0.5, "image": 0.0}}
    assert document["seconds"] == 12.35
    json.dumps(document)
    assert evaluation_text(document).splitlines() == [
        "evaluation of 1 val image(s) against /truth:",
        "  fused (weighted): mAP 1.0000 over 2 class(es)",
        "  cell alone: mAP 0.7500",
        "  submission.csv as written: mAP n/a",
    ]

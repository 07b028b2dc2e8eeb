"""The report's pure parts: top classes, annotated images, the AP chart and the HTML page."""

from __future__ import annotations

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

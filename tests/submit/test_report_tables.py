"""The report's tables and notes: class names everywhere, truth beside predictions, the optional measures,
sources that contributed nothing, the chance level."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from stages.classes import CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS
from stages.submit import report_notes, report_tables


def scores(rows, image_id="x"):
    table = pd.DataFrame({"ID": image_id, "cell_id": list(rows)})
    table[list(SCORE_COLUMNS)] = np.array(list(rows.values()), float)
    return table


def one_hot(**classes):
    row = np.zeros(NUM_CLASSES)
    for klass, value in classes.items():
        row[int(klass.removeprefix("c"))] = value
    return row


def test_top_classes_best_first():
    a = np.zeros(NUM_CLASSES)
    a[[3, 7, 12]] = [0.2, 0.9, 0.5]
    b = np.linspace(0, 1, NUM_CLASSES)
    top = report_tables.top_classes(scores({4: a, 9: b}), k=2)
    assert top == {4: [(7, 0.9), (12, 0.5)], 9: [(18, 1.0), (17, b[17])]}


def test_image_top_takes_each_class_best_cell():
    table = scores({1: one_hot(c0=0.9, c16=0.2), 2: one_hot(c16=0.7, c13=0.4)})
    assert report_tables.image_top(table, 3) == [(0, 0.9), (16, 0.7), (13, 0.4)]
    assert report_tables.image_top(table.iloc[:0], 3) == []


def test_pair_truth_by_iou():
    cells = np.zeros((40, 40), np.uint16)
    truth = np.zeros((40, 40), np.uint16)
    cells[0:20, 0:20] = 1  # the same as truth cell 7
    cells[20:40, 20:40] = 2  # a quarter of truth cell 8: IoU 0.25
    cells[0:10, 30:40] = 3  # over background
    truth[0:20, 0:20] = 7
    truth[10:40, 10:40] = 8
    rows = pd.DataFrame({"ID": "x", "cell_id": [7, 8], "Label": ["0|16", "13"]})
    pairs = report_tables.pair_truth(cells, truth, rows)
    assert pairs == {1: (7, [0, 16])}
    assert report_tables.pair_truth(cells, truth, rows, min_iou=0.2)[2] == (8, [13])


def test_cell_table_names_classes_and_shows_truth_beside_predictions():
    table = scores({3: one_hot(c0=0.9, c16=0.6, c2=0.1), 5: one_hot(c13=0.8, c14=0.3, c1=0.2)})
    top = report_tables.top_classes(table, 3)
    page = report_tables.cell_table(top, report_tables.image_top(table, 3), [0, 13], {3: (11, [0, 2])})
    assert "<th>cell</th><th>#1</th><th>#2</th><th>#3</th><th>truth</th>" in page
    assert "0 Nucleoplasm" in page and "16 Cytosol" in page and "13 Plasma membrane" in page
    assert "0.90" in page and "0.60" in page
    rows = re.findall(r"<tr.*?</tr>", page.split("<tbody>")[1])
    image_row, cell3, cell5 = rows
    assert "image" in image_row and "0 Nucleoplasm, 13 Plasma membrane" in image_row  # the image's truth by name
    assert image_row.count("&#10003;") == 2  # 0 and 13 are among the image's truth labels
    assert "2 Nucleoli" in cell3 and "(truth cell 11)" in cell3 and cell3.count("&#10003;") == 2  # 0 and 2
    assert "no truth cell" in cell5 and "&#10003;" not in cell5


def test_cell_table_without_truth_has_no_truth_column_or_marks():
    table = scores({1: one_hot(c4=0.5)})
    page = report_tables.cell_table(report_tables.top_classes(table, 3), report_tables.image_top(table, 3))
    assert "truth" not in page and "&#10003;" not in page and "4 Nuclear speckles" in page


def result(mean, **extra):
    per_class = {str(k): {"name": CLASS_NAMES[k], "AP": None, "truth_cells": 0, "predictions": 0,
                          "true_positives": 0} for k in range(NUM_CLASSES)}
    per_class["0"] = {"name": CLASS_NAMES[0], "AP": mean, "truth_cells": 10, "predictions": 20, "true_positives": 8}
    per_class["16"] = {"name": CLASS_NAMES[16], "AP": mean, "truth_cells": 5, "predictions": 10, "true_positives": 5}
    return {"mAP": mean, "classes_evaluated": 2, "images": 2, "iou_threshold": 0.6, "per_class": per_class, **extra}


def test_ablation_table_shows_the_optional_measures_only_when_present():
    plain = report_tables.ablation_table({"fused": result(0.8), "cell alone": result(0.7)})
    assert "mAP (challenge)" in plain and "strict mAP" not in plain and "per-cell AUC" not in plain
    assert re.search(r"<th>fused</th><td><b>0\.8000</b></td><td>2</td>", plain)
    full = report_tables.ablation_table(
        {"fused": result(0.8, strict_mAP=0.4, cell_auc=0.66, cell_auc_classes=12),
         "cell alone": result(0.7, strict_mAP=None, cell_auc=0.61, cell_auc_classes=[0, 16])},
        {"cell alone": "a <b>note</b>"})
    assert "<th>mAP (challenge)</th><th>strict mAP</th><th>per-cell AUC</th>" in full
    assert re.search(r"<th>fused</th><td><b>0\.8000</b></td><td>0\.4000</td><td>0\.6600 <small>\(12 classes\)", full)
    assert re.search(r"<th>cell alone</th><td><b>0\.7000</b></td><td>n/a</td><td>0\.6100 <small>\(2 classes\)", full)
    assert "a <b>note</b>" in full
    mixed = report_tables.ablation_table({"fused": result(0.8, cell_auc=0.5), "file": result(0.8)})
    assert re.search(r"<th>file</th><td><b>0\.8000</b></td><td>&ndash;</td>", mixed)  # absent: a dash


def test_per_class_table_names_every_class():
    page = report_tables.per_class_table({"fused": result(0.8), "detector alone": result(0.5)})
    for klass, name in enumerate(CLASS_NAMES):
        assert f"<td>{klass}</td><th class='name'>{name}</th>" in page
    assert "<th>fused</th><th>detector alone</th>" in page
    assert re.search(r"<td>0</td><th class='name'>Nucleoplasm</th><td>10</td><td>0\.800</td><td>0\.500</td>", page)


def test_score_patterns_find_a_constant_source_and_image_level_sources():
    zero = scores({1: np.zeros(NUM_CLASSES), 2: np.zeros(NUM_CLASSES)})
    varied = scores({1: np.zeros(NUM_CLASSES), 2: one_hot(c3=0.2)})
    per_image = pd.concat([scores({1: one_hot(c3=0.2), 2: one_hot(c3=0.2)}, "a"),
                           scores({1: one_hot(c5=0.7), 2: one_hot(c5=0.7), 3: one_hot(c5=0.7)}, "b")])
    single = scores({1: one_hot(c3=0.2)}, "a")  # one cell per image: alike proves nothing
    empty = zero.iloc[:0]
    half = zero.assign(**{column: 0.5 for column in SCORE_COLUMNS})
    found = report_notes.score_patterns([
        ("detector", zero), ("cell", varied), ("detector", empty), ("detector", zero), ("image", per_image),
        ("image", per_image), ("half", zero), ("half", half), ("ghost", empty), ("lonely", single),
    ])
    assert found.constant == {"detector": 0.0}  # half: constant per shard but not one constant
    assert found.per_image == {"image", "half"}  # half: still alike within every image
    assert report_notes.score_patterns([("image", per_image), ("image", varied)]).per_image == frozenset()


def test_chance_level_from_the_per_class_counts():
    # class 0: 8/20 of predictions true, 8/10 truth cells reachable; class 16: 5/10 and 5/5
    assert report_notes.chance_level(result(0.8)) == np.mean([0.4 * 0.8, 0.5 * 1.0])
    assert report_notes.chance_level({"per_class": {"0": {"AP": None, "truth_cells": 0}}}) is None


def test_the_baseline_is_a_constant_source_mAP_where_there_is_one():
    results = {"fused": result(0.8), "cell alone": result(0.7), "detector alone": result(0.69)}
    assert report_notes.baseline(results, {"detector": 0.0}) == report_notes.Baseline(0.69, True, "detector")
    estimate = report_notes.baseline(results, {})
    assert estimate.value == pytest.approx(0.41) and not estimate.exact  # the chance estimate


def test_source_notes_explain_a_silent_detector_an_image_level_source_and_a_source_at_the_baseline():
    results = {"fused": result(0.8), "cell alone": result(0.7), "detector alone": result(0.6941),
               "image alone": result(0.6941), "image_on_cell alone": result(0.69)}
    patterns = report_notes.Patterns({"detector": 0.0}, frozenset({"image"}))
    notes = report_notes.source_notes(results, patterns, report_notes.baseline(results, patterns.constant))
    assert set(notes) == {"detector alone", "image alone", "image_on_cell alone"}
    assert "found no boxes" in notes["detector alone"] and "0.6941" in notes["detector alone"]
    assert "constant score" in notes["detector alone"]
    assert "same scores" in notes["image alone"]
    assert "no better than the constant-score level 0.6941" in notes["image alone"]
    assert notes["image_on_cell alone"] == "No better than the constant-score level 0.6941 on these images."
    estimated = report_notes.source_notes({"fused": result(0.8), "image alone": result(0.415)},
                                          report_notes.Patterns({}, frozenset()), report_notes.Baseline(0.41, False))
    assert estimated == {"image alone": "No better than chance (about 0.410) on these images."}
    image_level = report_notes.source_notes({"image alone": result(0.9)}, patterns, report_notes.Baseline(0.41, False))
    assert image_level["image alone"].endswith("cannot tell the cells of one image apart.")
    other = report_notes.source_notes({"cell alone": result(0.7)}, report_notes.Patterns({"cell": 0.25}, frozenset()),
                                      None)
    assert "every score of this source is 0.25" in other["cell alone"]


def test_reading_notes():
    demo = report_notes.reading_notes("demo", {}, None, evaluated=False)
    assert len(demo) == 1 and "Demo-sized models" in demo[0] and "not biology" in demo[0]
    assert report_notes.reading_notes("hpa2021", {}, None, evaluated=False) == []
    notes = report_notes.reading_notes("hpa2021", {"detector": 0.0}, report_notes.Baseline(0.74, True, "detector"),
                                       evaluated=True)
    assert "detector source contributed nothing" in notes[0] and "found no boxes" in notes[0]
    assert "Constant-score level 0.7400" in notes[1] and "scores are all 0" in notes[1]
    estimated = report_notes.reading_notes(None, {}, report_notes.Baseline(0.6, False), evaluated=True)
    assert "Chance level about 0.600" in estimated[0]


def test_legend_names_every_stain_and_the_composite_mapping():
    legend = report_notes.legend_html()
    for colour, stain in (("red", "microtubules"), ("green", "protein"), ("blue", "nucleus"),
                          ("yellow", "endoplasmic reticulum")):
        assert re.search(rf"<th>{colour}</th><td>[^<]*{stain}", legend), colour
    assert "brighter of microtubules and ER" in legend and "nucleus' outline" in legend

"""The measures beside the challenge mAP (SPEC 2): the strict mAP and the per-cell macro ROC-AUC, on
hand-made cases whose values are known by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.submit import cell_auc, encoding, file_score, summary
from stages.submit import evaluate as ev
from evaluation_tables import labels_with, score_table, truth_table

SHAPE = (32, 40)  # not square
BOXES = [(0, 10, 0, 10), (0, 10, 20, 30), (20, 30, 0, 10), (20, 30, 20, 30)]  # four 10x10 cells
MEASURES = ("mAP", "strict_mAP", "cell_auc", "cell_auc_classes")


def one_image(pred, cells, per_cell):
    truth = labels_with(SHAPE, BOXES[: len(cells)])
    return ev.evaluate(["img"], {"img": pred}, {"img": truth}, truth_table("img", cells), score_table("img", per_cell))


def other_image_claims_class_0():
    """Image a: one class-0 cell scored 0.5 for class 0; image b: one class-5 cell scored 0.99 for class 0."""
    truth = labels_with(SHAPE, BOXES[:1])
    images = {"a": truth, "b": truth}
    cells = pd.concat([truth_table("a", {1: "0"}), truth_table("b", {1: "5"})])
    scores = pd.concat([score_table("a", {1: {0: 0.5}}), score_table("b", {1: {0: 0.99, 5: 0.3}})])
    return images, cells, scores


def test_strict_map_counts_a_class_predicted_in_an_image_without_it():
    images, cells, scores = other_image_claims_class_0()
    result = ev.evaluate(["a", "b"], images, images, cells, scores)
    assert result["mAP"] == 1.0  # the challenge ignores b's class-0 claim
    # strict class 0: b's 0.99 (false positive) then a's 0.5 (true positive): precision 1/2 at recall 1
    # strict class 5: b's 0.3 (true positive) then a's 0.0 (false positive): AP 1
    assert result["per_class"]["0"]["strict_ap"] == pytest.approx(0.5)
    assert result["per_class"]["5"]["strict_ap"] == 1.0
    assert result["strict_mAP"] == pytest.approx(0.75)
    assert result["per_class"]["0"]["predictions"] == 1 and result["per_class"]["0"]["strict_predictions"] == 2
    assert result["per_class"]["1"]["strict_ap"] is None  # no truth: out of the strict mean too
    # per cell: class 0 ranks b's cell (negative, 0.99) above a's (positive, 0.5): AUC 0; class 5: AUC 1
    assert result["per_class"]["0"]["cell_auc"] == 0.0 and result["per_class"]["5"]["cell_auc"] == 1.0
    assert result["cell_auc"] == pytest.approx(0.5) and result["cell_auc_classes"] == 2
    json.dumps(result)


def test_strict_equals_challenge_when_no_class_is_claimed_outside_its_images():
    images, cells, scores = other_image_claims_class_0()
    scores = scores.assign(class_0=np.where(scores["ID"] == "b", 0.0, scores["class_0"]),
                           class_5=np.where(scores["ID"] == "a", 0.0, scores["class_5"]))
    result = ev.evaluate(["a", "b"], images, images, cells, scores)
    # zeros still count in strict, but below every true positive they cost nothing
    assert result["mAP"] == result["strict_mAP"] == 1.0


def test_match_image_strict_returns_absent_classes_as_false_positives():
    truth = labels_with(SHAPE, BOXES[:1])
    overlap = ev.image_overlap(truth, truth, {1: [0]})
    challenge = ev.match_image(overlap, [1, 1], [0, 7], [0.4, 0.9])
    strict = ev.match_image(overlap, [1, 1], [0, 7], [0.4, 0.9], strict=True)
    assert challenge[7][0].size == 0
    assert strict[7][0].tolist() == [0.9] and strict[7][1].tolist() == [False]
    assert strict[0][1].tolist() == challenge[0][1].tolist() == [True]


FOUR_CELLS = {1: "0", 2: "0", 3: "1", 4: "1"}
# class 0: positives 0.9, 0.4 vs negatives 0.5, 0.1 -> 3 of 4 pairs = 0.75
# class 1: positives 0.3, 0.6 vs negatives 0.3, 0.1 -> (0.5 + 1 + 1 + 1) / 4 = 0.875 (a tie counts half)
FOUR_SCORES = {1: {0: 0.9, 1: 0.3}, 2: {0: 0.4, 1: 0.1}, 3: {0: 0.5, 1: 0.3}, 4: {0: 0.1, 1: 0.6}}


def test_cell_auc_by_hand_four_cells_two_classes():
    result = one_image(labels_with(SHAPE, BOXES), FOUR_CELLS, FOUR_SCORES)
    assert result["per_class"]["0"]["cell_auc"] == pytest.approx(0.75)
    assert result["per_class"]["1"]["cell_auc"] == pytest.approx(0.875)
    assert result["cell_auc"] == pytest.approx((0.75 + 0.875) / 2)
    assert result["cell_auc_classes"] == 2  # the other 17 classes have no positive cell
    assert all(result["per_class"][str(k)]["cell_auc"] is None for k in range(2, NUM_CLASSES))
    assert result["truth_cells"] == 4 and result["paired_cells"] == 4


@pytest.mark.parametrize("box, paired", [((20, 30, 20, 25), True),  # IoU 50/100 = 0.5: paired
                                         ((20, 30, 20, 24), False),  # IoU 0.4
                                         ((20, 30, 26, 36), False)])  # IoU 40/160 = 0.25
def test_an_unpaired_truth_cell_scores_zero_for_every_class(box, paired):
    result = one_image(labels_with(SHAPE, [*BOXES[:3], box]), FOUR_CELLS, FOUR_SCORES)
    assert result["paired_cells"] == (4 if paired else 3)
    if paired:
        assert result["cell_auc"] == pytest.approx((0.75 + 0.875) / 2)
    else:
        # cell 4 scores 0: class 0 negatives 0.5, 0 -> still 0.75; class 1 positives 0.3, 0 vs 0.3, 0.1 -> 1.5 / 4
        assert result["per_class"]["0"]["cell_auc"] == pytest.approx(0.75)
        assert result["per_class"]["1"]["cell_auc"] == pytest.approx(0.375)
        assert result["cell_auc"] == pytest.approx((0.75 + 0.375) / 2)


def test_a_source_without_rows_for_an_image_scores_its_cells_zero():
    truth = labels_with(SHAPE, BOXES)
    images = {"a": truth, "b": truth}
    cells = pd.concat([truth_table("a", FOUR_CELLS), truth_table("b", {1: "1", 2: "0", 3: "0", 4: "0"})])
    only_a = score_table("a", FOUR_SCORES)
    result = ev.evaluate(["a", "b"], images, images, cells, only_a)
    # class 1: positives a3 0.3, a4 0.6, b1 0 vs negatives a1 0.3, a2 0.1, b2-b4 0 (x3)
    wins = (0.5 + 1 + 1 + 1 + 1) + (1 + 1 + 1 + 1 + 1) + (0 + 0 + 0.5 + 0.5 + 0.5)
    assert result["per_class"]["1"]["cell_auc"] == pytest.approx(wins / 15)
    assert result["paired_cells"] == 4 and result["truth_cells"] == 8


def test_a_class_with_only_positive_cells_is_left_out_of_the_mean():
    cells = {1: "0", 2: "0|1", 3: "0", 4: "0|1"}
    # class 1: positives 0.8, 0.7 vs negatives 0.6, 0.75 -> 3 of 4 pairs; class 0 has no negative cell
    scores = {1: {0: 0.1, 1: 0.6}, 2: {0: 0.9, 1: 0.8}, 3: {0: 0.2, 1: 0.75}, 4: {0: 0.3, 1: 0.7}}
    result = one_image(labels_with(SHAPE, BOXES), cells, scores)
    assert result["classes_evaluated"] == 2 and result["cell_auc_classes"] == 1
    assert result["per_class"]["0"]["cell_auc"] is None and result["per_class"]["0"]["AP"] is not None
    assert result["cell_auc"] == result["per_class"]["1"]["cell_auc"] == pytest.approx(0.75)


def test_no_class_with_both_kinds_gives_no_auc():
    result = one_image(labels_with(SHAPE, BOXES[:2]), {1: "3", 2: "3"}, {1: {3: 0.9}, 2: {3: 0.1}})
    assert result["cell_auc"] is None and result["cell_auc_classes"] == 0 and result["mAP"] == 1.0
    empty = ev.Evaluation().result()
    assert empty["mAP"] is empty["strict_mAP"] is empty["cell_auc"] is None and empty["truth_cells"] == 0


def test_mask_confidences_and_pairing_by_best_iou():
    keys, table = cell_auc.mask_confidences([4, 2, 4, 4], [0, 1, 0, 3], [0.2, 0.5, 0.7, 0.1])
    assert keys.tolist() == [2, 4]
    assert table[0, 1] == 0.5 and table[1, 0] == 0.7 and table[1, 3] == 0.1  # a class given twice: its highest
    assert table.sum() == pytest.approx(1.3)  # every class not given scores 0
    iou = np.array([[0, 0, 0], [0.9, 0.0, 0.3], [0.6, 0.55, 0.0], [0.0, 0.45, 0.2]])  # keys 0..3 x 3 truth cells
    scores, paired = cell_auc.paired_confidences(iou, [1, 2, 3, 9], [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert paired.tolist() == [True, True, False]  # key 9 lies beyond the rows: IoU 0
    assert scores[:, 0].tolist() == [0.1, 0.2, 0.0]


def test_every_source_and_the_written_file_report_the_three_measures():
    rng = np.random.default_rng(3)
    images, truths, tables, rows = {}, [], {"fused": [], "cell": [], "image": []}, []
    for index in range(3):
        image_id, height, width = f"im{index}", 40 + 8 * index, 56
        boxes = [(r, r + 10, c, c + 10) for r in (0, 20) for c in (0, 20, 40) if r + 10 <= height]
        truth = labels_with((height, width), boxes)
        ids = [int(v) for v in np.unique(truth) if v]
        truths.append(pd.DataFrame({"ID": image_id, "cell_id": ids,
                                    "Label": ["|".join(map(str, rng.choice(4, rng.integers(1, 3), replace=False)))
                                              for _ in ids]}))
        for name in tables:
            table = pd.DataFrame({"ID": image_id, "cell_id": ids})
            table[list(SCORE_COLUMNS)] = rng.uniform(0, 1, (len(ids), NUM_CLASSES))
            tables[name].append(table)
        images[image_id] = truth
        rows.append({"ID": image_id, "ImageWidth": width, "ImageHeight": height})
    truth_cells, tables = pd.concat(truths), {name: pd.concat(parts) for name, parts in tables.items()}
    results = ev.evaluate_sources(((i, images[i], images[i]) for i in images), tables, truth_cells)
    assert list(results) == ["fused", "cell", "image"]
    for result in results.values():
        assert all(key in result for key in MEASURES)
        assert 0 < result["strict_mAP"] <= result["mAP"] <= 1 and 0 <= result["cell_auc"] <= 1
        assert result["cell_auc_classes"] == 4 and result["paired_cells"] == result["truth_cells"]
        assert all("strict_ap" in entry and "cell_auc" in entry for entry in result["per_class"].values())
    submission = encoding.build_submission(
        pd.DataFrame(rows), {i: encoding.encode_cells(images[i]) for i in images}, tables["fused"])
    written = file_score.evaluate_submission(submission, images, truth_cells)  # masks as RLEs
    for key in MEASURES:
        assert written[key] == pytest.approx(results["fused"][key], abs=1e-9), key
    assert written["paired_cells"] == results["fused"]["paired_cells"]


def test_evaluation_document_explains_and_text_prints_the_three_measures():
    images, cells, scores = other_image_claims_class_0()
    results = ev.evaluate(["a", "b"], images, images, cells, {"fused": scores, "cell": scores.iloc[:1]})
    from stages.zoo import FusionSettings

    fusion = FusionSettings(mode="weighted", weights={"cell": 1.0})
    document = summary.evaluation_document("val", "/truth", results, results["fused"], fusion, 1.0)
    assert list(document) == ["split", "truth", "images", "mAP", "fused", "sources", "submission_file", "fusion",
                              "seconds", "measures"]  # "measures" the one top-level addition
    assert set(document["measures"]) == {"mAP", "strict_mAP", "cell_auc"}
    assert "0.6" in document["measures"]["mAP"] and "0.5" in document["measures"]["cell_auc"]
    json.dumps(document)
    lines = summary.evaluation_text(document).splitlines()
    assert lines[1] == ("  fused (weighted): mAP 1.0000 over 2 class(es), strict mAP 0.7500, "
                        "cell AUC 0.5000 over 2 class(es)")
    # "cell" scored image a only: class 0 AUC 1 (a 0.5 vs b 0), class 5 AUC 0.5 (both 0)
    assert lines[2] == "  cell alone: mAP 0.5000 over 2 class(es), strict mAP 0.5000, cell AUC 0.7500 over 2 class(es)"
    gated = summary.evaluation_document("val", "/truth", results, results["fused"],
                                        FusionSettings(mode="weighted", weights={"cell": 1.0}, gate="cells"), 1.0)
    assert summary.evaluation_text(gated).splitlines()[1].startswith("  fused (weighted, gate cells): mAP 1.0000")
    assert lines[3].startswith("  submission.csv as written: mAP 1.0000 over 2 class(es), strict mAP 0.7500")
    old = {**document, "fused": {"mAP": 0.5, "classes_evaluated": 3}}  # a document written before the measures
    assert "strict mAP n/a, cell AUC n/a" in summary.evaluation_text(old)

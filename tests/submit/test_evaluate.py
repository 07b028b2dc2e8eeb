"""The Open Images style mAP on hand-made cases whose AP is known by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.submit import encoding
from stages.submit import evaluate as ev
from stages.submit import file_score
from evaluation_tables import labels_with, score_table, truth_table


BOXES = [(0, 10, 0, 10), (0, 10, 20, 30), (20, 30, 0, 10)]  # three 10x10 cells in a 32x40 image
SHAPE = (32, 40)  # not square


def run(pred, truth, truth_cells, scores, image_id="img"):
    return ev.evaluate([image_id], {image_id: pred}, {image_id: truth}, truth_cells, scores)


def ap(result, klass):
    return result["per_class"][str(klass)]["AP"]


def test_average_precision_textbook_sequence():
    # TP FP TP FP FP TP with 4 truth cells: envelope 1 @ r=.25, 2/3 @ r=.5, 1/2 @ r=.75; recall 1 never reached
    value = ev.average_precision([6, 5, 4, 3, 2, 1], [1, 0, 1, 0, 0, 1], 4)
    assert value == pytest.approx(0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 0.5)
    assert ev.average_precision([], [], 3) == 0.0
    assert np.isnan(ev.average_precision([0.5], [False], 0))


def test_iou_matrix_equals_per_pair_masks():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, (23, 17)).astype(np.uint16)
    truth = rng.integers(0, 7, (23, 17)).astype(np.uint16)
    iou = ev.iou_matrix(pred, truth)
    assert iou.shape == (5, 7)
    for p in range(1, 5):
        for t in range(1, 7):
            a, b = pred == p, truth == t
            assert iou[p, t] == pytest.approx((a & b).sum() / (a | b).sum())
    assert not iou[0].any() and not iou[:, 0].any()
    with pytest.raises(ValueError, match="shape"):
        ev.iou_matrix(pred, truth.T)


def test_perfect_prediction_scores_one_and_only_truth_classes_count():
    truth = labels_with(SHAPE, BOXES)
    cells = truth_table("img", {1: "0", 2: "0|5", 3: "5"})
    scores = score_table("img", {1: {0: 0.9, 5: 0.1}, 2: {0: 0.8, 5: 0.7}, 3: {0: 0.2, 5: 0.9, 7: 0.99}})
    result = run(truth.copy(), truth, cells, scores)
    assert result["mAP"] == 1.0
    assert result["classes_evaluated"] == 2
    assert ap(result, 0) == ap(result, 5) == 1.0
    assert all(ap(result, klass) is None for klass in range(NUM_CLASSES) if klass not in (0, 5))
    assert result["per_class"]["0"]["truth_cells"] == 2 and result["per_class"]["0"]["true_positives"] == 2
    json.dumps(result)  # JSON-able as it is


def test_all_wrong_masks_score_zero():
    truth = labels_with(SHAPE, BOXES)
    pred = labels_with(SHAPE, [(12, 18, 12, 18), (22, 30, 22, 30), (0, 10, 32, 40)])  # nowhere near a truth cell
    cells = truth_table("img", {1: "0", 2: "0", 3: "0"})
    scores = score_table("img", {1: {0: 0.9}, 2: {0: 0.8}, 3: {0: 0.7}})
    result = run(pred, truth, cells, scores)
    assert result["mAP"] == 0.0 and result["per_class"]["0"]["predictions"] == 3


def test_right_masks_ranked_wrong_score_by_the_envelope():
    truth = labels_with(SHAPE, BOXES)
    cells = truth_table("img", {1: "0", 2: "0", 3: "5"})
    # class 0: the class-5 cell ranked first (FP), then cells 1 and 2 (TP, TP): precision 0, 1/2, 2/3
    scores = score_table("img", {1: {0: 0.5}, 2: {0: 0.4}, 3: {0: 0.9, 5: 0.5}})
    result = run(truth.copy(), truth, cells, scores)
    assert ap(result, 0) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    assert ap(result, 5) == 1.0
    assert result["mAP"] == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.parametrize("first, expected", [("right", 0.5), ("wrong", 0.25)])
def test_half_right(first, expected):
    truth = labels_with(SHAPE, BOXES[:2])
    pred = labels_with(SHAPE, [BOXES[0], (20, 30, 20, 30)])  # cell 1 right, cell 2 misses truth cell 2
    cells = truth_table("img", {1: "0", 2: "0"})
    confidences = {1: 0.9, 2: 0.8} if first == "right" else {1: 0.8, 2: 0.9}
    scores = score_table("img", {cell: {0: value} for cell, value in confidences.items()})
    assert ap(run(pred, truth, cells, scores), 0) == pytest.approx(expected)


def test_duplicate_prediction_of_a_matched_cell_is_a_false_positive():
    truth = labels_with(SHAPE, BOXES[:2])
    overlap = ev.image_overlap(truth, truth, {1: [0], 2: [0]})
    evaluation = ev.Evaluation()
    # cell 1 twice (0.9, 0.8), then cell 2 (0.7): TP FP TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    evaluation.add(overlap, keys=[1, 1, 2], classes=[0, 0, 0], confidences=[0.9, 0.8, 0.7])
    result = evaluation.result()
    assert ap(result, 0) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert result["per_class"]["0"]["true_positives"] == 2


def test_duplicate_masks_in_a_submission_are_false_positives():
    truth = labels_with(SHAPE, BOXES[:2])
    masks = encoding.encode_cells(truth)
    text = f"0 0.9 {masks[1]} 0 0.8 {masks[1]} 0 0.7 {masks[2]}"
    submission = pd.DataFrame({"ID": ["img"], "ImageWidth": [40], "ImageHeight": [32], "PredictionString": [text]})
    result = file_score.evaluate_submission(submission, {"img": truth}, truth_table("img", {1: "0", 2: "0"}))
    assert ap(result, 0) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


@pytest.mark.parametrize(
    "pred_box, is_tp",
    [
        ((0, 6, 0, 10), True),  # 60 of 100 pixels: IoU exactly 0.6
        ((0, 10, 0, 6), True),
        ((1, 7, 0, 10), True),
        ((0, 10, 0, 5), False),  # IoU 0.5
        ((0, 10, 0, 16), True),  # 100 / 160 = 0.625
        ((0, 10, 0, 17), False),  # 100 / 170 = 0.588
    ],
)
def test_iou_threshold_boundaries(pred_box, is_tp):
    truth = labels_with(SHAPE, [BOXES[0]])
    pred = labels_with(SHAPE, [pred_box])
    result = run(pred, truth, truth_table("img", {1: "3"}), score_table("img", {1: {3: 0.5}}))
    assert ap(result, 3) == (1.0 if is_tp else 0.0)


@pytest.mark.parametrize(
    "inside, outside, is_tp",
    [
        (60, 0, True),  # 60 / 100 = 0.6: at the threshold counts
        (59, 0, False),  # 0.59
        (100, 66, True),  # 100 / 166 = 0.6024
        (100, 67, False),  # 100 / 167 = 0.5988
    ],
)
def test_iou_one_pixel_either_side_of_the_threshold(inside, outside, is_tp):
    truth = np.zeros((20, 20), np.uint16)
    truth[:10, :10] = 1  # 100 pixels
    pred = np.zeros_like(truth)
    pred[:10, :10].flat[:inside] = 1
    pred[10:, :].flat[:outside] = 1
    result = run(pred, truth, truth_table("img", {1: "3"}), score_table("img", {1: {3: 0.5}}))
    assert ap(result, 3) == (1.0 if is_tp else 0.0)


def test_prediction_of_a_class_the_image_lacks_is_ignored():
    truth = labels_with(SHAPE, BOXES[:1])
    images = {"a": truth, "b": truth}
    cells = pd.concat([truth_table("a", {1: "0"}), truth_table("b", {1: "5"})])
    # image b's cell claims class 0 above image a's true cell: b has no class 0, so it counts for nothing
    scores = pd.concat([score_table("a", {1: {0: 0.5}}), score_table("b", {1: {0: 0.99, 5: 0.3}})])
    result = ev.evaluate(["a", "b"], images, images, cells, scores)
    assert ap(result, 0) == 1.0 and result["per_class"]["0"]["predictions"] == 1
    assert ap(result, 5) == 1.0 and result["mAP"] == 1.0


def test_false_positive_in_an_image_with_the_class_does_count():
    truth = labels_with(SHAPE, BOXES[:2])
    images = {"a": truth, "b": truth}
    cells = pd.concat([truth_table("a", {1: "0", 2: "5"}), truth_table("b", {1: "0", 2: "5"})])
    # in b the class-5 cell claims class 0 first: b does have class 0 (cell 1), so it is a false positive
    scores = pd.concat([score_table("a", {1: {0: 0.5}}), score_table("b", {1: {0: 0.4}, 2: {0: 0.99}})])
    result = ev.evaluate(["a", "b"], images, images, cells, scores)
    assert ap(result, 0) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)


def test_missing_predictions_and_ablation_mapping():
    truth = labels_with(SHAPE, BOXES[:2])
    images = {"a": truth, "b": truth}
    cells = pd.concat([truth_table("a", {1: "0", 2: "0"}), truth_table("b", {1: "0", 2: "0"})])
    only_a = score_table("a", {1: {0: 0.9}, 2: {0: 0.8}})
    both = pd.concat([only_a, score_table("b", {1: {0: 0.7}, 2: {0: 0.6}})])
    results = ev.evaluate(["a", "b"], images, images, cells, {"half": only_a, "full": both})
    assert ap(results["half"], 0) == pytest.approx(0.5)  # image b's two cells are missed
    assert ap(results["full"], 0) == 1.0


def test_both_ways_in_agree_on_a_random_case():
    rng = np.random.default_rng(7)
    images, truth_images, tables, truths, rows = {}, {}, [], [], []
    for index in range(4):
        image_id = f"im{index}"
        height, width = 48 + 8 * index, 64
        truth = np.zeros((height, width), np.uint16)
        pred = np.zeros((height, width), np.uint16)
        for cell in range(1, 6):
            r, c = rng.integers(0, height - 12), rng.integers(0, width - 12)
            truth[r : r + 10, c : c + 10] = cell
            dr, dc = rng.integers(-3, 4, 2)
            pred[max(r + dr, 0) : r + dr + 10, max(c + dc, 0) : c + dc + 10] = cell
        present = [int(v) for v in np.unique(truth) if v]
        truths.append(pd.DataFrame({"ID": image_id, "cell_id": present,
                                    "Label": ["|".join(map(str, rng.choice(4, rng.integers(1, 3), replace=False)))
                                              for _ in present]}))
        pred_ids = [int(v) for v in np.unique(pred) if v]
        table = pd.DataFrame({"ID": image_id, "cell_id": pred_ids})
        table[list(SCORE_COLUMNS)] = rng.uniform(0, 1, (len(pred_ids), NUM_CLASSES))
        tables.append(table)
        images[image_id], truth_images[image_id] = pred, truth
        rows.append({"ID": image_id, "ImageWidth": width, "ImageHeight": height})
    truth_cells, scores = pd.concat(truths), pd.concat(tables)
    ids = list(images)
    from_labels = ev.evaluate(ids, images, truth_images, truth_cells, scores)
    submission = encoding.build_submission(
        pd.DataFrame(rows), {i: encoding.encode_cells(images[i]) for i in ids}, scores
    )
    from_submission = file_score.evaluate_submission(submission, truth_images, truth_cells)
    assert from_labels["classes_evaluated"] >= 3
    assert 0 < from_labels["mAP"] < 1
    # the submission rounds confidences to 6 digits: same ranking, same APs
    assert from_submission["mAP"] == pytest.approx(from_labels["mAP"], abs=1e-9)
    for klass in map(str, range(NUM_CLASSES)):
        assert from_submission["per_class"][klass]["AP"] == pytest.approx(from_labels["per_class"][klass]["AP"])


# evaluate_sources: the one entry point the task and evaluate() share ------------------------------------


def two_images():
    truth = labels_with(SHAPE, BOXES[:2])
    cells = pd.concat([truth_table("a", {1: "0", 2: "5"}), truth_table("b", {1: "0", 2: "0"})])
    fused = pd.concat([score_table("a", {1: {0: 0.9}, 2: {5: 0.8}}), score_table("b", {1: {0: 0.7}, 2: {0: 0.6}})])
    cell = score_table("a", {1: {0: 0.2}, 2: {0: 0.9, 5: 0.1}})  # predicts nothing for image b
    return truth, cells, {"fused": fused, "cell": cell}


def test_evaluate_sources_reads_images_lazily_and_agrees_with_evaluate():
    truth, cells, tables = two_images()
    handed_out = []

    def images():
        for image_id in ("a", "b"):
            handed_out.append(image_id)
            yield image_id, truth.copy(), truth
    results = ev.evaluate_sources(images(), tables, cells)
    assert handed_out == ["a", "b"]
    assert list(results) == ["fused", "cell"]  # the tables' order: the ablation's rows follow it
    assert results["fused"]["mAP"] == 1.0 and results["fused"]["images"] == 2
    # class 0 in "cell": a's cell 2 (class 5) first, a false positive, then cell 1; b's two cells are missed
    assert results["cell"]["per_class"]["0"]["true_positives"] == 1
    assert ap(results["cell"], 0) == pytest.approx(1 / 3 * 1 / 2) and ap(results["cell"], 5) == 1.0
    assert results == ev.evaluate(["a", "b"], {"a": truth, "b": truth}, {"a": truth, "b": truth}, cells, tables)


def test_an_image_of_the_run_without_truth_rows_is_an_error_naming_it():
    truth, cells, tables = two_images()
    only_a = cells[cells["ID"] == "a"]
    with pytest.raises(ev.MissingTruth, match="image b: no truth cells"):
        ev.evaluate_sources(iter([("a", truth, truth), ("b", truth, truth)]), tables, only_a)
    with pytest.raises(ValueError, match="image b: no truth cells"):  # evaluate() follows the same policy
        ev.evaluate(["a", "b"], {"a": truth, "b": truth}, {"a": truth, "b": truth}, only_a, tables["fused"])
    submission = encoding.build_submission(
        pd.DataFrame({"ID": ["a", "b"], "ImageWidth": [40, 40], "ImageHeight": [32, 32]}),
        {"a": encoding.encode_cells(truth), "b": encoding.encode_cells(truth)}, tables["fused"])
    with pytest.raises(ev.MissingTruth, match="image b"):  # and so does the submission file's evaluation
        file_score.evaluate_submission(submission, {"a": truth, "b": truth}, only_a)


def test_truth_rows_of_images_outside_the_run_are_not_counted():
    truth, cells, tables = two_images()
    result = ev.evaluate_sources([("a", truth, truth)], {"fused": tables["fused"]}, cells)["fused"]
    assert result["images"] == 1 and result["per_class"]["0"]["truth_cells"] == 1  # b's two class-0 cells ignored


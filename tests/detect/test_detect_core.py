"""Pure detect-stage logic: detector images, YOLO label lines, the split, the recipe, box frames."""

from __future__ import annotations

import numpy as np
import pytest

from stages.classes import CLASS_NAMES, NUM_CLASSES
from stages.detect import contract, core


def test_detector_shape_keeps_the_aspect_ratio_on_non_square_images():
    assert core.detector_shape(100, 300, 128) == (43, 128)
    assert core.detector_shape(300, 100, 128) == (128, 43)
    assert core.detector_shape(2048, 2048, 512) == (512, 512)
    assert core.detector_shape(1728, 2048, 512) == (432, 512)
    with pytest.raises(ValueError):
        core.detector_shape(0, 10, 128)


def test_detector_image_is_green_three_times_without_transposition():
    green = np.zeros((100, 300), dtype=np.uint8)
    green[:20, 240:] = 255  # a bright block at the top right
    image = core.detector_image(green, 128)
    assert image.shape == (43, 128, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    assert image[2, 120, 0] == 255 and image[40, 5, 0] == 0
    small = core.detector_image(np.full((10, 30), 7, dtype=np.uint8), 128)  # enlarging works too
    assert small.shape == (43, 128, 3) and np.all(small == 7)
    with pytest.raises(ValueError):
        core.detector_image(np.zeros((4, 4, 3), dtype=np.uint8), 128)


def test_one_label_line_per_cell_box_and_image_label_normalised_per_axis():
    # A 100-row x 400-column image; bbox rows 10..30, columns 100..200 (ends exclusive).
    lines = core.label_lines(np.array([[10, 100, 30, 200], [50, 0, 100, 40]]), [16, 0], 100, 400)
    assert len(lines) == 4
    parsed = core.parse_label_lines("\n".join(lines))
    np.testing.assert_allclose(parsed[0], [0, 150 / 400, 20 / 100, 100 / 400, 20 / 100], atol=1e-6)
    np.testing.assert_allclose(parsed[1], [16, 150 / 400, 20 / 100, 100 / 400, 20 / 100], atol=1e-6)
    np.testing.assert_allclose(parsed[2], [0, 20 / 400, 75 / 100, 40 / 400, 50 / 100], atol=1e-6)
    assert core.label_lines(np.array([[10, 100, 30, 200]]), [], 100, 400) == []
    assert core.label_lines(np.zeros((0, 4)), [3], 100, 400) == []
    with pytest.raises(ValueError):
        core.label_lines(np.array([[10, 100, 10, 200]]), [3], 100, 400)
    with pytest.raises(ValueError):
        core.label_lines(np.array([[10, 100, 30, 200]]), [NUM_CLASSES], 100, 400)


def test_label_boxes_survive_the_resize_to_the_detector_frame():
    """Normalised labels put a cell's box at the same place of the resized image as of the original."""
    height, width, size = 90, 270, 96
    bbox = np.array([[30, 180, 60, 240]])
    cls, cx, cy, w, h = core.parse_label_lines("\n".join(core.label_lines(bbox, [4], height, width)))[0]
    rows, cols = core.detector_shape(height, width, size)
    in_detector = np.array([[(cx - w / 2) * cols, (cy - h / 2) * rows, (cx + w / 2) * cols, (cy + h / 2) * rows]])
    back = core.boxes_to_original(in_detector, (rows, cols), (height, width))
    np.testing.assert_allclose(back, [[180, 30, 240, 60]], atol=1e-3)


def test_assign_subsets_is_deterministic_and_never_leaves_a_side_empty():
    ids = [f"img{i}" for i in range(20)]
    first = core.assign_subsets(ids, 0.15, seed=0)
    assert first == core.assign_subsets(list(reversed(ids)), 0.15, seed=0)
    assert sum(value == "val" for value in first.values()) == 3
    assert core.assign_subsets(ids, 0.15, seed=1) != first
    assert sorted(core.assign_subsets(["a", "b"], 0.01).values()) == ["train", "val"]
    assert sorted(core.assign_subsets(["a", "b", "c"], 0.9).values()) == ["train", "val", "val"]
    assert core.assign_subsets(["only"], 0.5) == {"only": "train"}
    with pytest.raises(ValueError):
        core.assign_subsets(ids, 1.0)


def test_dataset_yaml_names_every_class_and_falls_back_to_training_for_validation():
    description = core.dataset_yaml(True)
    assert description["nc"] == NUM_CLASSES == len(description["names"])
    assert description["names"][18] == CLASS_NAMES[18]
    assert (description["train"], description["val"]) == (contract.SUBSET_FILES["train"], contract.SUBSET_FILES["val"])
    assert "path" not in description  # Ultralytics then takes the YAML's own folder as the root
    assert core.dataset_yaml(False)["val"] == contract.SUBSET_FILES["train"]


def test_training_recipe_is_offline_and_two_phase():
    phases = core.training_phases(128, 2, 1, 8, "cpu", 0)
    assert [phase.name for phase in phases] == ["basic", "finetune"]
    for phase in phases:
        assert phase.overrides["amp"] is False and phase.overrides["plots"] is False
        assert phase.overrides["workers"] == 0 and phase.overrides["device"] == "cpu"
        assert phase.overrides["imgsz"] == 128
    assert phases[0].overrides["epochs"] == 2 and phases[1].overrides["epochs"] == 1
    assert phases[1].overrides["lr0"] < 0.01 and phases[1].overrides["optimizer"] == "SGD"
    assert [phase.name for phase in core.training_phases(128, 3, 0, 8, "0", 4)] == ["basic"]
    with pytest.raises(ValueError):
        core.training_phases(128, 0, 1, 8, "cpu", 0)


def test_boxes_to_original_scales_x_by_columns_and_y_by_rows():
    # detector frame 43 x 128 of a 100 x 300 original
    in_detector = np.array([[0, 0, 128, 43], [64, 10, 96, 20], [-5, -5, 200, 200]])
    boxes = core.boxes_to_original(in_detector, (43, 128), (100, 300))
    np.testing.assert_allclose(boxes[0], [0, 0, 300, 100])
    np.testing.assert_allclose(boxes[1], [150, 10 * 100 / 43, 225, 20 * 100 / 43])
    np.testing.assert_allclose(boxes[2], [0, 0, 300, 100])  # clipped to the image


def test_boxes_table_follows_the_contract():
    table = core.boxes_table("x", np.array([[1, 2, 3, 4]]), np.array([5.0]), np.array([0.25]))
    assert tuple(table.columns) == contract.BOX_COLUMNS
    assert table["class"].dtype == np.int64 and table.loc[0, "confidence"] == 0.25
    assert len(core.concat_boxes([core.empty_boxes(), table, core.empty_boxes()])) == 1
    assert tuple(core.concat_boxes([]).columns) == contract.BOX_COLUMNS
    with pytest.raises(ValueError):
        core.boxes_table("x", np.zeros((2, 4)), np.zeros(1), np.zeros(2))


def test_box_iou_and_recall():
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]])
    predicted = np.array([[0, 0, 10, 12], [21, 21, 31, 31], [100, 100, 110, 110]])
    iou = core.box_iou(truth, predicted)
    assert iou[0, 0] == pytest.approx(100 / 120) and iou[1, 1] == pytest.approx(81 / 119) and iou[2].max() == 0
    assert core.box_recall(truth, predicted, 0.5) == (2, 3)
    assert core.box_recall(truth, np.zeros((0, 4))) == (0, 3)
    assert core.box_recall(np.zeros((0, 4)), predicted) == (0, 0)

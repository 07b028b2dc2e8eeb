"""Classic segmentation quality on synthetic fields with known cells, and its edge cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages import storage
from stages.dev.synth.core import write_dataset
from stages.fields import read_field
from stages.manifest.core import channel_files
from stages.segment.core import SegmentSettings, segment_classic
from stages.segment.labels import best_iou

SETTINGS = SegmentSettings()


def check_labels(cells: np.ndarray, nuclei: np.ndarray, shape: tuple[int, int]) -> int:
    """The label contract every backend keeps; returns the cell count."""
    assert cells.shape == nuclei.shape == shape
    assert cells.dtype == nuclei.dtype == np.uint16
    count = int(cells.max())
    assert set(np.unique(cells)) == set(range(count + 1)), "cell ids are 1..N without gaps"
    assert np.array_equal(nuclei[nuclei > 0], cells[nuclei > 0]), "nucleus k lies inside cell k"
    assert set(np.unique(nuclei)) == set(range(count + 1)), "every cell has its nucleus"
    return count


def synthetic(folder, count: int, height: int, width: int, seed: int):
    """(field, truth cells) pairs written by the synthetic generator and read back as the pipeline reads them."""
    write_dataset(str(folder), 0, count, height, width, seed)
    images = channel_files(storage.listdir(str(folder / "test")))
    for image_id in sorted(images):
        truth = cv2.imread(str(folder / "truth" / f"{image_id}_cells.png"), cv2.IMREAD_UNCHANGED)
        yield read_field(str(folder / "test"), image_id, images[image_id]), truth


def test_synthetic_cells_match_the_truth(tmp_path):
    """16 fields of 512 px: measured mean best IoU 0.86 and 100% of truth cells matched at IoU >= 0.6."""
    scores = []
    for field, truth in synthetic(tmp_path, 16, 512, 512, seed=1):
        cells, nuclei = segment_classic(field, SETTINGS)
        check_labels(cells, nuclei, truth.shape)
        scores.append(best_iou(truth, cells))
    scores = np.concatenate(scores)
    assert scores.mean() >= 0.80, f"mean best IoU {scores.mean():.3f}"
    assert (scores >= 0.6).mean() >= 0.90, f"matched at IoU >= 0.6: {(scores >= 0.6).mean():.3f}"


@pytest.mark.parametrize("height, width", [(300, 640), (640, 300)])
def test_non_square_fields_keep_their_orientation(tmp_path, height, width):
    scores = []
    for field, truth in synthetic(tmp_path, 2, height, width, seed=4):
        cells, nuclei = segment_classic(field, SETTINGS)
        check_labels(cells, nuclei, (height, width))
        scores.append(best_iou(truth, cells))
    assert np.concatenate(scores).mean() >= 0.75  # a transposed or shifted label image would score near 0


@pytest.mark.parametrize(
    "field",
    [
        np.zeros((300, 500, 4), np.uint8),
        np.full((64, 80, 4), 200, np.uint8),
        np.random.default_rng(0).integers(0, 10, (256, 256, 4)).astype(np.uint8),
        np.zeros((5, 7, 4), np.uint8),
    ],
    ids=["black", "flat", "dark-noise", "tiny"],
)
def test_fields_without_cells_give_empty_labels(field):
    cells, nuclei = segment_classic(field, SETTINGS)
    assert check_labels(cells, nuclei, field.shape[:2]) == 0


def test_scale_follows_the_image_not_the_pixel_count(tmp_path):
    """The same field at 2x magnification (nuclei twice as wide) gives the same cells, scaled."""
    field, truth = next(synthetic(tmp_path, 1, 320, 320, seed=6))
    big = cv2.resize(field, (640, 640), interpolation=cv2.INTER_LINEAR)
    big_truth = cv2.resize(truth, (640, 640), interpolation=cv2.INTER_NEAREST_EXACT)
    small_cells, _ = segment_classic(field, SETTINGS)
    big_cells, _ = segment_classic(big, SETTINGS)
    assert big_cells.max() == small_cells.max()
    assert best_iou(big_truth, big_cells).mean() >= 0.75

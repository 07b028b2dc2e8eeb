"""The synthetic HPA-like generator: layout on disk, determinism, truth consistency, one visible pattern per class."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from stages import storage
from stages.classes import CHANNELS, NEGATIVE, NUM_CLASSES, parse_labels
from stages.dev.synth import generate_image, write_dataset

REPO = Path(__file__).resolve().parents[2]
NUCLEAR = (0, 2, 3, 4, 5)
CYTOPLASMIC = (6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17)


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"unreadable PNG {path}"
    return image


def tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(str(root), 4, 3, 144, 176, seed=5)
    return root


def test_kaggle_layout_and_tables(dataset):
    train = pd.read_csv(dataset / "train.csv")
    submission = pd.read_csv(dataset / "sample_submission.csv", keep_default_na=False)
    cells = pd.read_csv(dataset / "truth" / "cells.csv")
    images = pd.read_csv(dataset / "truth" / "images.csv")
    assert list(train.columns) == ["ID", "Label"]
    assert list(submission.columns) == ["ID", "ImageWidth", "ImageHeight", "PredictionString"]
    assert list(cells.columns) == ["ID", "cell_id", "Label"]
    assert list(images.columns) == ["ID", "split", "Label", "ImageWidth", "ImageHeight"]
    assert len(train) == 4 and len(submission) == 3
    assert set(submission.PredictionString) == {""}
    assert set(submission.ImageWidth) == {176} and set(submission.ImageHeight) == {144}
    assert set(images.ID) == set(train.ID) | set(submission.ID)
    assert not set(train.ID) & set(submission.ID)
    assert (dataset / storage.SUCCESS_MARKER).exists()
    for split, ids in (("train", train.ID), ("test", submission.ID)):
        for image_id in ids:
            # Real IDs hold underscores; readers split the file name at the last one.
            assert "_" in image_id
            for channel in CHANNELS:
                path = dataset / split / f"{image_id}_{channel}.png"
                assert path.name.rsplit("_", 1) == [image_id, f"{channel}.png"]
                pixels = read_png(path)
                assert pixels.dtype == np.uint8 and pixels.shape == (144, 176)
            labels = read_png(dataset / "truth" / f"{image_id}_cells.png")
            assert labels.dtype == np.uint16 and labels.shape == (144, 176)
    # The stains carry signal, not just noise.
    blue = read_png(dataset / "train" / f"{train.ID[0]}_blue.png")
    assert blue.max() > 60 and np.median(blue) < 20


def test_truth_tables_match_label_images(dataset):
    cells = pd.read_csv(dataset / "truth" / "cells.csv")
    images = pd.read_csv(dataset / "truth" / "images.csv").set_index("ID")
    train = pd.read_csv(dataset / "train.csv").set_index("ID")
    for image_id, row in images.iterrows():
        labels = read_png(dataset / "truth" / f"{image_id}_cells.png")
        mine = cells[cells.ID == image_id]
        assert set(np.unique(labels)) - {0} == set(mine.cell_id), image_id
        assert len(mine) == mine.cell_id.nunique()
        union = set().union(*(parse_labels(label) for label in mine.Label))
        assert set(parse_labels(row.Label)) == union, image_id
        if row.split == "train":
            assert train.Label[image_id] == row.Label
        for label in mine.Label:
            classes = parse_labels(label)
            assert classes and (NEGATIVE not in classes or classes == [NEGATIVE])


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, dataset):
    again = tmp_path / "again"
    write_dataset(str(again), 4, 3, 144, 176, seed=5)
    assert tree_digest(again) == tree_digest(dataset)

    other = tmp_path / "other"
    write_dataset(str(other), 4, 3, 144, 176, seed=6)
    other_pngs = {path.read_bytes() for path in other.rglob("*.png")}
    assert not other_pngs & {path.read_bytes() for path in dataset.rglob("*.png")}

    # An image depends on (seed, split, index), not on how many images are made.
    fewer = tmp_path / "fewer"
    write_dataset(str(fewer), 2, 1, 144, 176, seed=5)
    for path in fewer.rglob("*.png"):
        assert path.read_bytes() == (dataset / path.relative_to(fewer)).read_bytes()


def test_every_cell_has_exactly_one_nucleus_inside_it():
    for seed, (height, width) in itertools.product(range(6), ((128, 128), (200, 300), (300, 120))):
        image = generate_image(seed, height, width)
        cells, nuclei = image.cell_labels, image.nucleus_labels
        count = int(cells.max())
        assert count >= 1 and len(image.cell_classes) == count
        assert set(np.unique(cells)) - {0} == set(range(1, count + 1))
        assert np.array_equal(cells[nuclei > 0], nuclei[nuclei > 0]), "a nucleus crosses its cell's border"
        for cell in range(1, count + 1):
            assert ndimage.label(cells == cell)[1] == 1, f"cell {cell} is in pieces"
            assert ndimage.label(nuclei == cell)[1] == 1, f"cell {cell} has no or several nuclei"
            # Cytoplasm all round: a nucleus never fills its cell.
            assert (nuclei == cell).sum() < 0.8 * (cells == cell).sum()


def test_cell_count_and_coverage_scale_with_the_image():
    small = [generate_image(seed, 512, 512) for seed in range(4)]
    counts = [int(image.cell_labels.max()) for image in small]
    assert all(6 <= count <= 16 for count in counts), counts
    # Confluent culture: cells cover most of the field.
    assert np.mean([(image.cell_labels > 0).mean() for image in small]) > 0.6
    assert 15 <= int(generate_image(0, 2048, 2048).cell_labels.max()) <= 40


def test_image_label_is_the_union_and_negative_cells_are_dark():
    for seed in range(8):
        image = generate_image(seed, 192, 192, image_classes=[16, 13], negative_share=0.5)
        assert image.image_classes == sorted({c for cell in image.cell_classes for c in cell})
        green = image.channels["green"].astype(float)
        background = np.median(green[image.cell_labels == 0])
        for cell, classes in enumerate(image.cell_classes, start=1):
            level = green[image.cell_labels == cell].mean() - background
            if classes == [NEGATIVE]:
                assert level < 1.5, (seed, cell)
            else:
                assert set(classes) <= {13, 16}
    with pytest.raises(ValueError):
        generate_image(0, 128, 128, image_classes=[3, NEGATIVE])


def test_every_class_appears_within_a_block_of_images(tmp_path):
    write_dataset(str(tmp_path), NUM_CLASSES, 0, 96, 96, seed=2)
    labels = pd.read_csv(tmp_path / "train.csv").Label
    seen = set().union(*(parse_labels(label) for label in labels))
    assert seen == set(range(NUM_CLASSES))


# ---- one visible green pattern per class -------------------------------------------------------------------

def _edges(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


FEATURES = ("nucleus share", "nuclear rim share", "cell rim share", "mean SNR", "peak SNR", "peaks per cell",
            "cell coherence", "local coherence", "radial alignment", "fine texture", "blob area", "blobs per cell")


def green_features(image, cls: int) -> np.ndarray:
    """Statistics of the green stain over the cells that show ``cls``, blind to the generator's internals.

    Where the signal sits (nucleus, nuclear rim, cell rim), how strong it is against the background noise,
    how many spots and how big, and whether it is oriented (per cell, locally, radially from the nucleus).
    """
    green = image.channels["green"].astype(np.float32)
    cells, nuclei = image.cell_labels, image.nucleus_labels
    shows = np.array([False] + [cls in classes for classes in image.cell_classes])
    region = shows[cells]
    n_cells = int(shows.sum())
    background = green[cells == 0]
    noise = background.std()
    signal = green - np.median(background)
    positive = np.clip(signal, 0, None) * region
    total = positive.sum() + 1e-6
    cell_rim = ndimage.binary_dilation(_edges(cells)) & region
    nuclear_rim = ndimage.binary_dilation(_edges((nuclei > 0).astype(np.uint8))) & region

    fine = cv2.GaussianBlur(signal, (0, 0), 0.7)
    smooth = cv2.GaussianBlur(signal, (0, 0), 1.0)
    prominence = fine - cv2.GaussianBlur(signal, (0, 0), 3.0)
    peaks = region & (fine == ndimage.maximum_filter(fine, 3)) & (prominence > 4 * noise)
    bright = region & (fine > max(0.4 * np.percentile(fine[region], 99.9), 4 * noise))
    n_blobs = ndimage.label(bright)[1]

    gy, gx = np.gradient(smooth)
    ids = np.flatnonzero(shows)
    sums = [ndimage.sum(v, cells, ids) for v in (gx * gx, gy * gy, gx * gy)]
    cell_coherence = np.mean(np.hypot(sums[0] - sums[1], 2 * sums[2]) / (sums[0] + sums[1] + 1e-6))
    jxx, jyy, jxy = (cv2.GaussianBlur(v, (0, 0), 2.0) for v in (gx * gx, gy * gy, gx * gy))
    energy = (jxx + jyy) * region + 1e-9
    local_coherence = np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy + 1e-6)
    centre = np.zeros((cells.max() + 1, 2), np.float32)
    centre[ids] = np.asarray(ndimage.center_of_mass(nuclei > 0, nuclei, ids))
    ys, xs = np.indices(cells.shape, dtype=np.float32)
    ry, rx = ys - centre[cells, 0], xs - centre[cells, 1]
    radial = np.abs(gx * rx + gy * ry) / ((np.hypot(gx, gy) + 1e-6) * (np.hypot(ry, rx) + 1e-3))

    return np.array([
        positive[region & (nuclei > 0)].sum() / total,
        positive[nuclear_rim].sum() / total,
        positive[cell_rim].sum() / total,
        np.log1p(max(positive.sum() / region.sum(), 0) / noise),
        np.log1p(max(np.percentile(signal[region], 99.9), 0) / noise),
        np.log1p(peaks.sum() / n_cells),
        cell_coherence,
        (local_coherence * energy).sum() / energy.sum(),
        (radial * energy).sum() / energy.sum(),
        (np.abs(signal - smooth) * region).sum() / total,
        np.log(bright.sum() + 1) - np.log(n_blobs + 1),
        np.log1p(n_blobs / n_cells),
    ])


@pytest.fixture(scope="module")
def class_features() -> np.ndarray:
    """(seed, class, feature): every cell of the image shows the one class (the spindle: mitotic cells only)."""
    return np.array([[green_features(generate_image(1000 * seed + cls, 256, 256, image_classes=[cls],
                                                    negative_share=0.0), cls)
                      for cls in range(NUM_CLASSES)] for seed in (1, 2, 3)])


def test_green_signal_sits_where_each_class_lives(class_features):
    nucleus_share, nuclear_rim, cell_rim, _, peak_snr = (class_features[:, :, index] for index in range(5))
    # Shares of the positive signal; background noise inside the cells dilutes weak patterns a little.
    assert nucleus_share[:, NUCLEAR].min() > 0.45
    assert nucleus_share[:, CYTOPLASMIC].max() < 0.3
    assert nuclear_rim[:, 1].min() > 0.6 and np.delete(nuclear_rim, 1, axis=1).max() < 0.4
    assert cell_rim[:, 13].min() > 0.6 and np.delete(cell_rim, 13, axis=1).max() < 0.55
    # Negative: the brightest cell pixels are background noise, every other class is far above it.
    assert peak_snr[:, NEGATIVE].max() < 2.0
    assert np.delete(peak_snr, NEGATIVE, axis=1).min() > 3.0


def test_every_pair_of_classes_is_told_apart_by_some_statistic(class_features):
    """For every two classes, some statistic puts all images of one clear of all images of the other."""
    low, high = class_features.min(axis=0), class_features.max(axis=0)
    spread = class_features.mean(axis=0).std(axis=0)
    confused = []
    for a, b in itertools.combinations(range(NUM_CLASSES), 2):
        gap = np.maximum(low[a] - high[b], low[b] - high[a]) / spread
        if gap.max() < 0.25:
            confused.append((a, b, FEATURES[int(gap.argmax())], round(float(gap.max()), 2)))
    assert not confused, confused


def test_cli_writes_a_non_square_dataset(tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "stages.dev.synth", "--out", str(out), "--images", "2", "--test-images", "1",
         "--height", "200", "--width", "300", "--seed", "3", "--cells-per-image", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    submission = pd.read_csv(out / "sample_submission.csv", keep_default_na=False)
    assert submission.ImageWidth.tolist() == [300] and submission.ImageHeight.tolist() == [200]
    for path in (out / "train").glob("*.png"):
        assert read_png(path).shape == (200, 300)
    assert len(list((out / "train").glob("*.png"))) == 8
    assert read_png(out / "truth" / f"{submission.ID[0]}_cells.png").shape == (200, 300)

    bad = subprocess.run([sys.executable, "-m", "stages.dev.synth", "--out", str(out), "--size", "8"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "64" in bad.stderr


def test_writes_through_storage_to_s3(s3_root, tmp_path):
    write_dataset(s3_root, 1, 1, 96, 128, seed=4)
    local = tmp_path / "local"
    write_dataset(str(local), 1, 1, 96, 128, seed=4)
    for relative in ("train.csv", "sample_submission.csv", "truth/cells.csv", "truth/images.csv"):
        assert storage.read_bytes(storage.join(s3_root, relative)) == (local / relative).read_bytes()
    names = storage.listdir(storage.join(s3_root, "train"))
    assert names == sorted(path.name for path in (local / "train").iterdir())
    assert storage.is_done(s3_root)

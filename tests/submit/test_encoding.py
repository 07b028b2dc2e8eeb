"""Open Images mask encoding and the submission table: pycocotools alone must decode what we write."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import pandas as pd
import pytest
from pycocotools import mask as coco_mask

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.submit import encoding


def coco_decode(text: str, height: int, width: int) -> np.ndarray:
    """Decoding with pycocotools, zlib and base64 only (no project code)."""
    counts = zlib.decompress(base64.b64decode(text.encode("ascii")))
    return coco_mask.decode({"size": [height, width], "counts": counts}).astype(bool)


def reference_encode(mask: np.ndarray) -> str:
    """The Kaggle host's reference encoder, verbatim in spirit (3-D Fortran uint8 input)."""
    to_encode = np.asfortranarray(mask.astype(np.uint8).reshape(mask.shape[0], mask.shape[1], 1))
    counts = coco_mask.encode(to_encode)[0]["counts"]
    return base64.b64encode(zlib.compress(counts, zlib.Z_BEST_COMPRESSION)).decode("ascii")


def blob_labels(height: int, width: int, n_cells: int, seed: int = 0) -> np.ndarray:
    """A label image of irregular, non-convex cells touching each other, the border and the corners."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    labels = np.zeros((height, width), np.uint16)
    for cell in range(1, n_cells + 1):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.05, 0.2) * min(height, width)
        angle = np.arctan2(rows - cy, cols - cx)
        wobble = 1 + 0.3 * np.sin(3 * angle + rng.uniform(0, 6))
        labels[np.hypot(rows - cy, cols - cx) < radius * wobble] = cell
    labels[0, 0] = labels[-1, -1] = labels[0, -1] = labels[-1, 0] = n_cells + 1  # one cell in every corner
    labels[: height // 7, width // 2] = n_cells + 2  # a thin vertical line
    return labels


@pytest.mark.parametrize("shape", [(37, 53), (64, 31), (1, 9), (9, 1), (48, 48)])
def test_encode_cells_is_byte_identical_to_the_reference_and_round_trips(shape):
    labels = blob_labels(*shape, n_cells=6, seed=sum(shape))
    encoded = encoding.encode_cells(labels)
    present = sorted(int(value) for value in np.unique(labels) if value)
    assert list(encoded) == present
    height, width = shape
    for cell_id, text in encoded.items():
        mask = labels == cell_id
        assert text == reference_encode(mask) == encoding.encode_mask(mask)
        np.testing.assert_array_equal(coco_decode(text, height, width), mask)
        np.testing.assert_array_equal(encoding.decode_mask(text, height, width), mask)


def test_whole_image_cell_and_cells_split_into_many_runs():
    full = np.ones((5, 7), np.uint16) * 3
    assert encoding.encode_cells(full) == {3: encoding.encode_mask(full == 3)}
    stripes = (np.indices((6, 8)).sum(axis=0) % 3).astype(np.uint16)  # diagonal stripes: many runs per cell
    encoded = encoding.encode_cells(stripes)
    assert set(encoded) == {1, 2}
    for cell_id, text in encoded.items():
        np.testing.assert_array_equal(coco_decode(text, 6, 8), stripes == cell_id)


def test_empty_and_bad_label_images():
    assert encoding.encode_cells(np.zeros((4, 5), np.uint16)) == {}
    assert encoding.encode_cells(np.zeros((0, 5), np.uint16)) == {}
    with pytest.raises(ValueError, match="label image"):
        encoding.encode_cells(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="label image"):
        encoding.encode_cells(np.zeros((4, 5, 2), np.uint16))


def test_encode_cells_equals_per_cell_full_image_encoding():
    """One pass over the label image gives every cell's mask string exactly as encoding each full-size mask
    would (its speed is bench/run.py's: a timed assertion in a test only measures the machine's load)."""
    labels = blob_labels(512, 384, n_cells=25, seed=3)
    cell_ids = [int(value) for value in np.unique(labels) if value]
    naive = {cell_id: encoding.encode_mask(labels == cell_id) for cell_id in cell_ids}
    assert encoding.encode_cells(labels) == naive


def scores_for(keys, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(keys, columns=["ID", "cell_id"])
    frame[list(SCORE_COLUMNS)] = rng.uniform(0, 1, (len(keys), NUM_CLASSES))
    return frame


def test_submission_rows_follow_the_manifest_and_decode_to_the_label_images():
    label_images = {"img_b": blob_labels(40, 60, 4, seed=1), "img_a": blob_labels(50, 30, 3, seed=2),
                    "empty": np.zeros((20, 25), np.uint16)}
    order = ["img_b", "empty", "img_a"]  # manifest order, not sorted
    images = pd.DataFrame({"ID": order, "ImageWidth": [label_images[i].shape[1] for i in order],
                           "ImageHeight": [label_images[i].shape[0] for i in order]})
    encoded = {image_id: encoding.encode_cells(labels) for image_id, labels in label_images.items()}
    keys = [(image_id, cell_id) for image_id in ("img_a", "img_b") for cell_id in encoded[image_id]]
    scores = scores_for(keys).sample(frac=1.0, random_state=0)  # row order must not matter
    submission = encoding.build_submission(images, encoded, scores)
    assert list(submission.columns) == ["ID", "ImageWidth", "ImageHeight", "PredictionString"]
    assert submission["ID"].tolist() == order

    buffer = io.StringIO()
    submission.to_csv(buffer, index=False)
    reread = pd.read_csv(io.StringIO(buffer.getvalue()), dtype={"ID": str})
    assert reread["ID"].tolist() == order
    for row in reread.itertuples():
        height, width, labels = row.ImageHeight, row.ImageWidth, label_images[row.ID]
        assert (height, width) == labels.shape
        text = row.PredictionString if isinstance(row.PredictionString, str) else ""
        tokens = text.split()
        cells = [int(value) for value in np.unique(labels) if value]
        assert len(tokens) == 3 * NUM_CLASSES * len(cells)
        seen = {}
        for index in range(0, len(tokens), 3):
            klass, confidence, mask = int(tokens[index]), float(tokens[index + 1]), tokens[index + 2]
            decoded = coco_decode(mask, height, width)
            (cell_id,) = np.unique(labels[decoded])  # exactly one cell's pixels...
            np.testing.assert_array_equal(decoded, labels == cell_id)  # ...and all of them
            expected = scores.set_index(["ID", "cell_id"]).loc[(row.ID, int(cell_id)), f"class_{klass}"]
            assert confidence == pytest.approx(expected, rel=1e-5, abs=1e-6)
            seen.setdefault(int(cell_id), []).append(klass)
        assert seen == {cell_id: list(range(NUM_CLASSES)) for cell_id in cells}
    assert reread.loc[reread["ID"] == "empty", "PredictionString"].isna().all()
    parsed = encoding.parse_prediction_string(submission["PredictionString"][0], 40, 60)
    assert len(parsed) == len(encoded["img_b"]) * NUM_CLASSES and parsed[0][2].shape == (40, 60)


def test_submission_refuses_inconsistent_inputs():
    labels = blob_labels(30, 40, 3, seed=4)
    encoded = {"x": encoding.encode_cells(labels)}
    images = pd.DataFrame({"ID": ["x"], "ImageWidth": [40], "ImageHeight": [30]})
    keys = [("x", cell_id) for cell_id in encoded["x"]]
    with pytest.raises(ValueError, match="mask but no scores"):
        encoding.build_submission(images, encoded, scores_for(keys[:-1]))
    with pytest.raises(ValueError, match="scores but no mask"):
        encoding.build_submission(images, encoded, scores_for(keys + [("x", 99)]))
    with pytest.raises(ValueError, match="not in the images table"):
        encoding.build_submission(images, encoded, scores_for(keys + [("y", 1)]))
    with pytest.raises(ValueError, match="no cell masks"):
        encoding.build_submission(images, {}, scores_for(keys))

"""The Open Images mask encoding of the Kaggle submission (SPEC 2), and the submission table.

A cell's mask is encoded as: COCO RLE of the full-size binary mask (pycocotools, column-major counts,
compressed to COCO's string form), then ``zlib.compress(counts, 9)``, then base64, as ASCII. That is what
:func:`encode_mask` does, literally, for one mask.

:func:`encode_cells` gives the same strings for every cell of a label image without building a full-image
mask per cell: one pass over the label image in column-major order finds the runs of equal labels; a cell's
uncompressed RLE counts are the gaps between its runs and their lengths; pycocotools itself turns those
counts into its compressed string (``frPyObjects`` with uncompressed counts), so the string format stays the
library's. Tests check the result byte for byte against :func:`encode_mask`.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pycocotools import mask as coco_mask

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.submit.contract import SUBMISSION_COLUMNS

ZLIB_LEVEL = 9


def _pack(counts: bytes) -> str:
    return base64.b64encode(zlib.compress(counts, ZLIB_LEVEL)).decode("ascii")


def encode_mask(mask: np.ndarray) -> str:
    """One binary ``(H, W)`` mask -> its Open Images string (the reference, SPEC 2)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return _pack(rle["counts"])


def decode_mask(encoded: str, height: int, width: int) -> np.ndarray:
    """The reverse of :func:`encode_mask`: an ``(height, width)`` bool mask."""
    counts = zlib.decompress(base64.b64decode(encoded))
    mask = coco_mask.decode({"size": [int(height), int(width)], "counts": counts})
    return mask.astype(bool)


def cell_rle_counts(cells: np.ndarray) -> dict[int, np.ndarray]:
    """Each cell's uncompressed COCO RLE counts (column-major, starting with a zero run), in one pass.

    ``cells`` is a 2-D integer label image (0 = background). Cells without pixels do not appear.
    """
    cells = np.asarray(cells)
    if cells.ndim != 2 or not np.issubdtype(cells.dtype, np.integer):
        raise ValueError(f"cells must be a 2-D integer label image, got {cells.dtype} of shape {cells.shape}")
    height, width = cells.shape
    total = cells.size
    if total == 0:
        return {}
    # Run starts in column-major order without transposing the image (a transposed copy costs more than
    # everything else): changes down each column, plus column tops that differ from the previous bottom.
    rows, cols = np.nonzero(cells[1:, :] != cells[:-1, :])
    inner = cols.astype(np.int64) * height + rows + 1
    tops = np.flatnonzero(cells[0, 1:] != cells[-1, :-1]) + 1
    starts = np.unique(np.concatenate(([0], inner, tops.astype(np.int64) * height)))
    ends = np.append(starts[1:], total)
    values = cells[starts % height, starts // height]
    foreground = values != 0
    starts, ends, values = starts[foreground], ends[foreground], values[foreground]
    if values.size == 0:
        return {}
    order = np.argsort(values, kind="stable")  # stable: each cell's runs stay in position order
    starts, ends, values = starts[order], ends[order], values[order]
    first = np.concatenate(([True], values[1:] != values[:-1]))
    previous_end = np.concatenate(([0], ends[:-1]))
    previous_end[first] = 0
    pairs = np.stack([starts - previous_end, ends - starts], axis=1).ravel()  # zeros, ones, zeros, ones...
    if pairs.size and pairs.min() < 0:  # cheap guard: a negative count would wrap around in pycocotools
        raise AssertionError("internal error: runs of a cell out of order")
    group_starts = np.flatnonzero(first)
    group_ends = np.concatenate((group_starts[1:], [values.size]))
    counts = {}
    for begin, end in zip(group_starts.tolist(), group_ends.tolist()):
        tail = total - int(ends[end - 1])
        run = pairs[2 * begin : 2 * end]
        counts[int(values[begin])] = np.append(run, tail) if tail else run
    return counts


def encode_cells(cells: np.ndarray) -> dict[int, str]:
    """Every cell of a label image -> its Open Images mask string, ``{cell_id: str}`` in cell-id order.

    Equal, byte for byte, to ``encode_mask(cells == cell_id)`` for each cell, at the cost of one pass over
    the image instead of one per cell.
    """
    counts = cell_rle_counts(cells)
    if not counts:
        return {}
    height, width = (int(side) for side in np.asarray(cells).shape)
    rles = coco_mask.frPyObjects(
        [{"size": [height, width], "counts": run} for run in counts.values()], height, width
    )
    return {cell_id: _pack(rle["counts"]) for cell_id, rle in zip(counts, rles)}


def format_confidence(value: float) -> str:
    # The shortest text that reads back as the same float: the metric ranks cells across images, and
    # fused scores of a weak model can differ only in the 7th digit, so any rounding would reorder them.
    return repr(float(value))


def prediction_string(encoded: Mapping[int, str], scores: pd.DataFrame) -> str:
    """One image's PredictionString: for every scored cell, all 19 ``class confidence mask`` triples.

    ``scores`` holds the image's rows of a score table (``cell_id`` + SCORE_COLUMNS); ``encoded`` its cells'
    mask strings. A scored cell without a mask, or a masked cell without scores, is an error.
    """
    cell_ids = scores["cell_id"].astype(np.int64).tolist()
    if len(set(cell_ids)) != len(cell_ids):
        raise ValueError("a cell is scored more than once")
    unscored = sorted(set(encoded) - set(cell_ids))
    unmasked = sorted(set(cell_ids) - set(encoded))
    if unscored or unmasked:
        raise ValueError(f"cells with a mask but no scores: {unscored[:5]}; cells with scores but no mask: {unmasked[:5]}")
    values = scores[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64)
    parts = []
    for cell_id, row in zip(cell_ids, values):
        mask = encoded[cell_id]
        parts.extend(f"{klass} {format_confidence(value)} {mask}" for klass, value in zip(range(NUM_CLASSES), row))
    return " ".join(parts)


def build_submission(
    images: pd.DataFrame, encoded: Mapping[str, Mapping[int, str]], scores: pd.DataFrame
) -> pd.DataFrame:
    """The Kaggle submission table, one row per image of ``images`` in its order.

    ``images``: ``ID, ImageWidth, ImageHeight`` (the test manifest's order). ``encoded``: per image ID, its
    cells' mask strings (:func:`encode_cells`; ``{}`` for an image without cells, whose row then has an
    empty PredictionString). ``scores``: the fused table (``ID, cell_id`` + SCORE_COLUMNS).
    """
    missing = [column for column in ("ID", "ImageWidth", "ImageHeight") if column not in images.columns]
    if missing:
        raise ValueError(f"images table lacks column(s) {missing}")
    ids = images["ID"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise ValueError("an image ID appears twice in the images table")
    no_masks = [image_id for image_id in ids if image_id not in encoded]
    if no_masks:
        raise ValueError(f"no cell masks for image(s) {no_masks[:5]} ({len(no_masks)} in all)")
    score_ids = scores["ID"].astype(str)
    strangers = sorted(set(score_ids) - set(ids))
    if strangers:
        raise ValueError(f"scores for image(s) not in the images table: {strangers[:5]}")
    groups = {image_id: rows for image_id, rows in scores.groupby(score_ids, sort=False)}
    empty = scores.iloc[:0]
    strings = []
    for image_id in ids:
        try:
            strings.append(prediction_string(encoded[image_id], groups.get(image_id, empty)))
        except ValueError as error:
            raise ValueError(f"image {image_id}: {error}") from None
    return pd.DataFrame(
        {
            "ID": ids,
            "ImageWidth": images["ImageWidth"].astype(np.int64).to_numpy(),
            "ImageHeight": images["ImageHeight"].astype(np.int64).to_numpy(),
            "PredictionString": strings,
        },
        columns=list(SUBMISSION_COLUMNS),
    )


def parse_prediction_string(text: str, height: int, width: int, decode: bool = True) -> list[tuple[int, float, object]]:
    """``"c conf mask c conf mask ..."`` -> ``[(class, confidence, mask)]``; masks decoded when ``decode``."""
    tokens = text.split() if isinstance(text, str) else []
    if len(tokens) % 3:
        raise ValueError(f"a PredictionString holds triples, got {len(tokens)} tokens")
    out = []
    for index in range(0, len(tokens), 3):
        klass, confidence, mask = int(tokens[index]), float(tokens[index + 1]), tokens[index + 2]
        out.append((klass, confidence, decode_mask(mask, height, width) if decode else mask))
    return out


def in_manifest_order(parts: list[pd.DataFrame], image_ids: list[str]) -> pd.DataFrame:
    """Shards' submission rows as one table in the manifest's order; an image of the manifest without a row
    is an error (a lost image must never pass as an image without cells)."""
    table = pd.concat(parts, ignore_index=True).set_index("ID")
    missing = sorted(set(image_ids) - set(table.index))
    if missing:
        raise ValueError(f"no submission row for {len(missing)} image(s) of the manifest, e.g. {missing[:3]}")
    return table.loc[image_ids].reset_index()[list(SUBMISSION_COLUMNS)]

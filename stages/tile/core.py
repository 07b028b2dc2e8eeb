"""Per-cell model inputs from a field of view and its cell label image (numpy in, numpy out).

Every resize here is the 16th-place "resize trick": zero-pad the short side symmetrically to a square, so
the aspect ratio survives, then shrink with area interpolation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage, sparse

from stages.classes import CHANNELS
from stages.segment.contract import BBOX_COLUMNS
from stages.tile.contract import ARRAY_DTYPE, INDEX_COLUMNS, TILE_CHANNELS

_TILE_PLANES = [CHANNELS.index(channel) for channel in TILE_CHANNELS]
if _TILE_PLANES != [0, 1, 2]:  # cell_tiles keeps planes 0-2 with OpenCV's RGBA -> RGB
    raise ImportError(f"tile channels {TILE_CHANNELS} must be the first three of {CHANNELS}")
_GREEN = CHANNELS.index("green")


def square_pad_resize(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(size, size[, C])``, same dtype: zero-pad to a square, then area-resize.

    An odd padding puts the extra row or column at the bottom or right.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot resize an empty image of shape {image.shape}")
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padding = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (image.ndim - 2)
    resized = cv2.resize(np.pad(image, padding), (size, size), interpolation=cv2.INTER_AREA)
    return resized.reshape(size, size, *image.shape[2:])  # cv2 drops a trailing single channel


def cell_boxes(cells: np.ndarray, cell_ids: Sequence[int]) -> list[tuple[slice, slice]]:
    """Each cell's bounding box as ``(rows, cols)`` slices, all found in one pass over the label image."""
    if cells.ndim != 2 or not np.issubdtype(cells.dtype, np.integer):
        raise ValueError(f"cells must be a 2-D integer label image, got {cells.dtype} of shape {cells.shape}")
    if len(cell_ids) == 0:
        return []
    if min(cell_ids) < 1:
        raise ValueError(f"cell ids start at 1 (0 is background), got {min(cell_ids)}")
    boxes = ndimage.find_objects(cells, max_label=int(max(cell_ids)))
    missing = [int(cell_id) for cell_id in cell_ids if boxes[cell_id - 1] is None]
    if missing:
        raise ValueError(f"cell id(s) {missing} have no pixels in the label image")
    return [boxes[cell_id - 1] for cell_id in cell_ids]


def boxes_from_bounds(bounds: np.ndarray) -> list[tuple[slice, slice]]:
    """``(N, 4)`` rows of ``y0, x0, y1, x1`` (end exclusive, as the segment table stores them) as slices."""
    return [(slice(int(y0), int(y1)), slice(int(x0), int(x1))) for y0, x0, y1, x1 in np.asarray(bounds)]


def _check_image(image: np.ndarray, cells: np.ndarray, name: str, ndim: int) -> None:
    if image.dtype != ARRAY_DTYPE or image.ndim != ndim or image.shape[:2] != cells.shape:
        raise ValueError(f"{name} must be {ARRAY_DTYPE.name} of {ndim} dims matching the labels' "
                         f"{cells.shape}, got {image.dtype} of shape {image.shape}")


def cell_tiles(field: np.ndarray, cells: np.ndarray, cell_ids: Sequence[int], tile_size: int,
               boxes: Sequence[tuple[slice, slice]] | None = None) -> np.ndarray:
    """``(N, S, S, 3)`` uint8: per cell, its bounding box with every pixel of other cells and background
    zeroed, square-padded and resized to ``tile_size``.

    ``field`` is ``(H, W, 4)`` in CHANNELS order (red, green, blue, yellow); a tile holds red, green, blue.
    Only RGB is stored: the green-x3 channel set is channel 1 of the tile, repeated at batch time.
    """
    _check_image(field, cells, "field", 3)
    boxes = cell_boxes(cells, cell_ids) if boxes is None else boxes
    tiles = np.empty((len(boxes), tile_size, tile_size, len(_TILE_PLANES)), ARRAY_DTYPE)
    for index, (cell_id, box) in enumerate(zip(cell_ids, boxes)):
        inside = (cells[box] == cell_id).view(np.uint8)
        crop = field[box]  # a view: OpenCV follows its strides, nothing is copied
        # OpenCV masks and drops the 4th plane (yellow) in two passes over the box, ~2x numpy's where + take
        masked = cv2.cvtColor(cv2.bitwise_and(crop, crop, mask=inside), cv2.COLOR_RGBA2RGB)
        tiles[index] = square_pad_resize(masked, tile_size)
    return tiles


@functools.lru_cache(maxsize=8)
def _resize_weights(length: int, size: int) -> sparse.csr_array:
    """cv2's 1-D area resize from ``length`` to ``size`` as a sparse ``(length, size)`` matrix (row i: where
    input position i goes), read off by resizing the identity.

    cv2's area resize of a square is separable, so ``W.T @ image @ W`` is ``cv2.resize(image)`` up to
    uint8 rounding; asking cv2 itself keeps its exact weights for shrinking and enlarging alike. The
    matrix is banded (an input position reaches one or two outputs when shrinking), so it is kept sparse.
    """
    weights = cv2.resize(np.eye(length, dtype=np.float32), (length, size), interpolation=cv2.INTER_AREA)
    return sparse.csr_array(weights.T.astype(np.float64))


def image_on_cell(green: np.ndarray, cells: np.ndarray, cell_ids: Sequence[int], size: int,
                  boxes: Sequence[tuple[slice, slice]] | None = None) -> np.ndarray:
    """``(N, size, size)`` uint8: per cell, the whole green image with every pixel outside the cell zeroed,
    square-padded and resized to ``size`` (SPEC 3.6's image-on-cell input, green only).

    Equal to ``square_pad_resize(np.where(cells == cell_id, green, 0), size)`` up to rounding: a value
    differs by at most 1, on a few pixels per million when shrinking (the real case: 1728-3072 px to 600)
    and a few per thousand when enlarging (cv2's uint8 path rounds its weights to fixed point), so the
    non-zero support can differ only by a 0-versus-1 pixel on its border. It needs no full-size mask or
    resize per cell: the resize is linear, so only the cell's bounding box goes through the resize's
    weight matrices, into the band of output rows and columns that box reaches; the rest stays 0.
    """
    _check_image(green, cells, "green", 2)
    boxes = cell_boxes(cells, cell_ids) if boxes is None else boxes
    out = np.zeros((len(boxes), size, size), ARRAY_DTYPE)
    if not boxes:
        return out
    height, width = cells.shape
    side = max(height, width)
    weights = _resize_weights(side, size)
    top, left = (side - height) // 2, (side - width) // 2  # the padding of square_pad_resize
    for index, (cell_id, (rows, cols)) in enumerate(zip(cell_ids, boxes)):
        row_weights, out_rows = _band(weights[top + rows.start:top + rows.stop])
        col_weights, out_cols = _band(weights[left + cols.start:left + cols.stop])
        masked = np.where(cells[rows, cols] == cell_id, green[rows, cols], 0).astype(np.float64)
        resized = (row_weights.T @ masked) @ col_weights
        out[index, out_rows, out_cols] = np.rint(resized)  # convex weights: already within 0..255
    return out


def _band(weights: sparse.csr_array) -> tuple[sparse.csr_array, slice]:
    """These input positions' weights cut to the band of output positions they reach, and that band."""
    band = slice(int(weights.indices.min()), int(weights.indices.max()) + 1)
    return weights[:, band], band


def tile_shard(
    image_ids: Sequence[str],
    cells: pd.DataFrame,
    load: Callable[[str], tuple[np.ndarray, np.ndarray]],
    tile_size: int,
    on_cell_size: int,
    progress: Callable[[str, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A shard's model inputs: ``(tiles (N, S, S, 3), image_on_cell (N, I, I), index (ID, cell_id))``.

    ``image_ids``: the shard's images in order; ``cells``: the segment stage's cell table of the shard
    (``ID, cell_id`` and the bbox columns), whose rows set each image's cells and their order; ``load(ID)``:
    that image's ``(field (H, W, 4) uint8, cell labels uint16)``, called once per image that has cells and
    never for one without (a field is read only when it yields a tile). Row i of the three outputs belongs
    together. ``progress(message, percent)``, if given, hears of each image. An error names the image.
    """
    per_image = dict(tuple(cells.groupby(cells["ID"].astype(str), sort=False)))
    cell_ids = {image_id: group["cell_id"].tolist() for image_id, group in per_image.items()}
    # The segment table's boxes spare a pass over each label image per output (find_objects)
    boxes = {image_id: boxes_from_bounds(group[list(BBOX_COLUMNS)].to_numpy()) for image_id, group in per_image.items()}
    index = pd.DataFrame(
        [(image_id, cell_id) for image_id in image_ids for cell_id in cell_ids.get(image_id, [])],
        columns=list(INDEX_COLUMNS),
    )
    # Filled image by image: a shard's fields never sit in memory together, only its small outputs.
    tiles = np.empty((len(index), tile_size, tile_size, len(TILE_CHANNELS)), ARRAY_DTYPE)
    on_cell = np.empty((len(index), on_cell_size, on_cell_size), ARRAY_DTYPE)
    start = 0
    for number, image_id in enumerate(image_ids, start=1):
        ids = cell_ids.get(image_id, [])
        if progress is not None:
            progress(f"{image_id}: {len(ids)} cell(s), image {number}/{len(image_ids)}", 100 * number // len(image_ids))
        if not ids:
            continue
        field, labels = load(image_id)
        stop = start + len(ids)
        try:
            tiles[start:stop] = cell_tiles(field, labels, ids, tile_size, boxes[image_id])
            on_cell[start:stop] = image_on_cell(field[..., _GREEN], labels, ids, on_cell_size, boxes[image_id])
        except ValueError as error:
            raise ValueError(f"image {image_id}: {error}") from error
        del field, labels  # before the next load: two fields at once would double the peak
        start = stop
    return tiles, on_cell, index


def whole_image_inputs(image_ids: Sequence[str], load_green: Callable[[int], np.ndarray], size: int,
                       progress: Callable[[str, int], None] | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The image models' inputs: ``(N, size, size)`` uint8, each image's green channel square-padded and
    area-resized, and each image's ``(width, height)``. ``load_green(i)`` reads image i, one at a time."""
    inputs = np.empty((len(image_ids), size, size), ARRAY_DTYPE)
    sizes = []
    for row, image_id in enumerate(image_ids):
        if progress is not None:
            progress(f"{image_id}: image {row + 1}/{len(image_ids)}", 100 * row // max(1, len(image_ids)))
        green = load_green(row)
        inputs[row] = square_pad_resize(green, size)
        sizes.append((green.shape[1], green.shape[0]))
    return inputs, sizes

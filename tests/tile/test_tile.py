"""Tile geometry on hand-made label images: padding, zeroing, channel order, image-on-cell closeness."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import ellipse, line

from stages.tile.core import cell_tiles, image_on_cell, square_pad_resize


def block_means(image: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    return image.reshape(rows, factor, cols, factor, *image.shape[2:]).mean(axis=(1, 3))


def field_of(cells: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (*cells.shape, 4), dtype=np.uint8)


def reference_image_on_cell(green, cells, cell_id, size):
    """SPEC 3.6 literally: the full-size image with every non-cell pixel zeroed, then the resize trick."""
    return square_pad_resize(np.where(cells == cell_id, green, 0).astype(np.uint8), size)


# square_pad_resize ----------------------------------------------------------------------------------


def test_area_resize_of_a_2x_shrink_is_the_2x2_block_means():
    values = np.random.default_rng(1).integers(0, 64, (8, 8, 3)) * 4  # block sums divisible by 4: exact means
    image = values.astype(np.uint8)
    assert np.array_equal(square_pad_resize(image, 4), block_means(values, 2))
    assert np.array_equal(square_pad_resize(image[..., 0], 4), block_means(values[..., 0], 2))


def test_short_side_is_padded_symmetrically_with_the_odd_row_at_the_bottom():
    wide = np.array([[12, 20, 36, 44], [52, 60, 72, 80]], dtype=np.uint8)
    assert np.array_equal(square_pad_resize(wide, 4), np.vstack([np.zeros((1, 4)), wide, np.zeros((1, 4))]))
    # padded with a zero row above and below, then 2x2 block means
    assert np.array_equal(square_pad_resize(wide, 2), [[(12 + 20) / 4, (36 + 44) / 4], [(52 + 60) / 4, (72 + 80) / 4]])
    tall = wide.T.copy()
    assert np.array_equal(square_pad_resize(tall, 4), np.hstack([np.zeros((4, 1)), tall, np.zeros((4, 1))]))
    odd = np.array([[7, 9]], dtype=np.uint8)
    assert np.array_equal(square_pad_resize(odd, 2), [[7, 9], [0, 0]])


def test_square_pad_resize_keeps_a_single_trailing_channel():
    assert square_pad_resize(np.ones((5, 3, 1), np.uint8), 4).shape == (4, 4, 1)


# cell_tiles -------------------------------------------------------------------------------------------


def test_tile_of_a_square_cell_is_the_block_means_of_its_channels():
    cells = np.zeros((6, 8), np.uint16)
    cells[1:5, 2:6] = 1
    values = np.random.default_rng(2).integers(0, 64, (6, 8, 4)) * 4
    (tile,) = cell_tiles(values.astype(np.uint8), cells, [1], tile_size=2)
    assert np.array_equal(tile, block_means(values[1:5, 2:6, :3], 2))


def test_tile_channels_are_red_green_blue_from_field_channels_0_1_2():
    cells = np.zeros((20, 20), np.uint16)
    cells[5:15, 5:15] = 1
    field = np.zeros((20, 20, 4), np.uint8)
    field[...] = (10, 20, 30, 250)
    tiles = cell_tiles(field, cells, [1], tile_size=8)
    assert tiles.shape == (1, 8, 8, 3) and tiles.dtype == np.uint8
    assert np.all(tiles == np.array([10, 20, 30], np.uint8))


def test_pixels_of_another_cell_inside_the_bbox_are_zeroed():
    cells = np.zeros((40, 40), np.uint16)
    cells[5:25, 5:25] = 1
    cells[10:20, 10:20] = 2  # cell 2 sits inside cell 1's bounding box
    field = np.full((40, 40, 4), 60, np.uint8)
    field[cells == 2] = 255
    field[cells == 0] = 200
    tile_1, tile_2 = cell_tiles(field, cells, [1, 2], tile_size=20)  # bbox side 20: no resampling
    assert np.array_equal(tile_1[..., 0], np.where(cells[5:25, 5:25] == 1, 60, 0))
    assert np.all(tile_2 == 255)
    (shrunk,) = cell_tiles(field, cells, [1], tile_size=7)
    assert shrunk.max() <= 60 and shrunk.min() == 0


def test_thin_diagonal_cell_keeps_its_aspect_ratio():
    cells = np.zeros((100, 150), np.uint16)
    rows, cols = line(20, 10, 40, 130)  # bbox 21 rows x 121 cols
    cells[rows, cols] = 3
    field = np.full((100, 150, 4), 255, np.uint8)
    # At the bbox's own side the tile is the padded crop itself: 50 blank rows above and below the line.
    (tile,) = cell_tiles(field, cells, [3], tile_size=121)
    expected = np.zeros((121, 121), np.uint8)
    expected[rows - 20 + 50, cols - 10] = 255
    assert np.array_equal(tile[..., 1], expected)
    # Shrunk, the support stays a thin line along the same diagonal, centred vertically.
    size = 64
    (tile,) = cell_tiles(field, cells, [3], tile_size=size)
    support_rows, support_cols = np.nonzero(tile[..., 1])
    assert support_rows.min() == size - 1 - support_rows.max()
    scale = size / 121
    expected_row = ((rows - 20 + 50 + 0.5) * scale - 0.5)[np.argsort(cols)]
    expected_at = np.interp(support_cols, (np.sort(cols) - 10 + 0.5) * scale - 0.5, expected_row)
    assert np.abs(support_rows - expected_at).max() <= 1.5
    assert len(support_rows) < 3 * size  # a line, not a filled band


def test_cells_touching_the_border_of_a_non_square_image():
    cells = np.zeros((60, 100), np.uint16)
    cells[50:60, 0:30] = 1  # bottom-left corner: 10 rows x 30 cols
    cells[0:30, 95:100] = 2  # right edge: 30 rows x 5 cols
    field = field_of(cells)
    tile_1, tile_2 = cell_tiles(field, cells, [1, 2], tile_size=30)  # longest bbox side: no resampling
    assert np.array_equal(tile_1[10:20], field[50:60, 0:30, :3])
    assert not tile_1[:10].any() and not tile_1[20:].any()
    assert np.array_equal(tile_2[:, 12:17], field[0:30, 95:100, :3])
    assert not tile_2[:, :12].any() and not tile_2[:, 17:].any()


def test_no_cells_gives_empty_arrays_of_the_right_shape():
    cells = np.zeros((50, 70), np.uint16)
    field = field_of(cells)
    tiles = cell_tiles(field, cells, [], tile_size=16)
    on_cell = image_on_cell(field[..., 1], cells, [], size=24)
    assert tiles.shape == (0, 16, 16, 3) and tiles.dtype == np.uint8
    assert on_cell.shape == (0, 24, 24) and on_cell.dtype == np.uint8


def test_a_cell_id_absent_from_the_labels_is_an_error():
    cells = np.zeros((10, 10), np.uint16)
    cells[2:5, 2:5] = 1
    with pytest.raises(ValueError, match=r"\[2\]"):
        cell_tiles(field_of(cells), cells, [1, 2], tile_size=4)


def test_labels_and_field_of_different_sizes_are_an_error():
    cells = np.ones((10, 12), np.uint16)
    with pytest.raises(ValueError, match="matching"):
        cell_tiles(field_of(np.ones((12, 10))), cells, [1], tile_size=4)


# image_on_cell ----------------------------------------------------------------------------------------


def axis_structure() -> np.ndarray:
    """The 3x3 neighbourhood within one image, not across the stack of cells."""
    return np.ones((1, 3, 3), bool)


def blobs(height: int, width: int, seed: int) -> np.ndarray:
    """Overlapping rotated ellipses, some cut by the border, some thin, plus a one-pixel diagonal."""
    rng = np.random.default_rng(seed)
    cells = np.zeros((height, width), np.uint16)
    for cell_id in range(1, 16):
        centre = rng.integers(0, height), rng.integers(0, width)
        radii = rng.integers(1, height // 5), rng.integers(2, width // 5)
        cells[ellipse(*centre, *radii, shape=cells.shape, rotation=rng.uniform(0, np.pi))] = cell_id
    rows, cols = line(0, 0, height - 1, width // 3)
    cells[rows, cols] = 16
    return cells


@pytest.mark.parametrize(
    ("height", "width", "size", "off_by_one"),
    [
        (300, 500, 64, 1e-4),
        (500, 300, 101, 1e-4),
        (256, 256, 64, 1e-4),
        (1728, 1728, 600, 1e-4),
        (60, 100, 150, 1e-2),  # enlarging: cv2 rounds its uint8 weights to fixed point, more ties go the other way
    ],
)
def test_image_on_cell_matches_the_full_size_reference(height, width, size, off_by_one):
    cells = blobs(height, width, seed=height + width)
    cell_ids = [int(cell_id) for cell_id in np.unique(cells) if cell_id]
    green = field_of(cells, seed=size)[..., 1]
    fast = image_on_cell(green, cells, cell_ids, size)
    assert fast.shape == (len(cell_ids), size, size) and fast.dtype == np.uint8
    reference = np.stack([reference_image_on_cell(green, cells, cell_id, size) for cell_id in cell_ids])
    difference = np.abs(fast.astype(int) - reference)
    assert difference.max() <= 1  # uint8 rounding of the same weighted sums
    assert (difference > 0).mean() < off_by_one
    # A 0-versus-1 rounding may move the support's edge, never more: differences hug its border.
    support = reference > 0
    border = ndimage.binary_dilation(support, axis_structure()) & ~ndimage.binary_erosion(support, axis_structure())
    assert not ((fast > 0) != support)[~border].any()


def test_image_on_cell_is_zero_outside_the_cell_and_keeps_its_place():
    cells = np.zeros((40, 80), np.uint16)
    cells[30:40, 60:80] = 1  # bottom-right corner of a wide image
    green = np.full((40, 80), 200, np.uint8)
    (on_cell,) = image_on_cell(green, cells, [1], size=80)  # padded to 80x80: 20 blank rows above and below
    expected = np.zeros((80, 80), np.uint8)
    expected[50:60, 60:80] = 200
    assert np.array_equal(on_cell, expected)


def test_boxes_from_the_segment_table_give_the_same_tiles():
    from stages.segment.labels import cell_table
    from stages.tile.core import boxes_from_bounds, cell_boxes, cell_tiles, image_on_cell

    rng = np.random.default_rng(3)
    cells = np.zeros((50, 70), np.uint16)
    cells[5:20, 10:40] = 1
    cells[25:45, 30:65] = 2
    cells[30:34, 2:9] = 3
    field = rng.integers(0, 255, (50, 70, 4), dtype=np.uint8)
    table = cell_table(cells)
    boxes = boxes_from_bounds(table[["bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]].to_numpy())
    ids = table["cell_id"].tolist()
    assert boxes == cell_boxes(cells, ids)
    assert np.array_equal(cell_tiles(field, cells, ids, 16, boxes), cell_tiles(field, cells, ids, 16))
    assert np.array_equal(image_on_cell(field[..., 1], cells, ids, 24, boxes), image_on_cell(field[..., 1], cells, ids, 24))

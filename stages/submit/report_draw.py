"""The report's image drawing (pure: arrays in, an RGB array out).

A field of view as the HPA composite, shrunk to a longest side, with every cell's outline, every nucleus'
outline (thin lines, two colours) and each cell's id in small type. Nothing else is written on the image:
the classes go to a table beside it (:mod:`stages.submit.report_tables`), so the green signal a biologist
looks at stays visible. Each id sits inside its cell where the green is dimmest, so it hides as little
signal as it can.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

from stages.fields import composite

CELL_OUTLINE = (255, 255, 255)  # white
NUCLEUS_OUTLINE = (255, 0, 255)  # magenta: neither a stain colour nor white
ID_COLOUR = (255, 255, 255)
ID_SHADOW = (0, 0, 0)
ID_FONT = cv2.FONT_HERSHEY_SIMPLEX
ID_SCALE = 0.5  # digits about 11 px tall: readable at the drawing's own size, small beside a cell
CENTRE_WEIGHT = 120.0  # green levels (of 255) an id trades for moving one cell width from its cell's centre
INSIDE = 0.85  # the share of an id's box that must lie inside its cell, where the cell has room for it


def shrink_size(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(width, height)`` of an image of ``shape`` (rows, columns) shrunk to at most ``max_side``."""
    rows, cols = shape[:2]
    scale = min(1.0, max(1, max_side) / max(rows, cols, 1))
    return max(1, round(cols * scale)), max(1, round(rows * scale))


def outline(image: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Draw the inner boundary (1 px) of every labelled region of ``labels`` onto ``image``, in place."""
    image[find_boundaries(labels, mode="inner") & (labels > 0)] = colour


def id_box(text: str) -> tuple[int, int, int]:
    """``(width, height, baseline)`` in pixels of an id drawn with the report's font and outline."""
    (width, height), baseline = cv2.getTextSize(text, ID_FONT, ID_SCALE, 1)
    return width + 2, height + baseline + 2, baseline  # + the 1 px dark rim on each side


def box_sums(integral: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sums over every ``height`` x ``width`` window of the image whose ``cv2.integral`` is given, indexed
    by the window's top-left corner."""
    return (integral[height:, width:] - integral[:-height, width:] - integral[height:, :-width]
            + integral[:-height, :-width])


def id_spot(labels: np.ndarray, cell_id: int, box: tuple[int, int], green_integral: np.ndarray,
            where: tuple[slice, slice], centre: tuple[float, float], taken: np.ndarray) -> tuple[int, int]:
    """Top-left ``(x, y)`` of an id box ``(width, height)`` for cell ``cell_id`` of ``labels``, near the
    cell's centre, off its brightest green, mostly inside the cell (:data:`INSIDE`) and clear of the ids
    already drawn (``taken``, a bool image); the least bad spot where no spot is all of that."""
    width, height = box
    rows, cols = labels.shape
    y0, x0 = max(0, where[0].start - height), max(0, where[1].start - width)
    y1, x1 = min(rows, where[0].stop + height), min(cols, where[1].stop + width)
    cy, cx = centre
    if y1 - y0 < height or x1 - x0 < width:  # an image smaller than the id
        return 0, 0
    area = float(width * height)
    inside = box_sums(cv2.integral((labels[y0:y1, x0:x1] == cell_id).astype(np.uint8)).astype(np.int64),
                      height, width) / area
    overlap = box_sums(cv2.integral(taken[y0:y1, x0:x1].astype(np.uint8)).astype(np.int64), height, width) / area
    green = box_sums(green_integral[y0:y1 + 1, x0:x1 + 1], height, width) / area
    ys, xs = np.mgrid[y0:y0 + inside.shape[0], x0:x0 + inside.shape[1]]
    side = max(where[0].stop - where[0].start, where[1].stop - where[1].start, 1)
    distance = np.hypot(ys + height / 2 - cy, xs + width / 2 - cx) / side
    cost = (green + CENTRE_WEIGHT * distance + 255.0 * (1.0 - inside) + 1000.0 * (inside < INSIDE)
            + 4000.0 * overlap)
    best = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return int(xs[best]), int(ys[best])


def draw_id(image: np.ndarray, text: str, corner: tuple[int, int]) -> None:
    """``text`` with its top-left box corner at ``corner`` (x, y): light digits on a thin dark rim."""
    _, height, baseline = id_box(text)
    origin = (corner[0] + 1, corner[1] + height - baseline - 1)
    cv2.putText(image, text, origin, ID_FONT, ID_SCALE, ID_SHADOW, 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, ID_FONT, ID_SCALE, ID_COLOUR, 1, cv2.LINE_AA)


def draw_cells(field: np.ndarray, cells: np.ndarray, nuclei: np.ndarray | None = None, max_side: int = 768,
               ids: bool = True) -> np.ndarray:
    """(h, w, 3) RGB uint8: the composite of ``field`` ((H, W, 4) red, green, blue, yellow) shrunk to at most
    ``max_side``, each cell of ``cells`` outlined in :data:`CELL_OUTLINE`, each nucleus of ``nuclei`` (same
    shape; 0 = background) in :data:`NUCLEUS_OUTLINE`, and with ``ids`` each cell's id in small type."""
    if cells.shape != field.shape[:2] or (nuclei is not None and nuclei.shape != cells.shape):
        raise ValueError(f"label images {cells.shape} / {None if nuclei is None else nuclei.shape} do not match "
                         f"the field's {field.shape[:2]}")
    size = shrink_size(cells.shape, max_side)
    image = np.ascontiguousarray(cv2.resize(composite(field), size, interpolation=cv2.INTER_AREA))
    small = cv2.resize(cells, size, interpolation=cv2.INTER_NEAREST_EXACT)
    if nuclei is not None:
        outline(image, cv2.resize(nuclei, size, interpolation=cv2.INTER_NEAREST_EXACT), NUCLEUS_OUTLINE)
    outline(image, small, CELL_OUTLINE)  # last: where the two meet, the cell's edge wins
    if not ids:
        return image
    present = [int(value) for value in np.unique(small) if value]
    if not present:
        return image
    green = cv2.resize(np.ascontiguousarray(field[..., 1]), size, interpolation=cv2.INTER_AREA)
    green_integral = cv2.integral(green).astype(np.float64)
    centres = ndimage.center_of_mass(np.ones(small.shape, np.uint8), small, present)
    slices = ndimage.find_objects(small)
    taken = np.zeros(small.shape, dtype=bool)  # the ids drawn so far: no id over another
    for cell_id, centre in zip(present, centres):
        width, height, _ = id_box(str(cell_id))
        x, y = id_spot(small, cell_id, (width, height), green_integral, slices[cell_id - 1], centre, taken)
        draw_id(image, str(cell_id), (x, y))
        taken[max(0, y - 1):y + height + 1, max(0, x - 1):x + width + 1] = True
    return image

"""The classic backend: nuclei by threshold on blue, cells by seeded watershed on red + yellow. No weights.

Every length here is a multiple of the typical nucleus radius, measured on the image itself, so the same
code works on a 512 px synthetic field and a 3072 px HPA field at any magnification. The image is first
resampled so that nuclei have about ``WORK_NUCLEUS_RADIUS`` pixels of radius: enough detail for nucleus
outlines and cell borders, and 10-20x less work on real HPA fields, whose nuclei span 150-250 pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_li
from skimage.morphology import disk, local_maxima, reconstruction, remove_small_holes, remove_small_objects
from skimage.segmentation import watershed

from stages.classes import CHANNELS
from stages.segment.labels import LABEL_DTYPE, consistent_labels, resize_labels

RED, BLUE, YELLOW = (CHANNELS.index(name) for name in ("red", "blue", "yellow"))

WORK_NUCLEUS_RADIUS = 24.0  # pixels of nucleus radius at the working resolution
ESTIMATE_SIDE = 1024  # the first, rough nucleus-size measurement runs on at most this many pixels a side
MIN_ESTIMATE_AREA = 12  # pixels at that resolution: smaller specks are noise, not nuclei (radius < 2 px)
# Input is normalised 8-bit: a stain must rise this many grey levels above the background to be signal,
# so an all-dark or pure-noise image yields no object instead of a split of its noise.
MIN_CONTRAST = 4.0
# Smoothing, in nucleus radii: nuclei and the cell mask are thresholded after smoothing out texture
# (chromatin, fibres), while the watershed relief keeps the thin dark lines where touching cells meet.
NUCLEUS_SIGMA = 1 / 8
MASK_SIGMA = 1 / 4
RELIEF_SIGMA = 1 / 16
# A seam between touching nuclei: pixels this much darker than the grey closing of their surroundings.
SEAM_DEPTH = 0.2


def segment_classic(field: np.ndarray, settings) -> tuple[np.ndarray, np.ndarray]:
    """``(cells, nuclei)`` uint16 label images of an ``(H, W, 4)`` uint8 field (red, green, blue, yellow)."""
    rows, cols = field.shape[:2]
    blue = field[..., BLUE].astype(np.float32)
    radius = nucleus_radius(blue)
    if radius is None:
        empty = np.zeros((rows, cols), dtype=LABEL_DTYPE)
        return empty, empty.copy()
    factor = max(1.0, radius / WORK_NUCLEUS_RADIUS)
    cytoplasm = (field[..., RED].astype(np.float32) + field[..., YELLOW]) / 2
    work_radius = radius / factor
    nuclei = _nuclei(_downscale(blue, factor), work_radius, settings)
    cells = _cells(_downscale(cytoplasm, factor), nuclei, work_radius, settings)
    cells, nuclei = consistent_labels(cells, nuclei)  # at the working size: cheaper, and resizing keeps it
    return resize_labels(cells, rows, cols), resize_labels(nuclei, rows, cols)


def nucleus_radius(blue: np.ndarray) -> float | None:
    """The typical nucleus radius in pixels of ``blue``, from a rough threshold; None when nothing stands out."""
    factor = max(1.0, max(blue.shape) / ESTIMATE_SIDE)
    small = _smooth(_downscale(blue, factor), 1.0)
    threshold = _threshold(small)
    if threshold is None:
        return None
    blobs, _ = ndi.label(ndi.binary_fill_holes(small > threshold))
    areas = np.bincount(blobs.ravel())[1:]
    areas = areas[areas >= MIN_ESTIMATE_AREA]
    if not areas.size:
        return None
    # Blobs are mostly single nuclei, plus specks and a few merged clusters. The area-weighted median
    # ignores the many specks; singles are then those within 10x of it, and their plain median ignores
    # the clusters.
    ordered = np.sort(areas)
    weighted_median = ordered[np.searchsorted(np.cumsum(ordered), ordered.sum() / 2)]
    singles = areas[areas >= weighted_median / 10]
    return math.sqrt(float(np.median(singles)) / math.pi) * factor


def _nuclei(blue: np.ndarray, radius: float, settings) -> np.ndarray:
    smooth = _smooth(blue, radius * NUCLEUS_SIGMA)
    threshold = _threshold(smooth)
    if threshold is None:
        return np.zeros(blue.shape, dtype=np.int32)
    mask = ndi.binary_fill_holes(smooth > threshold)
    # opening cuts thin bridges between nuclei and the spurs of debris
    mask = ndi.binary_opening(mask, structure=disk(max(1, round(radius / 4))))
    min_area = int(settings.min_nucleus_fraction * math.pi * radius**2)
    mask = remove_small_objects(mask, max_size=min_area)
    # Touching nuclei meet along a dark seam; cutting the seams before the distance transform separates
    # them even where their joint outline shows no neck. Dark spots inside a nucleus (nucleoli) are
    # enclosed, so filling holes puts them back.
    closed = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE, disk(max(1, round(radius / 4))).astype(np.uint8))
    seams = smooth < (1 - SEAM_DEPTH) * closed
    distance = ndi.distance_transform_edt(ndi.binary_fill_holes(mask & ~seams))
    # One marker per dome of the distance map: two domes stay apart when the neck between them is
    # narrower than either by split x radius; shallower dents merge.
    domes = _lowered_domes(distance, settings.nucleus_split * radius)
    markers, _ = ndi.label(local_maxima(domes, connectivity=2) & (distance > 0), structure=np.ones((3, 3)))
    nuclei = watershed(-distance, markers, mask=mask)
    return remove_small_objects(nuclei, max_size=min_area)


def _lowered_domes(distance: np.ndarray, depth: float) -> np.ndarray:
    """``distance`` with each dome's top cut ``depth`` lower (h-dome reconstruction), so each dome's top
    becomes one flat plateau instead of scattered equal peak pixels. Objects never interact, so the
    reconstruction runs per object window: far fewer pixels to sort than the whole image."""
    objects, _ = ndi.label(distance > 0)
    domes = np.zeros_like(distance)
    for index, window in enumerate(ndi.find_objects(objects), start=1):
        inside = objects[window] == index
        local = distance[window]
        domes[window][inside] = reconstruction(local - depth, local)[inside]
    return domes


def _cells(cytoplasm: np.ndarray, nuclei: np.ndarray, radius: float, settings) -> np.ndarray:
    smooth = _smooth(cytoplasm, radius * MASK_SIGMA)
    threshold = _threshold(smooth)
    foreground = nuclei > 0
    if threshold is not None:
        foreground |= smooth > threshold
    # dim pockets up to a nucleus in size belong to the cell around them; larger holes are real gaps
    foreground = remove_small_holes(foreground, max_size=int(math.pi * radius**2))
    # Flooding from each nucleus over the inverted cytoplasm signal puts borders in the dark lines where
    # cells meet. The compactness term (per nucleus radius travelled, against intensity in units of the
    # cytoplasm's contrast) keeps noise and texture from dragging a border deep into a neighbour.
    relief = _smooth(cytoplasm, radius * RELIEF_SIGMA)
    contrast = max(float(np.percentile(relief[foreground], 90)) - (threshold or 0.0), MIN_CONTRAST)
    return watershed(-relief / contrast, nuclei, mask=foreground, compactness=settings.cell_compactness / radius)


def _threshold(smooth: np.ndarray) -> float | None:
    """Li's minimum cross-entropy threshold, kept at least MIN_CONTRAST above the background; None on a flat image."""
    background = float(np.percentile(smooth, 2))
    if float(smooth.max()) < background + MIN_CONTRAST:
        return None
    return max(float(threshold_li(smooth)), background + MIN_CONTRAST)


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.0, sigma), borderType=cv2.BORDER_REFLECT)


def _downscale(image: np.ndarray, factor: float) -> np.ndarray:
    if factor <= 1.0:
        return image
    rows, cols = image.shape[:2]
    size = (max(1, round(cols / factor)), max(1, round(rows / factor)))  # cv2 wants (width, height)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

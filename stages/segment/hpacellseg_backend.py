"""The hpacellseg backend: the official HPA CellSegmentator (DPN-92 U-Nets) plus its labelling step.

hpacellseg is not on PyPI and needs torch and the pickled weights, so it is imported lazily and every
missing piece is named with the way to get it. Three upstream traps are handled here:

- its constructor calls ``torch.load(path)``, which on torch >= 2.6 refuses pickled modules: the models are
  loaded here with ``weights_only=False`` and handed over as objects;
- its preprocessing calls ``skimage.transform.rescale(..., multichannel=True)``, a keyword removed in
  scikit-image 0.19: a small shim translates it to ``channel_axis``;
- it resizes predictions back with ``cv2.resize(pred, (rows, cols))``, which cv2 reads as (width, height),
  so non-square predictions come back transposed: every map is resized to the right shape here.

``hpacellseg.utils.label_cell`` is not called, not even on downsized maps for the 16th place's fast
labelling: it uses ``np.bool`` (gone since numpy 1.24), and its size thresholds are fixed pixel counts
for full-size maps, which would delete most nuclei of a 512 px map (a 2048 px field's typical nucleus
covers about 2000 px there, under the 2500 px minimum). :func:`label_cell` below is the same algorithm
with every area threshold scaled to the labelling size.
"""

from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, segmentation
from skimage.morphology import closing, disk, remove_small_holes, remove_small_objects

from stages.classes import CHANNELS
from stages.segment.labels import consistent_labels, resize_labels

RED, BLUE, YELLOW = (CHANNELS.index(name) for name in ("red", "blue", "yellow"))

HPACELLSEG_ARCHIVE = (
    "https://github.com/CellProfiling/HPA-Cell-Segmentation/archive/7b6dbc635253f08d392c96269e03149e2fb785c2.zip"
)
PYTORCH_ZOO_ARCHIVE = "https://github.com/haoxusci/pytorch_zoo/archive/e7f30cd9d2e900439f98d250ac309caf03a166b4.zip"
WEIGHTS_RECORD = "https://zenodo.org/records/4665863"
WEIGHT_FILES = {"nuclei_model": "dpn_unet_nuclei_v1.pth", "cell_model": "dpn_unet_cell_3ch_v1.pth"}
PACKAGES = {
    "torch": "pip install torch (the segment image ships it)",
    "hpacellseg": f"it is not on PyPI: pip install {HPACELLSEG_ARCHIVE}",
    "pytorch_zoo": (
        f"the pickled weights import it: pip install {PYTORCH_ZOO_ARCHIVE} "
        "(PyPI's 'pytorch-zoo' is an unrelated project)"
    ),
}
# hpacellseg.utils.label_cell's pixel-count thresholds, tuned on full-size (2048 px) HPA predictions
MARKER_MIN_AREA = 500
NUCLEUS_MIN_AREA = 2500
CELL_MIN_AREA = 5500
MASK_HOLE_AREA = 1000
MASK_MIN_AREA = 8
CLOSING_RADIUS = 6


class MissingPieceError(RuntimeError):
    """The hpacellseg backend lacks a package or a weight file; the message names each and how to get it."""


def missing_pieces(settings) -> list[str]:
    """One line per missing package or weight file (empty when the backend can run)."""
    problems = []
    for module, remedy in PACKAGES.items():
        try:
            importlib.import_module(module)
        except ImportError as error:
            dependency = error.name
            if dependency in (None, module):
                problems.append(f"package {module!r} is missing: {remedy}")
            else:
                problems.append(f"package {module!r} is installed but needs {dependency!r}: pip install {dependency}")
    for key, file_name in WEIGHT_FILES.items():
        path = getattr(settings, key)
        where = f"{path} does not exist" if path else "no path is configured"
        if not path or not Path(path).is_file():
            problems.append(
                f"weight file {key} ({file_name}): {where}; download {file_name} from Zenodo record 4665863 "
                f"({WEIGHTS_RECORD}) and set [segment] {key} to its path"
            )
    return problems


def segment_hpacellseg(fields: list[np.ndarray], settings) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(cells, nuclei)`` per ``(H, W, 4)`` field from the CellSegmentator networks and :func:`label_cell`."""
    segment = hpacellseg_segmenter(settings)
    return [segment(field) for field in fields]


def hpacellseg_segmenter(settings):
    """Load the networks once; return the function that segments one field with them."""
    segmentator = _load_segmentator(settings)

    def segment(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nuclei_pred = segmentator.pred_nuclei([field[..., BLUE]])[0]
        cell_pred = segmentator.pred_cells([[field[..., RED]], [field[..., YELLOW]], [field[..., BLUE]]])[0]
        return label_predictions(nuclei_pred, cell_pred, field.shape[:2], settings)

    return segment


def label_predictions(nuclei_pred, cell_pred, shape, settings) -> tuple[np.ndarray, np.ndarray]:
    """Label the two prediction maps of one image of ``shape`` (rows, cols), at full size or, with
    ``fast_label``, at ``label_size`` squared with proportionally smaller size thresholds."""
    rows, cols = shape
    size = (settings.label_size, settings.label_size) if settings.fast_label else (rows, cols)
    # Resizing whatever shape came back (transposed or not) straight to the labelling size maps the image
    # extent onto it the same way, so the transposition bug costs nothing.
    nuclei_map, cell_map = (resize_map(pred, *size) for pred in (nuclei_pred, cell_pred))
    nuclei, cells = label_cell(nuclei_map, cell_map, area_scale=size[0] * size[1] / (rows * cols))
    cells, nuclei = consistent_labels(cells, nuclei)  # uint16 before resizing: cv2 has no int64 resize
    return resize_labels(cells, rows, cols), resize_labels(nuclei, rows, cols)


def resize_map(pred: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A (h, w, 3) uint8 prediction map resampled to ``rows x cols`` (cv2 wants (width, height))."""
    if pred.shape[:2] == (rows, cols):
        return pred
    return cv2.resize(pred, (cols, rows), interpolation=cv2.INTER_AREA)


def label_cell(nuclei_pred: np.ndarray, cell_pred: np.ndarray, area_scale: float = 1.0):
    """``(nuclei, cells)`` label images from uint8 prediction maps (hpacellseg.utils.label_cell's algorithm).

    ``area_scale`` multiplies every area threshold (and the closing radius by its square root): 1 for
    full-size maps; (512 x 512) / (H x W) at 512 px, which is the 16th place's "divide by 16" for 2048 px
    images. Two upstream slips are not copied: the uint8 sum of the border channels (it wraps around) and
    the uint8 cast of the cell labels (more than 255 cells would alias).
    """

    def area(pixels: int) -> int:
        return max(1, round(pixels * area_scale))

    nuclei_prob = nuclei_pred[..., 2] / 255.0
    border = (nuclei_pred[..., 1].astype(np.float64) + cell_pred[..., 1]) / 255.0
    cell_prob = cell_pred[..., 2] / 255.0
    cell_border = cell_pred[..., 1] / 255.0 > 0.05

    # nuclei: markers where the nucleus probability is clear of any border, flooded over the nucleus mask
    markers = remove_small_objects(nuclei_prob * (1 - border > 0.05) > 0.15, max_size=area(MARKER_MIN_AREA) - 1)
    mask = remove_small_holes(nuclei_prob > 0.4, max_size=area(MASK_HOLE_AREA) - 1)
    mask = remove_small_objects(mask, max_size=area(MASK_MIN_AREA) - 1)
    nuclei = segmentation.watershed(mask.astype(np.uint8), ndi.label(markers)[0], mask=mask, watershed_line=True)
    nuclei = measure.label(remove_small_objects(nuclei, max_size=area(NUCLEUS_MIN_AREA) - 1))

    # cells: nuclei flooded over the cell probability, then grown into the border class
    threshold = max(0.22, filters.threshold_otsu(cell_prob) * 0.5)
    distance = np.clip(cell_pred[..., 2].astype(np.float64), 255 * threshold, None)
    cells = segmentation.watershed(-distance, nuclei, mask=(cell_prob > threshold) & ~cell_border)
    cells = remove_small_objects(cells, max_size=area(CELL_MIN_AREA) - 1)
    cells = _fill_holes(closing(cells, disk(max(1, round(CLOSING_RADIUS * math.sqrt(area_scale))))))
    cells = segmentation.watershed(-distance, cells, mask=(cells > 0) | cell_border)
    cells = measure.label(_fill_holes(cells) > 0)
    cells = measure.label(remove_small_objects(cells, max_size=area(CELL_MIN_AREA) - 1))

    kept = measure.label((cells > 0) & (nuclei > 0))
    kept = remove_small_objects(kept, max_size=area(NUCLEUS_MIN_AREA) - 1)
    return np.where(kept > 0, cells, 0), cells


def _fill_holes(labels: np.ndarray) -> np.ndarray:
    """Holes filled, touching objects kept apart by their boundary, and everything relabelled."""
    inner = np.where(segmentation.find_boundaries(labels), 0, labels)
    return ndi.label(ndi.binary_fill_holes(inner > 0))[0]


def _load_segmentator(settings):
    problems = missing_pieces(settings)
    if problems:
        raise MissingPieceError("the hpacellseg segment backend cannot run:\n- " + "\n- ".join(problems))
    import torch
    from hpacellseg import cellsegmentator

    if "multichannel" not in inspect.signature(cellsegmentator.transform.rescale).parameters:
        cellsegmentator.transform = _RescaleShim()
    device = torch.device(settings.device)
    models = []
    for key in WEIGHT_FILES:
        model = torch.load(getattr(settings, key), map_location=device, weights_only=False)
        models.append(model.module if isinstance(model, torch.nn.DataParallel) else model)
    return cellsegmentator.CellSegmentator(
        *models, scale_factor=settings.scale_factor, device=settings.device, padding=True, multi_channel_model=True
    )


class _RescaleShim:
    """Stands in for ``skimage.transform`` inside hpacellseg: ``rescale(multichannel=...)`` -> ``channel_axis``."""

    @staticmethod
    def rescale(image, scale, multichannel=False, **options):
        from skimage import transform

        return transform.rescale(image, scale, channel_axis=-1 if multichannel else None, **options)

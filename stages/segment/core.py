"""segment stage logic: field of view in, cell and nucleus label images and a per-cell table out.

Pure functions on arrays and a frozen settings object; no file I/O, no Luigi. Two backends:
``classic`` (CPU, no weights, the embedded default) and ``hpacellseg`` (the official HPA CellSegmentator).
Both return uint16 ``(cells, nuclei)`` with ids 1..N where cell k contains nucleus k.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stages.segment.classic import segment_classic
from stages.segment.contract import CELLS_COLUMNS, IMAGES_COLUMNS
from stages.segment.hpacellseg_backend import MissingPieceError, hpacellseg_segmenter, segment_hpacellseg
from stages.segment.labels import cell_table, consistent_labels

__all__ = [
    "BACKENDS",
    "MissingPieceError",
    "SegmentSettings",
    "cell_table",
    "consistent_labels",
    "make_segmenter",
    "segment_classic",
    "segment_hpacellseg",
    "segment_shard",
]

BACKENDS = ("classic", "hpacellseg")


@dataclass(frozen=True)
class SegmentSettings:
    backend: str = "classic"
    # hpacellseg: local paths of the pickled models (Zenodo record 4665863)
    nuclei_model: str = ""
    cell_model: str = ""
    device: str = "cpu"
    # hpacellseg: the 16th-place speed trick, label at label_size^2 instead of full size
    fast_label: bool = True
    scale_factor: float = 0.25  # hpacellseg: image scale fed to the networks
    label_size: int = 512
    # classic, all relative to the typical nucleus measured on the image:
    min_nucleus_fraction: float = 0.2  # smaller nuclei (as a fraction of the typical area) are debris
    nucleus_split: float = 0.3  # touching nuclei split where the neck is this many radii narrower
    cell_compactness: float = 0.15  # how strongly a cell stays near its nucleus (0 = intensity alone)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown segment backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if not 0 < self.scale_factor <= 1:
            raise ValueError(f"scale_factor must be in (0, 1], got {self.scale_factor}")
        if self.label_size < 32:
            raise ValueError(f"label_size must be at least 32 pixels, got {self.label_size}")

    def content(self) -> dict:
        """The settings that change the labels: the chosen backend's own, never the device."""
        if self.backend == "classic":
            keys = ("backend", "min_nucleus_fraction", "nucleus_split", "cell_compactness")
        else:
            keys = ("backend", "nuclei_model", "cell_model", "fast_label", "scale_factor", "label_size")
        return {key: getattr(self, key) for key in keys}


def make_segmenter(settings: SegmentSettings) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The configured backend as a function of one field -> ``(cells, nuclei)``. The hpacellseg networks
    load here, once, so a caller can stream a shard's fields through without holding them all."""
    if settings.backend == "hpacellseg":
        return hpacellseg_segmenter(settings)
    return functools.partial(segment_classic, settings=settings)


def segment_shard(
    image_ids: Sequence[str],
    load_field: Callable[[str], np.ndarray],
    segment_field: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    save_labels: Callable[[str, np.ndarray, np.ndarray], None],
    progress: Callable[[str, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shard's images through a segmenter, one field at a time: ``(cells table, images table)``.

    ``load_field(ID)``: the image's ``(H, W, 4)`` field; ``segment_field``: :func:`make_segmenter`'s
    function (or any field -> ``(cells, nuclei)``); ``save_labels(ID, cells, nuclei)`` receives each image's
    label images as soon as they exist, so a shard's label images are never all in memory. The cells table
    (``contract.CELLS_COLUMNS``) has every cell of every image in image order; the images table
    (``contract.IMAGES_COLUMNS``) one row per image, an image without cells included.
    ``progress(message, percent)``, if given, hears of each image before it is segmented.
    """
    tables, sizes = [], []
    for number, image_id in enumerate(image_ids, start=1):
        if progress is not None:
            progress(f"{image_id}: image {number}/{len(image_ids)}", 100 * (number - 1) // len(image_ids))
        field = load_field(image_id)
        cells, nuclei = segment_field(field)
        save_labels(image_id, cells, nuclei)
        table = cell_table(cells)
        table.insert(0, "ID", image_id)
        tables.append(table)
        sizes.append((image_id, field.shape[1], field.shape[0], len(table)))
    # An empty shard still gets both tables (headers only): downstream readers expect the files' columns.
    cells_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(CELLS_COLUMNS))
    return cells_table, pd.DataFrame(sizes, columns=list(IMAGES_COLUMNS))

"""The labelled overlay of ``python -m stages.predict`` (pure): the composite with cell outlines and each cell's
top classes written at its centroid, for a single image looked at alone. The report itself draws ids only
(:mod:`stages.submit.report_draw`) and lists the classes in a table, so no text hides the green signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

from stages.classes import CLASS_NAMES
from stages.fields import composite

OUTLINE = (255, 255, 255)
TEXT = (255, 255, 0)


def annotate(field: np.ndarray, cells: np.ndarray, top: Mapping[int, Sequence[tuple[int, float]]],
             max_side: int = 768) -> np.ndarray:
    """(h, w, 3) RGB uint8: the HPA composite shrunk to at most ``max_side``, cell outlines in white and
    each cell's top classes written at its centroid."""
    rows, cols = cells.shape
    scale = min(1.0, max_side / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    image = np.ascontiguousarray(cv2.resize(composite(field), size, interpolation=cv2.INTER_AREA))
    small = cv2.resize(cells, size, interpolation=cv2.INTER_NEAREST_EXACT)
    image[find_boundaries(small, mode="inner")] = OUTLINE
    ids = [cell_id for cell_id in top if (cells == cell_id).any()] if top else []
    if not ids:
        return image
    centres = ndimage.center_of_mass(np.ones_like(cells), cells, ids)
    font_scale = max(0.3, 0.35 * size[0] / 512)
    for cell_id, (cy, cx) in zip(ids, centres):
        lines = [f"{CLASS_NAMES[klass][:18]} {score:.2f}" for klass, score in top[cell_id]]
        y = int(cy * scale) - 6 * (len(lines) - 1)
        for line in lines:
            (width, height), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            x = int(np.clip(cx * scale - width / 2, 0, max(0, size[0] - width)))
            y_text = int(np.clip(y, height, size[1] - 1))
            cv2.putText(image, line, (x, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, line, (x, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT, 1, cv2.LINE_AA)
            y += height + 4
    return image

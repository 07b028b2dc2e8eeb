"""Hand-made label images and tables for the evaluation tests."""

import numpy as np
import pandas as pd

from stages.classes import SCORE_COLUMNS


def labels_with(shape, boxes):
    """A label image with cell i+1 filling boxes[i] = (row0, row1, col0, col1)."""
    image = np.zeros(shape, np.uint16)
    for index, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        image[r0:r1, c0:c1] = index
    return image


def truth_table(image_id, cell_labels):
    return pd.DataFrame({"ID": image_id, "cell_id": list(cell_labels), "Label": list(cell_labels.values())})


def score_table(image_id, per_cell):
    """per_cell: {cell_id: {class: confidence}}; unnamed classes score 0 (all 19 are predicted)."""
    rows = []
    for cell_id, classes in per_cell.items():
        row = {"ID": image_id, "cell_id": cell_id, **{column: 0.0 for column in SCORE_COLUMNS}}
        row.update({f"class_{klass}": value for klass, value in classes.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=["ID", "cell_id", *SCORE_COLUMNS])

"""Images without any cell are worth a warning: the Segment task names up to five of them and counts them."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from stages.segment import stage as segment_stage


def one_cell(field):
    cells = np.zeros(field.shape[:2], np.uint16)
    cells[2:6, 2:6] = 1
    return cells, cells.copy()


@pytest.mark.parametrize("blank", [0, 2, 7])
def test_images_without_cells_are_reported_once(monkeypatch, caplog, blank):
    ids = [f"blank{index}" for index in range(blank)] + ["cells0", "cells1"]
    rows = pd.DataFrame({"ID": ids})
    monkeypatch.setattr(segment_stage, "make_segmenter", lambda settings: lambda field: (
        one_cell(field) if field[0, 0, 0] else (np.zeros(field.shape[:2], np.uint16),) * 2))
    progress = []
    ctx = SimpleNamespace(task=SimpleNamespace(task_id="Segment_test"), rows=lambda: rows,
                          field=lambda row: np.full((8, 8, 4), row["ID"].startswith("cells"), np.uint8),
                          write=lambda *args, **kwargs: None, progress=lambda *args: progress.append(args))
    with caplog.at_level(logging.INFO, logger="luigi-interface"):
        outputs = segment_stage.run(ctx)
    warnings = [record.getMessage() for record in caplog.records
                if record.name == "luigi-interface" and record.levelno == logging.WARNING]
    images = outputs[segment_stage.contract.IMAGES]
    assert images["cells"].tolist() == [0] * blank + [1, 1]
    if blank == 0:
        assert warnings == []
    elif blank == 2:
        assert warnings == ["Segment_test: 2 of 4 image(s) have no cell: blank0, blank1 (they get no score row "
                            "and no prediction)"]
    else:
        assert warnings == ["Segment_test: 7 of 9 image(s) have no cell: blank0, blank1, blank2, blank3, blank4, "
                            "... (they get no score row and no prediction)"]

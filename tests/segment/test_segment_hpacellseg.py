"""The hpacellseg backend without the package: missing pieces are named, labelling works on fake maps.

hpacellseg cannot be installed here (it comes from GitHub), so the networks never run in these tests;
the prediction maps below have the networks' output format: (H, W, 3) uint8, channel 2 the object
class, channel 1 the border class.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import cv2
import numpy as np
import pytest

from stages.segment.core import MissingPieceError, SegmentSettings, segment_hpacellseg
from stages.segment.hpacellseg_backend import WEIGHT_FILES, label_cell, label_predictions, missing_pieces, resize_map

ROWS, COLS = 768, 1280  # non-square, so a transposed resize would show
# (centre row, centre column) of each cell; nuclei radius 60 px, cells radius 170 px
CENTRES = [(200, 250), (520, 700), (250, 1050)]


def fake_maps() -> tuple[np.ndarray, np.ndarray]:
    nuclei_pred = np.zeros((ROWS, COLS, 3), np.uint8)
    cell_pred = np.zeros((ROWS, COLS, 3), np.uint8)
    for row, col in CENTRES:
        cv2.circle(nuclei_pred, (col, row), 60, (0, 0, 255), -1)  # cv2 points are (x, y)
        cv2.circle(cell_pred, (col, row), 170, (0, 0, 255), -1)
    return nuclei_pred, cell_pred


def weights(tmp_path) -> SegmentSettings:
    paths = {}
    for key, name in WEIGHT_FILES.items():
        (tmp_path / name).write_bytes(b"not really a model")
        paths[key] = str(tmp_path / name)
    return SegmentSettings(backend="hpacellseg", **paths)


@pytest.fixture
def fake_packages(monkeypatch):
    """Importable stand-ins for the packages, so only the weight files decide."""
    for name in ("hpacellseg", "pytorch_zoo"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_missing_package_names_it_and_the_archive_to_install(tmp_path):
    if any(importlib.util.find_spec(name) for name in ("hpacellseg", "pytorch_zoo")):
        pytest.skip("hpacellseg is installed here")
    with pytest.raises(MissingPieceError) as error:
        segment_hpacellseg([np.zeros((64, 64, 4), np.uint8)], weights(tmp_path))
    message = str(error.value)
    assert "package 'hpacellseg' is missing" in message
    assert "HPA-Cell-Segmentation/archive/7b6dbc635253f08d392c96269e03149e2fb785c2" in message
    assert "package 'pytorch_zoo' is missing" in message
    assert "pytorch_zoo/archive/e7f30cd9d2e900439f98d250ac309caf03a166b4" in message
    assert "weight file" not in message  # the weights are there


def test_missing_weights_name_each_file_and_where_to_get_it(tmp_path, fake_packages):
    pytest.importorskip("torch")
    settings = SegmentSettings(backend="hpacellseg", nuclei_model=str(tmp_path / "absent.pth"))
    with pytest.raises(MissingPieceError) as error:
        segment_hpacellseg([np.zeros((64, 64, 4), np.uint8)], settings)
    message = str(error.value)
    assert "package" not in message
    assert f"nuclei_model (dpn_unet_nuclei_v1.pth): {tmp_path / 'absent.pth'} does not exist" in message
    assert "cell_model (dpn_unet_cell_3ch_v1.pth): no path is configured" in message
    assert message.count("Zenodo record 4665863") == 2


def test_nothing_missing_when_packages_and_weights_are_there(tmp_path, fake_packages):
    pytest.importorskip("torch")
    assert missing_pieces(weights(tmp_path)) == []


@pytest.mark.parametrize("fast_label", [True, False])
def test_labels_keep_the_image_orientation(fast_label):
    nuclei_pred, cell_pred = fake_maps()
    settings = SegmentSettings(backend="hpacellseg", fast_label=fast_label)
    cells, nuclei = label_predictions(nuclei_pred, cell_pred, (ROWS, COLS), settings)
    assert cells.shape == nuclei.shape == (ROWS, COLS)
    assert cells.dtype == nuclei.dtype == np.uint16
    assert int(cells.max()) == len(CENTRES)
    for row, col in CENTRES:
        cell = cells[row, col]
        assert cell > 0 and nuclei[row, col] == cell
        mask = cells == cell
        area = mask.sum()
        assert 0.8 < area / (np.pi * 170**2) < 1.1  # the whole cell, not a squashed or clipped one
        ys, xs = np.nonzero(mask)
        assert abs(ys.mean() - row) < 5 and abs(xs.mean() - col) < 5


def test_transposed_maps_from_hpacellseg_give_the_same_labels():
    """hpacellseg's cv2.resize(pred, (rows, cols)) returns non-square maps as (cols, rows): stretched, not
    rotated. Labelling must map them back onto the image the same way as correctly shaped maps."""
    nuclei_pred, cell_pred = fake_maps()
    settings = SegmentSettings(backend="hpacellseg", fast_label=True)
    expected, _ = label_predictions(nuclei_pred, cell_pred, (ROWS, COLS), settings)
    transposed = [cv2.resize(pred, (ROWS, COLS), interpolation=cv2.INTER_AREA) for pred in (nuclei_pred, cell_pred)]
    assert transposed[0].shape[:2] == (COLS, ROWS)
    cells, _ = label_predictions(*transposed, (ROWS, COLS), settings)
    agreement = ((cells > 0) == (expected > 0)).mean()
    assert cells.shape == (ROWS, COLS) and agreement > 0.99


def test_fast_label_scales_the_size_thresholds():
    """hpacellseg drops nuclei under 2500 px at full size. A 5000 px nucleus survives and a 2000 px one
    does not, at full size and at 512 px with scaled thresholds alike; at 512 px the unscaled threshold
    would wrongly drop the 5000 px nucleus (it covers ~1340 px there)."""
    nuclei_pred, cell_pred = fake_maps()
    for (row, col), nucleus, cell in (((620, 250), 40, 100), ((700, 1200), 25, 60)):  # ~5030 and ~1960 px
        cv2.circle(nuclei_pred, (col, row), nucleus, (0, 0, 255), -1)
        cv2.circle(cell_pred, (col, row), cell, (0, 0, 255), -1)
    for fast_label in (True, False):
        settings = SegmentSettings(backend="hpacellseg", fast_label=fast_label)
        cells, _ = label_predictions(nuclei_pred, cell_pred, (ROWS, COLS), settings)
        assert int(cells.max()) == len(CENTRES) + 1
        assert cells[620, 250] > 0 and cells[700, 1200] == 0
    small = [resize_map(pred, 512, 512) for pred in (nuclei_pred, cell_pred)]
    unscaled_nuclei, _ = label_cell(*small, area_scale=1.0)
    assert unscaled_nuclei[round(620 * 512 / ROWS), round(250 * 512 / COLS)] == 0

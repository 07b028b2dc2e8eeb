"""The Segment task over a tiny synthetic test set, through Luigi: files, tables and an image without cells."""

from __future__ import annotations

import cv2
import luigi
import luigi.configuration
import numpy as np
import pandas as pd
import pytest

from stages import Segment, SegmentAll, storage
from stages.classes import CHANNELS
from stages.dev.synth.core import write_dataset
from stages.segment import contract
from stages.segment.labels import cell_table
from stages.segment.stage import segment




@pytest.fixture
def dataset(tmp_path, pipeline_settings):
    """Three synthetic 200 x 280 fields plus an all-black one, in shards of two."""
    data = tmp_path / "data"
    write_dataset(str(data), 0, 3, 200, 280, seed=2)
    for channel in CHANNELS:
        cv2.imwrite(str(data / "test" / f"dark_{channel}.png"), np.zeros((200, 280), np.uint8))
    listed = pd.read_csv(data / "sample_submission.csv", dtype=str, keep_default_na=False)
    listed.loc[len(listed)] = {"ID": "dark", "ImageWidth": "280", "ImageHeight": "200", "PredictionString": ""}
    listed.to_csv(data / "sample_submission.csv", index=False)
    pipeline_settings(input=str(data), work=str(tmp_path / "work"), shard_size=2)
    return sorted(listed["ID"])


def test_segment_all_writes_every_shard(dataset):
    assert luigi.build([SegmentAll(split="test")], local_scheduler=True, log_level="WARNING")
    seen = []
    for shard in range(2):
        folder = Segment(split="test", shard=shard).folder()
        assert storage.is_done(folder)
        cells, images = contract.CELLS.read(folder), contract.IMAGES.read(folder)
        assert tuple(cells.columns) == contract.CELLS_COLUMNS
        assert tuple(images.columns) == contract.IMAGES_COLUMNS
        for image in images.itertuples(index=False):
            labels, nuclei = contract.LABELS.read(folder, image_id=image.ID)
            assert labels.shape == nuclei.shape == (image.height, image.width) == (200, 280)
            assert labels.dtype == np.uint16 and image.cells == int(labels.max())
            rows = cells[cells["ID"] == image.ID].drop(columns="ID").reset_index(drop=True)
            pd.testing.assert_frame_equal(rows, cell_table(labels), check_dtype=False)
            seen.append((image.ID, image.cells))
    counts = dict(seen)
    assert sorted(counts) == dataset
    assert counts["dark"] == 0 and all(count > 0 for image_id, count in counts.items() if image_id != "dark")


def test_settings_come_from_the_segment_section(segment_config):
    segment_config(backend="hpacellseg", nuclei_model="n.pth", cell_model="c.pth", device="cuda", fast_label="false")
    settings = segment().settings()
    assert (settings.backend, settings.device, settings.fast_label) == ("hpacellseg", "cuda", False)
    content = Segment(split="test", shard=0).content_settings()
    assert "device" not in content and content["nuclei_model"] == "n.pth"


def test_a_changed_setting_changes_the_output_folder_but_the_device_does_not(segment_config):
    folders = {}
    for name, values in {"default": {}, "cuda": {"device": "cuda"}, "hpacellseg": {"backend": "hpacellseg"}}.items():
        segment_config(**values)
        folders[name] = Segment(split="test", shard=0).folder()
    assert folders["default"] == folders["cuda"] != folders["hpacellseg"]

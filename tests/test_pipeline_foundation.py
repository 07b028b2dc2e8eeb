"""The Luigi micro-batch DAG up to the tiles: reruns, S3 against local, command line, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import luigi
import numpy as np
import pytest
from conftest import REAL_DATA

from stages import Manifest, Segment, SegmentAll, Tile, TileAll, storage
from stages.dev.synth.core import write_dataset
from stages.inputs import load_manifest
from stages.zoo import get_profile

REPO = Path(__file__).resolve().parents[1]


def build(*tasks) -> bool:
    return luigi.build(list(tasks), local_scheduler=True, workers=1, log_level="WARNING")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("data"))
    write_dataset(folder, 2, 6, 160, 160, 3)
    return folder


def marker_bytes_and_mtimes(task_class, shards: int) -> list[float]:
    return [os.path.getmtime(task_class(split="test", shard=shard).output().uri) for shard in range(shards)]


def test_deleting_one_shard_recomputes_that_shard_alone(small_data, tmp_path, pipeline_settings):
    pipeline_settings(input=small_data, work=str(tmp_path / "work"), profile="demo", shard_size=2)
    assert build(TileAll(split="test"))
    assert len(load_manifest("test")) == 6
    tiles_before = marker_bytes_and_mtimes(Tile, 3)
    segments_before = marker_bytes_and_mtimes(Segment, 3)
    storage.remove(Tile(split="test", shard=1).folder())
    assert not TileAll(split="test").complete()

    assert build(TileAll(split="test"))
    tiles_after = marker_bytes_and_mtimes(Tile, 3)
    assert tiles_after[0] == tiles_before[0] and tiles_after[2] == tiles_before[2]
    assert tiles_after[1] > tiles_before[1]
    assert marker_bytes_and_mtimes(Segment, 3) == segments_before


def test_changed_setting_gets_its_own_artifacts(small_data, tmp_path, pipeline_settings):
    pipeline_settings(input=small_data, work=str(tmp_path / "work"), profile="demo", shard_size=2)
    first = Tile(split="test", shard=0).folder()
    pipeline_settings(shard_size=3)
    second = Tile(split="test", shard=0).folder()
    assert first != second and "/tile/" in first and "/test/shard-00000." in first


def tile_arrays(split: str) -> list[np.ndarray]:
    shards = int(load_manifest(split)["shard"].max()) + 1
    arrays = []
    for shard in range(shards):
        folder = Tile(split=split, shard=shard).folder()
        arrays += [storage.read_array(storage.join(folder, name)) for name in ("tiles.npy", "image_on_cell.npy")]
        arrays.append(storage.read_bytes(storage.join(folder, "index.csv")))
    return arrays


def test_tiles_on_s3_equal_tiles_on_local_folder(s3_root, tmp_path, pipeline_settings):
    local_data = str(tmp_path / "data")
    write_dataset(local_data, 32, 0, 192, 192, 11)
    s3_data = storage.join(s3_root, "data")
    write_dataset(s3_data, 32, 0, 192, 192, 11)

    pipeline_settings(input=local_data, work=str(tmp_path / "work"), profile="demo", shard_size=8)
    assert build(TileAll(split="train"))
    local = tile_arrays("train")

    pipeline_settings(input=s3_data, work=storage.join(s3_root, "work"))
    assert build(TileAll(split="train"))
    assert Tile(split="train", shard=0).folder().startswith("s3://")
    remote = tile_arrays("train")

    assert len(local) == len(remote) == 4 * 3
    for mine, theirs in zip(local, remote):
        if isinstance(mine, bytes):
            assert mine == theirs
        else:
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert sum(array.shape[0] for array in local[::3]) > 32  # several cells per image really were tiled


def run_luigi(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "luigi", "--module", "stages", *args]
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(REPO / "luigi.cfg"), "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_command_line_run_and_failure_exit_code(small_data, tmp_path):
    common = ["--pipeline-input", small_data, "--pipeline-work", str(tmp_path / "work"), "--pipeline-profile", "demo"]
    done = run_luigi("SegmentAll", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    broken = tmp_path / "broken"
    write_dataset(str(broken), 0, 2, 96, 96, 5)
    victim = sorted((broken / "test").glob("*_green.png"))[1]
    victim.write_bytes(b"not a png")
    failed = run_luigi("SegmentAll", "--pipeline-input", str(broken), "--pipeline-work", str(tmp_path / "w2"),
                       cwd=tmp_path)
    # the input is validated while the graph is built, before any work: [retcode] scheduling_error
    assert failed.returncode == 35, failed.stderr[-3000:]
    assert victim.name in failed.stderr and "not a readable" in failed.stderr
    assert "Traceback" not in failed.stderr  # one message for the user, naming the file


def test_bad_image_leaves_no_partial_artifact(tmp_path, pipeline_settings):
    data = tmp_path / "data"
    write_dataset(str(data), 0, 3, 96, 96, 8)
    (sorted((data / "test").glob("*_blue.png"))[2]).unlink()
    pipeline_settings(input=str(data), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    assert not build(SegmentAll(split="test"))
    assert not (tmp_path / "work" / "segment").exists()


def test_sixteen_bit_non_square_and_empty_images_flow_through(tmp_path, pipeline_settings):
    data = tmp_path / "data"
    write_dataset(str(data), 0, 1, 120, 200, 4)
    test = data / "test"
    (image_id,) = {path.name.rsplit("_", 1)[0] for path in test.glob("*.png")}
    for path in test.glob(f"{image_id}_*.png"):
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.uint16) * 257
        cv2.imwrite(str(path), pixels)  # 16-bit PNG
    for channel in ("red", "green", "blue", "yellow"):
        cv2.imwrite(str(test / f"dark_1_{channel}.png"), np.zeros((64, 64), np.uint8))
    (data / "sample_submission.csv").write_text(
        "ID,ImageWidth,ImageHeight,PredictionString\n" f"{image_id},200,120,\ndark_1,64,64,\n"
    )
    pipeline_settings(input=str(data), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    assert build(TileAll(split="test"))
    segment_folder = Segment(split="test", shard=0).folder()
    images = storage.read_table(storage.join(segment_folder, "images.csv")).set_index("ID")
    assert images.loc["dark_1", "cells"] == 0
    assert (images.loc[image_id, "width"], images.loc[image_id, "height"]) == (200, 120)
    assert images.loc[image_id, "cells"] >= 1
    index = storage.read_table(storage.join(Tile(split="test", shard=0).folder(), "index.csv"))
    assert set(index["ID"]) == {image_id}


def test_real_fields_of_view_segment_and_tile(tmp_path, pipeline_settings):
    """Three real HPA fields (1728 and 2048 px, PNG and colourised JPEG). At this magnification a field
    holds 10-30 cells (nuclei 150-250 px across): under 5 means cells merged or lost, over 60 that cells were
    split or noise was kept. tests/segment/test_segment_real.py checks each image against a count by eye."""
    pipeline_settings(input=str(REAL_DATA), work=str(tmp_path / "work"), profile="demo", shard_size=2)
    assert build(TileAll(split="test"))
    counts = {}
    for shard in range(2):
        table = storage.read_table(storage.join(Segment(split="test", shard=shard).folder(), "images.csv"))
        counts.update(zip(table["ID"], table["cells"]))
    assert set(counts) == {"57_F11_1", "89_B5_1", "B2AI_1_untreated_A1_R1"}
    assert all(5 <= count <= 60 for count in counts.values()), counts
    tiles = storage.read_array(storage.join(Tile(split="test", shard=0).folder(), "tiles.npy"))
    size = get_profile("demo").tile_size
    assert tiles.shape[1:] == (size, size, 3) and tiles.max() > 0
    assert Manifest(split="test").complete()

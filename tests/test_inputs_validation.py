"""Validation before any work (issue 12.3): the Manifest task checks the split's table and every image's
channel headers while it is built, before the first Segment, and fails with one message listing every
problem (file, line, ID), or leaves bad images out and lists them (``[pipeline] bad_images = skip``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import luigi
import numpy as np
import pandas as pd
import pytest

from stages import Manifest, SegmentAll, inputs, storage
from stages.classes import CHANNELS
from stages.config import pipeline
from stages.dev.synth.core import write_dataset
from stages.manifest import contract
from stages.manifest.core import InputError
from stages.manifest.validate import InputErrorLog

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


@pytest.fixture
def data(tmp_path, pipeline_settings) -> Path:
    """A valid base: 4 training and 2 test images of 64 px, in shards of 2; each test breaks it its way."""
    folder = tmp_path / "data"
    write_dataset(str(folder), 4, 2, SIZE, SIZE, 5)
    pipeline_settings(input=str(folder), work=str(tmp_path / "work"), profile="demo", shard_size=2)
    return folder


def table(data: Path, split: str = "train") -> pd.DataFrame:
    return pd.read_csv(data / ("train.csv" if split == "train" else "sample_submission.csv"), dtype=str,
                       keep_default_na=False)


def ids(data: Path, split: str = "train") -> list[str]:
    return table(data, split)["ID"].tolist()


def channel(data: Path, image_id: str, name: str, split: str = "train") -> Path:
    return data / split / f"{image_id}_{name}.png"


def rename_image(data: Path, old: str, new: str) -> None:
    for path in (data / "train").glob(f"{old}_*.png"):
        path.rename(path.with_name(new + path.name[len(old):]))
    listed = table(data)
    listed["ID"] = listed["ID"].replace(old, new)
    listed.to_csv(data / "train.csv", index=False)


def manifest_error(split: str = "train") -> str:
    inputs.refresh()  # a new run: the input changed since the test's last look
    with pytest.raises(InputError) as caught:
        Manifest(split=split).run_here()
    assert not storage.exists(Manifest(split=split).folder())  # nothing half-made is left
    return str(caught.value)


def test_the_valid_base_passes_and_lists_no_rejected_image(data):
    Manifest(split="train").run_here()
    folder = Manifest(split="train").folder()
    assert contract.MANIFEST.read(folder)["ID"].tolist() == sorted(ids(data))
    assert contract.REJECTED.read(folder).empty


def test_a_missing_channel_names_the_expected_file_the_line_and_the_id(data):
    victim = ids(data)[2]
    channel(data, victim, "yellow").unlink()
    message = manifest_error()
    assert f"{data}/train/{victim}_yellow.png, ID {victim} (train.csv line 4): the yellow channel file is missing" in (
        message)
    assert message.startswith(f"the train split's input ({data}/train, {data}/train.csv) has 1 problem; nothing runs")


def test_unreadable_and_truncated_headers(data):
    first, second = ids(data)[:2]
    channel(data, first, "green").write_bytes(b"not a png")
    channel(data, second, "red").write_bytes(channel(data, second, "red").read_bytes()[:20])
    channel(data, second, "blue").write_bytes(b"")
    message = manifest_error()
    assert f"{first}_green.png, ID {first} (train.csv line 2): not a readable PNG, JPEG or TIFF image: neither" in (
        message)
    assert f"{second}_red.png, ID {second} (train.csv line 3): not a readable PNG, JPEG or TIFF image: the PNG " \
           f"ends before its IHDR chunk" in message
    assert f"{second}_blue.png, ID {second} (train.csv line 3): the file is empty" in message
    assert "has 3 problems" in message


def test_channels_of_different_sizes(data):
    victim = ids(data)[0]
    cv2.imwrite(str(channel(data, victim, "blue")), np.zeros((SIZE // 2, SIZE), np.uint8))
    message = manifest_error()
    assert f"ID {victim} (train.csv line 2): the channels differ in size: red 64x64, green 64x64, blue 64x32, " \
           f"yellow 64x64" in message


def test_the_pixel_cap_refuses_from_the_header(data, pipeline_settings):
    pipeline_settings(max_pixels=SIZE * SIZE - 1)
    message = manifest_error("test")
    assert "64x64 = 4,096 pixels is over the cap of 4,095 ([pipeline] max_pixels)" in message
    assert message.count("over the cap") == 2 * 4  # every channel of both test images
    pipeline_settings(max_pixels=SIZE * SIZE)
    Manifest(split="test").run_here()


def test_other_formats_are_read_from_their_headers(data):
    victim = ids(data)[1]
    for name in CHANNELS:
        pixels = cv2.imread(str(channel(data, victim, name)), cv2.IMREAD_UNCHANGED)
        channel(data, victim, name).unlink()
        extension = ".tif" if name in ("red", "green") else ".jpg"
        cv2.imwrite(str(data / "train" / f"{victim}_{name}{extension}"), pixels.astype(np.uint16) * 257
                    if extension == ".tif" else pixels)
    blue = data / "train" / f"{victim}_blue.jpg"
    comment = b"\xff\xfe" + (65535).to_bytes(2, "big") + b"x" * 65533  # the frame header lies past the first 64 KiB
    blue.write_bytes(blue.read_bytes()[:2] + comment * 2 + blue.read_bytes()[2:])
    Manifest(split="train").run_here()
    row = inputs.load_manifest("train").set_index("ID").loc[victim]
    assert (row["red"], row["blue"]) == (f"{victim}_red.tif", f"{victim}_blue.jpg")
    blue.write_bytes(blue.read_bytes()[:100 * 1024])  # cut inside the comments: no frame header at all
    storage.remove(Manifest(split="train").folder())
    assert "the JPEG ends before its frame header (SOF)" in manifest_error()


def test_duplicate_blank_and_unknown_labels_and_a_three_field_row(data):
    first, second, third, fourth = ids(data)
    (data / "train.csv").write_text(f"ID,Label\n{first},0|25\n{second},\n{third},1\n{fourth},2\n{third},1\n"
                                    f"{fourth},3,4\n")
    message = manifest_error()
    train_csv = f"{data}/train.csv"
    assert f"{train_csv} line 2, ID {first}: Label '0|25' names unknown class 25, outside 0..18" in message
    assert f"{train_csv} line 3, ID {second}: blank Label" in message
    assert f"{train_csv} line 6, ID {third}: duplicate ID: first listed on line 4" in message
    assert f"{train_csv} line 7, ID {fourth}: 3 fields where the header has 2 (ID,Label)" in message
    assert "has 4 problems" in message


def test_missing_columns_and_a_missing_table(data):
    (data / "train.csv").write_text("Image,Label\nx,1\n")
    assert f"{data}/train.csv line 1: the header line 'Image,Label' lacks the column(s) ID" in manifest_error()
    (data / "train.csv").unlink()
    assert f"{data}/train.csv: missing" in manifest_error()
    (data / "sample_submission.csv").write_text("ImageWidth,ImageHeight\n64,64\n")
    assert "lacks the column(s) ID" in manifest_error("test")


def test_an_id_without_images(data):
    with open(data / "sample_submission.csv", "a") as handle:
        handle.write("ghost_1,64,64,\n")
    message = manifest_error("test")
    assert f"{data}/test/ghost_1_*, ID ghost_1 (sample_submission.csv line 4): no channel file" in message


def test_every_problem_in_one_message_then_a_count(data):
    with open(data / "train.csv", "a") as handle:
        handle.writelines(f"ghost_{number},1\n" for number in range(70))
    channel(data, ids(data)[0], "red").unlink()
    message = manifest_error()
    assert message.startswith(f"the train split's input ({data}/train, {data}/train.csv) has 71 problems")
    assert message.count("\n  - ") == 50 and message.endswith("  ... and 21 more problems")
    assert "Traceback" not in message


def test_ids_survive_whatever_their_text(data):
    for old, new in zip(ids(data), ["NA", "nan", "null", ".hidden_1"]):
        rename_image(data, old, new)
    Manifest(split="train").run_here()
    manifest = inputs.load_manifest("train")
    assert manifest["ID"].tolist() == [".hidden_1", "NA", "nan", "null"]
    hidden = manifest.iloc[0]
    assert hidden["red"] == ".hidden_1_red.png"  # found although a local listing hides dot-files
    assert inputs.field_of("train", hidden).shape == (SIZE, SIZE, 4)


def test_an_id_that_would_not_survive_a_csv_file(data):
    first = ids(data)[0]
    (data / "train.csv").write_text(table(data).to_csv(index=False) + '"bad\rid",1\n')
    for name in CHANNELS:
        channel(data, first, name).rename(data / "train" / f"bad\rid_{name}.png")
    message = manifest_error()
    assert f"{data}/train.csv line 6, ID 'bad\\rid': the ID holds the control or invisible character U+000D" in message


def test_skip_leaves_bad_images_out_and_lists_them(data, pipeline_settings):
    pipeline_settings(bad_images="skip")
    first, second, third, fourth = ids(data)
    channel(data, first, "green").write_bytes(b"not a png")
    channel(data, third, "yellow").unlink()
    Manifest(split="train").run_here()
    folder = Manifest(split="train").folder()
    manifest = contract.MANIFEST.read(folder)
    assert manifest["ID"].tolist() == [second, fourth] and manifest["shard"].tolist() == [0, 0]
    rejected = contract.REJECTED.read(folder)
    assert rejected.columns.tolist() == ["ID", "file", "reason"]
    assert rejected["ID"].tolist() == [first, third]
    assert rejected["file"].tolist() == [f"{data}/train/{first}_green.png", f"{data}/train/{third}_yellow.png"]
    assert rejected["reason"].str.contains("not a readable").tolist() == [True, False]


def test_skip_still_fails_on_table_problems_and_on_no_usable_image(data, pipeline_settings):
    pipeline_settings(bad_images="skip")
    first = ids(data)[0]
    with open(data / "train.csv", "a") as handle:
        handle.write(f"{first},1\n")
    assert "duplicate ID" in manifest_error()
    for image_id in ids(data, "test"):
        channel(data, image_id, "red", "test").unlink()
    message = manifest_error("test")
    assert "no usable test images: all 2 are bad" in message and message.count("the red channel file is missing") == 2


def test_fail_is_the_default_and_says_skip_would_leave_them_out(data):
    channel(data, ids(data)[0], "red").unlink()
    assert "nothing runs on it until they are fixed or [pipeline] bad_images = skip leaves the 1 bad image out" in (
        manifest_error())


def test_the_graph_fails_before_the_first_segment(data, caplog):
    channel(data, ids(data, "test")[1], "blue", "test").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        assert not luigi.build([SegmentAll(split="test")], local_scheduler=True, workers=1, log_level="WARNING")
    assert not storage.exists(storage.join(pipeline().work, "segment"))
    assert not Manifest(split="test").complete()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "the PNG ends before its IHDR chunk" in logged and "Traceback" not in logged
    assert all(record.exc_info is None for record in caplog.records)


def test_the_log_filter_keeps_the_message_and_drops_the_traceback():
    error = InputError([], "the train split's input")
    try:
        raise error
    except InputError:
        record = logging.LogRecord("luigi-interface", logging.ERROR, __file__, 1, "Worker failed %s", ("X",),
                                   sys.exc_info())
    quiet = InputErrorLog()
    assert quiet.filter(record) and record.exc_info is None
    assert record.getMessage() == "Worker failed X: the train split's input has 0 problems:"
    text = f"Will not run Y due to error in complete() method:\nTraceback (most recent call last):\n  ...\n" \
           f"stages.manifest.core.InputError: {error}\n"
    again = logging.LogRecord("luigi-interface", logging.WARNING, __file__, 1, text, (), None)
    assert quiet.filter(again)
    assert again.getMessage() == ("Will not run Y due to error in complete() method: the input data problems listed "
                                  "above")
    other = logging.LogRecord("luigi-interface", logging.WARNING, __file__, 1, "Traceback: ValueError: x", (), None)
    assert quiet.filter(other) and other.getMessage() == "Traceback: ValueError: x"


def test_the_command_line_prints_the_list_without_a_traceback_and_exits_non_zero(data, tmp_path):
    victim = ids(data)[3]
    channel(data, victim, "green").write_bytes(b"not a png")
    command = [sys.executable, "-m", "luigi", "--module", "stages", "SegmentAll", "--split", "train",
               "--pipeline-input", str(data), "--pipeline-work", str(tmp_path / "cli-work")]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 35, done.stderr[-3000:]  # [retcode] scheduling_error: the graph could not be built
    assert f"{victim}_green.png, ID {victim} (train.csv line 5): not a readable PNG, JPEG or TIFF image" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_split_stops_the_whole_run_before_any_work(tmp_path, pipeline_settings):
    import luigi

    import stages
    from stages.dev.synth.core import write_dataset

    data, work = tmp_path / "data", tmp_path / "work"
    write_dataset(str(data), 2, 2, 64, 64, 3)
    sorted((data / "train").glob("*_blue.png"))[0].unlink()  # the training split is bad, the test split fine
    pipeline_settings(input=str(data), work=str(work), profile="demo", shard_size=1)
    assert not luigi.build([stages.Submission()], local_scheduler=True, log_level="WARNING")
    assert not (work / "segment").exists() and not (work / "tile").exists()  # not even the good split's shards

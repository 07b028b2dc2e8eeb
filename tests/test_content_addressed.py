"""Inputs are content-addressed: a changed image reruns exactly its shard's chain and what reads it, a changed
label reruns the training that reads it, and everything else is reused.

The whole hpa2021-shaped graph runs with ``[runner] mode = markers`` (each task only marks its folder done),
on real image files and tables, so the test sees which tasks a second run does again: a task ran when its
folder's marker is new.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import luigi
import numpy as np
import pandas as pd
import pytest

from stages import Submission, inputs, storage
from stages.classes import CHANNELS
from stages.dev.synth.core import write_dataset
from stages.manifest import contract

SHARD_SIZE = 2


def build() -> None:
    inputs.refresh()  # a new run: it lists the input again
    assert luigi.build([Submission()], local_scheduler=True, workers=1, log_level="WARNING")


def markers(work: Path) -> dict[str, float]:
    return {str(path.relative_to(work)): path.stat().st_mtime_ns for path in work.rglob(storage.SUCCESS_MARKER)}


def rerun(work: Path) -> list[tuple[str, str, str]]:
    """The (stage folder, split, leaf) of every task the next run does again (new or rewritten markers)."""
    before = markers(work)
    build()
    after = markers(work)
    changed = [name for name, stamp in after.items() if before.get(name) != stamp]
    return sorted((parts[0], parts[2], parts[3]) for parts in (Path(name).parts for name in changed))


@pytest.fixture
def run(tmp_path, pipeline_settings, runner_settings) -> tuple[Path, Path]:
    data, work = tmp_path / "data", tmp_path / "work"
    write_dataset(str(data), 4, 6, 64, 64, 5)
    pipeline_settings(input=str(data), work=str(work), profile="hpa2021", shard_size=SHARD_SIZE)
    runner_settings(mode="markers")
    build()
    return data, work


def image_of_shard(split: str, shard: int) -> str:
    manifest = inputs.load_manifest(split)
    return manifest.loc[manifest["shard"] == shard, "ID"].iloc[0]


def per_shard(ran) -> set[str]:
    return {leaf.split(".")[0] for _, _, leaf in ran if leaf.startswith("shard-")}


def test_a_changed_image_reruns_its_shards_chain_and_what_reads_it(run):
    data, work = run
    victim = image_of_shard("test", 1)
    green = data / "test" / f"{victim}_green.png"
    cv2.imwrite(str(green), 255 - cv2.imread(str(green), cv2.IMREAD_UNCHANGED))
    stages_per_shard = {stage for stage, split, leaf in (Path(name).parts[0:1] + Path(name).parts[2:4]
                                                         for name in markers(work))
                        if split == "test" and leaf.startswith("shard-00000.")}

    ran = rerun(work)

    assert {split for _, split, _ in ran} == {"test"}  # no training task ran
    assert per_shard(ran) == {"shard-00001"}  # the other test shards were reused
    assert {stage for stage, _, leaf in ran if leaf.startswith("shard-")} == stages_per_shard
    assert {stage for stage, _, leaf in ran if not leaf.startswith("shard-")} == {
        "manifest", "write_submission", "evaluate", "report"}
    # the shard's old folders stay (another run may read them) and are never taken for the new content
    assert sum(1 for name in markers(work) if name.startswith("segment/") and "/test/shard-00001." in name) == 2


def test_a_changed_label_reruns_the_training_that_reads_it_and_no_segmentation(run):
    data, _ = run
    victim = image_of_shard("train", 0)
    table = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    table.loc[table["ID"] == victim, "Label"] = "3|7" if table.loc[table["ID"] == victim, "Label"].item() != "3|7" else "4"
    table.to_csv(data / "train.csv", index=False)

    ran = rerun(run[1])

    stages_ran = {stage for stage, _, _ in ran}
    assert not stages_ran & {"segment", "tile"}  # they never read labels
    assert {"train_cell_model", "train_image_model", "train_fold_model", "pseudo_label", "train_yolo"} <= stages_ran
    assert {(split, leaf.split(".")[0]) for stage, split, leaf in ran if stage in ("image_inputs", "yolo_export")} == {
        ("train", "shard-00000")}  # the images of the changed row's shard, only on the training side
    assert {split for stage, split, _ in ran if stage == "predict_cells"} == {"test"}  # new models predict again


def test_an_unchanged_input_reruns_nothing_and_a_touched_file_only_its_shard(run):
    data, work = run
    assert rerun(work) == []
    victim = image_of_shard("test", 2)
    path = data / "test" / f"{victim}_{CHANNELS[0]}.png"
    path.write_bytes(path.read_bytes())  # same bytes, new mtime: a local identity is size and mtime
    assert per_shard(rerun(work)) == {"shard-00002"}


def test_the_manifest_records_each_images_file_identity(run):
    data, _ = run
    manifest = inputs.load_manifest("test")
    assert manifest["identity"].str.fullmatch(r"[0-9a-f]{16}").all() and manifest["identity"].is_unique
    folder = inputs.manifest_task("test").folder()
    assert contract.MANIFEST.read(folder)["identity"].tolist() == manifest["identity"].tolist()


def test_a_container_finds_the_drivers_manifest_from_the_listing_digests(run, monkeypatch):
    data, _ = run
    driver = inputs.manifest_task("test").folder()
    digests = inputs.listing_digests()
    assert f"test={inputs.listing('test').digest}" in digests.split(",")
    for name in (data / "test").iterdir():  # the container's view may differ: it must not list again
        name.unlink()
    monkeypatch.setenv(inputs.LISTINGS_VARIABLE, digests)
    inputs.refresh()
    assert inputs.manifest_task("test").folder() == driver
    assert np.array_equal(inputs.load_manifest("test")["ID"], contract.MANIFEST.read(driver)["ID"])

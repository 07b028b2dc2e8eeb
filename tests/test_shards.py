"""Shard groups: the scheduler sees a capped number of tasks per stage; each shard still stands alone."""

from __future__ import annotations

import os

import luigi

import stages
from stages import storage
from stages.dev.synth.core import write_dataset
from stages.shards import group_count, group_size


def setup(tmp_path, pipeline_settings, images: int, tasks: int) -> None:
    write_dataset(str(tmp_path / "data"), 2, images, 64, 64, 1)
    pipeline_settings(input=str(tmp_path / "data"), work=str(tmp_path / "work"), profile="demo", shard_size=1,
                      tasks_per_stage=tasks)


def test_shards_are_cut_into_at_most_the_configured_number_of_groups(tmp_path, pipeline_settings):
    setup(tmp_path, pipeline_settings, images=5, tasks=2)
    assert (group_size("test"), group_count("test")) == (3, 2)
    groups = luigi.task.flatten(stages.SegmentAll(split="test").requires())
    assert [[member.shard for member in group.members()] for group in groups] == [[0, 1, 2], [3, 4]]
    # group g of a stage needs group g of the stage it reads shard by shard
    tile_group = stages.TileGroup(split="test", group=1)
    assert stages.SegmentGroup(split="test", group=1) in tile_group.requires()
    assert stages.Manifest(split="test") in tile_group.requires()


def test_one_task_per_shard_when_the_cap_allows(tmp_path, pipeline_settings):
    setup(tmp_path, pipeline_settings, images=3, tasks=64)
    assert (group_size("test"), group_count("test")) == (1, 3)


def test_a_deleted_shard_is_recomputed_alone(tmp_path, pipeline_settings):
    setup(tmp_path, pipeline_settings, images=4, tasks=2)
    assert luigi.build([stages.SegmentAll(split="test")], local_scheduler=True, log_level="WARNING")
    members = stages.SegmentGroup(split="test", group=0).members()
    assert len(members) == 2 and all(member.complete() for member in members)
    kept = storage.join(members[0].folder(), storage.SUCCESS_MARKER)
    os.utime(kept, (1, 1))  # an old time stamp: rewriting it would show
    storage.remove(members[1].folder())
    assert not stages.SegmentGroup(split="test", group=0).complete()
    assert not stages.SegmentAll(split="test").complete()
    assert luigi.build([stages.SegmentAll(split="test")], local_scheduler=True, log_level="WARNING")
    assert members[1].complete() and os.stat(kept).st_mtime == 1

"""Manifest: which images a split holds, their channel files, and the shards they fall into."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.manifest.core import build_manifest, channel_files, shard_count, shard_rows


def names(*ids, extension=".png", channels=("red", "green", "blue", "yellow")):
    return [f"{image_id}_{channel}{extension}" for image_id in ids for channel in channels]


def test_ids_with_underscores_split_at_last_underscore():
    files = channel_files(names("B2AI_1_untreated_A1_R1", extension=".jpg") + ["notes.txt", "x_purple.png"])
    assert list(files) == ["B2AI_1_untreated_A1_R1"]
    assert files["B2AI_1_untreated_A1_R1"]["yellow"] == "B2AI_1_untreated_A1_R1_yellow.jpg"


def test_shards_cut_in_id_order():
    manifest = build_manifest(names("c_1", "a_1", "b_1", "d_1", "e_1"), None, shard_size=2)
    assert manifest["ID"].tolist() == ["a_1", "b_1", "c_1", "d_1", "e_1"]
    assert manifest["shard"].tolist() == [0, 0, 1, 1, 2]
    assert shard_count(manifest) == 3
    assert shard_rows(manifest, 2)["ID"].tolist() == ["e_1"]
    with pytest.raises(ValueError, match="shard 3 does not exist"):
        shard_rows(manifest, 3)


def test_table_decides_membership_and_labels():
    listed = pd.DataFrame({"ID": ["a_1", "b_1"], "Label": ["0|5", "18"]})
    manifest = build_manifest(names("a_1", "z_9") + names("b_1", channels=("red", "green", "blue")), listed, 10)
    assert manifest["ID"].tolist() == ["a_1", "b_1"]  # z_9 is not in the table
    assert manifest.set_index("ID").loc["a_1", "Label"] == "0|5"
    assert manifest.set_index("ID").loc["b_1", "yellow"] == ""  # reported when the image is read


def test_bad_label_fails_loudly():
    with pytest.raises(ValueError, match="outside 0..18"):
        build_manifest(names("a_1"), pd.DataFrame({"ID": ["a_1"], "Label": ["0|19"]}), 4)


def test_shard_size_must_be_positive():
    with pytest.raises(ValueError, match="shard_size"):
        build_manifest(names("a_1"), None, 0)

"""Which images each split holds, and how they are cut into shards (micro-batches).

Luigi's scheduler is built for thousands of tasks, not millions, so per-image stages run per shard: a
fixed-size run of images in ID order. A manifest row names the image's four channel files, so readers never
guess extensions, and a missing channel is reported with the file that was expected.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from stages.classes import CHANNELS, parse_labels
from stages.fields import CHANNEL_EXTENSIONS
from stages.manifest.contract import MANIFEST

MANIFEST_COLUMNS: tuple[str, ...] = MANIFEST.columns
EXTERNAL_SPLIT = "external"
INPUT_SPLITS: tuple[str, ...] = ("train", "test")  # the input root's; external data adds the third
SPLITS: tuple[str, ...] = (*INPUT_SPLITS, EXTERNAL_SPLIT)
# Where a split lies below its data root: (image folder, table). External data is a second root in the
# Kaggle training layout, so its images are that root's train/ folder, listed in its train.csv.
SPLIT_LAYOUT = {"train": ("train", "train.csv"), "test": ("test", "sample_submission.csv"),
                EXTERNAL_SPLIT: ("train", "train.csv")}


def channel_files(file_names: list[str]) -> dict[str, dict[str, str]]:
    """Group a folder's file names by image ID: ``{ID: {channel: file name}}``.

    IDs may contain underscores (real HPA IDs do), so a name is split at its last underscore.
    """
    images: dict[str, dict[str, str]] = defaultdict(dict)
    for name in file_names:
        stem, dot, extension = name.rpartition(".")
        if not dot or f".{extension.lower()}" not in CHANNEL_EXTENSIONS:
            continue
        image_id, underscore, channel = stem.rpartition("_")
        if underscore and channel in CHANNELS:
            images[image_id][channel] = name
    return dict(images)


def build_manifest(file_names: list[str], listed: pd.DataFrame | None, shard_size: int) -> pd.DataFrame:
    """One row per image: ID, shard, the four channel file names ("" where missing) and Label.

    ``listed`` is the split's table (train.csv / sample_submission.csv) when there is one: it decides which
    images belong to the split, so an image named there whose files are missing fails loudly when read.
    Without a table, every image with at least one channel file in the folder is taken.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    files = channel_files(file_names)
    if listed is not None:
        if "ID" not in listed.columns:
            raise ValueError(f"the split's table has no ID column (columns: {list(listed.columns)})")
        labels = listed.get("Label", pd.Series([""] * len(listed)))
        label_of = dict(zip(listed["ID"].astype(str), labels.fillna("").astype(str)))
    else:
        label_of = {image_id: "" for image_id in files}
    for image_id, label in label_of.items():
        parse_labels(label)  # a malformed label fails here, naming itself, not deep in training
    ids = sorted(label_of)
    rows = [
        {
            "ID": image_id,
            "shard": index // shard_size,
            **{channel: files.get(image_id, {}).get(channel, "") for channel in CHANNELS},
            "Label": label_of[image_id],
        }
        for index, image_id in enumerate(ids)
    ]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def shard_count(manifest: pd.DataFrame) -> int:
    return int(manifest["shard"].max()) + 1 if len(manifest) else 0


def shard_rows(manifest: pd.DataFrame, shard: int) -> pd.DataFrame:
    rows = manifest[manifest["shard"] == shard]
    if rows.empty:
        raise ValueError(f"shard {shard} does not exist: the manifest has {shard_count(manifest)} shard(s)")
    return rows.reset_index(drop=True)

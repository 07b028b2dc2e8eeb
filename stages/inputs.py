"""The pipeline's input data: where each split lies, its manifest, its shards, its fields of view.

Shards are the machinery's unit of fan-out, so every per-shard task and wrapper asks here how many shards
a split has and which images a shard holds. The manifest itself is the ``Manifest`` task's artifact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CHANNELS
from stages.config import pipeline
from stages.fields import BadImageError, channel_file_name, decode_channel, read_field
from stages.manifest import contract, core


def split_root(split: str) -> str:
    """The data root a split is read from: ``[pipeline] external`` for the external split, else the input."""
    if split != core.EXTERNAL_SPLIT:
        return pipeline().input
    if not pipeline().external:
        raise ValueError(f"the '{split}' split was asked for, but no external data is configured "
                         f"([pipeline] external, or --pipeline-external URI)")
    return pipeline().external


def split_folder(split: str) -> str:
    """Where a split's channel files lie."""
    return storage.join(split_root(split), core.SPLIT_LAYOUT[split][0])


def split_table(split: str) -> str:
    """The table (ID, Label) that lists a split's images."""
    return storage.join(split_root(split), core.SPLIT_LAYOUT[split][1])


MANIFEST_TASK = "Manifest"
# Set by the runners for a container: the driver's listing digest per split ("train=3f2a..,test=9b1c.."), so
# a container finds the driver's manifest without listing the whole input again.
LISTINGS_VARIABLE = "HPA_INPUT_LISTINGS"


def manifest_task(split: str):
    from stages.tasking import task_class

    return task_class(MANIFEST_TASK)(split=split)


@dataclasses.dataclass(frozen=True)
class Listing:
    """A split's input as listed once by this process: its channel files with their identities (size and
    mtime, or size and ETag), its table's bytes (None: there is none), and a digest of both."""

    files: dict[str, str]
    table: bytes | None
    digest: str


# The input is listed once per process (one run): every manifest lookup, fingerprint and folder of the
# run agrees on it. A program that runs the pipeline more than once calls refresh() between the runs.
_generation = 0
_listings: dict[tuple, Listing] = {}


def short_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def refresh() -> None:
    """Forget what this process listed of the input and read of its manifests: the next lookup lists the
    input again, so a changed, added or removed image or label is seen."""
    global _generation
    _generation += 1
    _listings.clear()
    _manifests.clear()
    _shard_counts.clear()
    _row_digests.clear()


def generation() -> int:
    return _generation


def listing(split: str) -> Listing:
    folder, table_uri = split_folder(split), split_table(split)
    key = (folder, table_uri, _generation)
    if key not in _listings:
        channel_names = core.channel_files(list(found := storage.list_files(folder)))
        files = {name: found[name] for names in channel_names.values() for name in names.values()}
        try:
            table = storage.read_bytes(table_uri)
        except storage.ArtifactNotFound:
            table = None
        _listings[key] = Listing(files, table, short_digest(repr((sorted(files.items()), table))))
    return _listings[key]


def folder_digest(uri: str) -> str:
    """A digest of a folder's files and their identities (the evaluation's truth), listed once per run."""
    key = (uri, "folder", _generation)
    if key not in _listings:
        files = storage.list_files(uri)
        _listings[key] = Listing(files, None, short_digest(repr(sorted(files.items()))))
    return _listings[key].digest


_pinned: dict[str, str] = {}


def pin_listings(digests: dict[str, str]) -> None:
    """Name each split's manifest by these listing digests instead of listing the input: a published run's
    (``stages.predict`` finds the run's models whether or not its input is still there)."""
    _pinned.clear()
    _pinned.update(digests)


def listing_digest(split: str) -> str:
    """What names the split's manifest folder: the digest pinned, or the driver's in a container, or the one
    of this process's listing."""
    given = dict(item.split("=", 1) for item in os.environ.get(LISTINGS_VARIABLE, "").split(",") if "=" in item)
    return _pinned.get(split) or given.get(split) or listing(split).digest


def listing_digests() -> str:
    """Every split's listing digest, for :data:`LISTINGS_VARIABLE`."""
    return ",".join(f"{split}={listing_digest(split)}" for split in needed_splits())


# Manifests read in this process, by folder: a graph asks for a split's shard count once per group, and a
# finished manifest folder never changes (the Manifest task forgets its folder before it rewrites it). An
# input that failed validation is remembered too: every wrapper asking again gets the same list at once.
_manifests: dict[str, pd.DataFrame | core.InputError] = {}


def load_manifest(split: str, ensure: bool = False) -> pd.DataFrame:
    """The split's manifest; with ``ensure``, made (and its input validated) now if it is missing: shard
    fan-out needs it while the graph is built, so bad input stops a run before any work."""
    task = manifest_task(split)
    folder = task.folder()
    if folder not in _manifests:
        try:
            if ensure and not task.complete():
                task.run_here()
            _manifests[folder] = contract.MANIFEST.read(folder)
        except core.InputError as error:
            _manifests[folder] = error
    found = _manifests[folder]
    if isinstance(found, core.InputError):
        raise found
    return found


def needed_splits() -> list[str]:
    """The splits a whole run reads: the input's two, and the external data's where some is configured."""
    return [*core.INPUT_SPLITS, *([core.EXTERNAL_SPLIT] if pipeline().external else [])]


def validate_inputs() -> None:
    """Every split the run reads, validated (and its manifest made) before anything is scheduled: one
    error listing the problems of every bad split, so no work starts on the good ones."""
    errors = []
    for split in needed_splits():
        try:
            load_manifest(split, ensure=True)
        except core.InputError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise core.InputError([problem for error in errors for problem in error.problems], "the run's input")


def forget_manifest(folder: str) -> None:
    _manifests.pop(folder, None)
    _shard_counts.clear()
    _row_digests.clear()


_row_digests: dict[tuple, dict] = {}


def rows_digest(split: str, shard: int | None = None, labels: bool = False) -> str:
    """A digest of manifest rows: one shard's (None: the whole split's) IDs and file identities, and their
    labels with ``labels``. It changes exactly when an image of those rows (or a label) does."""
    from stages.tasking import settings_state

    key = (split, labels, settings_state())
    if key not in _row_digests:
        manifest = load_manifest(split, ensure=True)
        lines = manifest["ID"] + "\t" + manifest["identity"] + ("\t" + manifest["Label"] if labels else "")
        digests = {int(number): short_digest("\n".join(rows)) for number, rows in lines.groupby(manifest["shard"])}
        digests[None] = short_digest(repr(sorted(digests.items())))
        _row_digests[key] = digests
    return _row_digests[key][shard]


_shard_counts: dict[tuple, int] = {}


def shard_count(split: str, ensure: bool = False) -> int:
    """How many shards the split has; asked once per group and wrapper, so remembered for as long as the
    settings it derives from stay as they are."""
    from stages.tasking import settings_state

    key = (split, settings_state())
    if key not in _shard_counts:
        _shard_counts[key] = core.shard_count(load_manifest(split, ensure))
    return _shard_counts[key]


def shard_rows(split: str, shard: int) -> pd.DataFrame:
    return core.shard_rows(load_manifest(split), shard)


def image_labels(split: str) -> dict[str, str]:
    manifest = load_manifest(split)
    return dict(zip(manifest["ID"], manifest["Label"]))


def field_of(split: str, row) -> np.ndarray:
    """The four channels of a manifest row's image, as (H, W, 4) uint8."""
    return read_field(split_folder(split), row["ID"], {channel: row[channel] for channel in CHANNELS})


def green_of(split: str, row) -> np.ndarray:
    """A manifest row's green channel alone, as 2-D uint8 (what the image models and the detector read)."""
    folder = split_folder(split)
    if not row["green"]:
        expected = storage.join(folder, channel_file_name(row["ID"], "green", ".png"))
        raise BadImageError(row["ID"], expected, "the green channel file is missing")
    uri = storage.join(folder, row["green"])
    try:
        data = storage.read_bytes(uri)
    except storage.ArtifactNotFound:
        raise BadImageError(row["ID"], uri, "the green channel file is missing") from None
    return decode_channel(data, row["ID"], uri)

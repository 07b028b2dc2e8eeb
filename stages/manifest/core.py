"""Which images each split holds, and how they are cut into shards (micro-batches).

Luigi's scheduler is built for thousands of tasks, not millions, so per-image stages run per shard: a
fixed-size run of images in ID order. A manifest row names the image's four channel files, so readers never
guess extensions, and a missing channel is reported with the file that was expected.

The split's table (train.csv / sample_submission.csv) is parsed here, row by row, so that each problem names
the file, the line and the ID: a header without its columns, a row with more or fewer fields than the header,
a blank or duplicate ID, an ID that would not come back the same from a CSV file, a blank training label, a
label that is not classes 0..18. Problems are collected, never raised one at a time: :class:`InputError`
lists them all (:mod:`stages.manifest.validate` adds the images' own).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable

import pandas as pd

from stages.classes import CHANNELS, NUM_CLASSES
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
LABELLED_SPLITS = ("train", EXTERNAL_SPLIT)  # their table is train.csv: ID and Label, a label on every row
MAX_LISTED = 50  # problems spelled out in one message; the rest are counted
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_CLASS = re.compile(r"\s*[0-9]+\s*")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: the file, where in it (a table's line), the image, and why."""

    file: str
    reason: str
    image_id: str | None = None
    line: int | None = None  # the line of ``file`` (a table) the problem is on
    listed: str = ""  # for an image's file: where the image is listed ("train.csv line 7")

    def __str__(self) -> str:
        where = self.file + (f" line {self.line}" if self.line else "")
        if self.image_id is not None:
            where += f", ID {show_id(self.image_id)}"
        if self.listed:
            where += f" ({self.listed})"
        return f"{where}: {self.reason}"


def show_id(image_id: str) -> str:
    """An ID as the user would type it; quoted when it holds anything but letters, digits, ``_.-``."""
    return image_id if _PLAIN_ID.fullmatch(image_id) else repr(image_id)


def format_problems(problems: list[Problem], subject: str = "the input data", note: str = "",
                    limit: int = MAX_LISTED) -> str:
    count = len(problems)
    lines = [f"{subject} has {count} problem{'s' if count != 1 else ''}{note}:"]
    lines += [f"  - {problem}" for problem in problems[:limit]]
    if count > limit:
        lines.append(f"  ... and {count - limit} more problem{'s' if count - limit != 1 else ''}")
    return "\n".join(lines)


class InputError(ValueError):
    """The input data cannot be used as it is. The message lists every problem found (up to
    :data:`MAX_LISTED`, then a count), each naming the file, the line and the ID: it is meant for the user
    as it is, without a traceback (see :class:`stages.manifest.validate.InputErrorLog`)."""

    def __init__(self, problems: list[Problem], subject: str = "the input data", note: str = ""):
        self.problems = list(problems)
        super().__init__(format_problems(self.problems, subject, note))


@dataclasses.dataclass
class Listing:
    """A split's table as read: the IDs in table order (first of duplicates), their labels and lines."""

    uri: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    lines: dict[str, int] = dataclasses.field(default_factory=dict)
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def where(self, image_id: str) -> str:
        line = self.lines.get(image_id)
        return f"{self.uri.rsplit('/', 1)[-1]} line {line}" if line else ""


def id_problem(image_id: str) -> str:
    """Why an ID cannot name an image ("" when it can)."""
    if not image_id.strip():
        return "blank ID"
    hidden = next((char for char in image_id if unicodedata.category(char).startswith("C")), None)
    if hidden is not None:
        return f"the ID holds the control or invisible character U+{ord(hidden):04X}"
    if "/" in image_id or "\\" in image_id:
        return "the ID holds a '/' or '\\': channel files are <ID>_<channel>.png in the split's folder"
    return ""


def label_problem(label: str) -> str:
    """Why a training label is not usable ("" when it is)."""
    if not label.strip():
        return "blank Label: every training image needs its classes ('18' is Negative)"
    parts = label.split("|")
    if not all(_CLASS.fullmatch(part) for part in parts):
        return f"Label {label!r} is not class numbers separated by '|' (such as 0|5|16)"
    unknown = sorted({int(part) for part in parts if int(part) >= NUM_CLASSES})
    if unknown:
        named = ", ".join(map(str, unknown))
        return (f"Label {label!r} names unknown class{'es' if len(unknown) > 1 else ''} {named}, "
                f"outside 0..{NUM_CLASSES - 1}")
    return ""


def add_row(listing: Listing, image_id: str, label: str, line: int | None, labelled: bool) -> None:
    """One row's checks; a good row joins the listing."""
    problem = id_problem(image_id)
    if not problem and image_id in listing.lines:
        problem = f"duplicate ID: first listed on line {listing.lines[image_id]}"
    if not problem and labelled:
        problem = label_problem(label)
    if problem:
        listing.problems.append(Problem(listing.uri, problem, image_id, line))
    if image_id not in listing.lines and not id_problem(image_id):
        listing.lines[image_id] = line or 0
        listing.labels[image_id] = label


def read_listing(data: bytes, uri: str, labelled: bool) -> Listing:
    """Parse a split's table (train.csv: ``labelled``, with ID and Label; sample_submission.csv: ID)."""
    listing = Listing(uri)
    required = ("ID", "Label") if labelled else ("ID",)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        listing.problems.append(Problem(uri, f"not UTF-8 text (byte {error.object[error.start]:#04x})", line=line))
        return listing
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)  # lines end at \n, as grep counts them
    header: list[str] | None = None
    last = 0
    try:
        for row in reader:
            line, last = last + 1, reader.line_num
            if not row:
                continue  # a blank line
            if header is None:
                header = row
                missing = [name for name in required if name not in header]
                doubled = sorted({name for name in header if header.count(name) > 1})
                if missing or doubled:
                    reason = (f"the header line {','.join(header)!r} lacks the column(s) {', '.join(missing)}"
                              if missing else f"the header names {', '.join(doubled)} twice")
                    listing.problems.append(Problem(uri, f"{reason} (expected {','.join(required)})", line=line))
                    return listing
                continue
            if len(row) != len(header):
                column = header.index("ID")
                listing.problems.append(Problem(
                    uri, f"{len(row)} field{'s' if len(row) != 1 else ''} where the header has {len(header)} "
                         f"({','.join(header)})", row[column] if column < len(row) else None, line))
                continue
            fields = dict(zip(header, row))
            add_row(listing, fields["ID"], fields.get("Label", "") if labelled else "", line, labelled)
    except csv.Error as error:
        listing.problems.append(Problem(uri, f"does not parse as CSV: {error}", line=last + 1))
    if header is None:
        listing.problems.append(Problem(uri, f"empty: not even a header line ({','.join(required)})"))
    return listing


def listing_from_frame(listed: pd.DataFrame, name: str = "the split's table") -> Listing:
    """A table already read into a DataFrame, checked as :func:`read_listing` checks a file (lines as a
    CSV file with a header would number them)."""
    listing = Listing(name)
    if "ID" not in listed.columns:
        listing.problems.append(Problem(name, f"no ID column (columns: {list(listed.columns)})"))
        return listing
    labelled = "Label" in listed.columns
    labels = listed["Label"] if labelled else pd.Series([""] * len(listed), index=listed.index)
    for number, (image_id, label) in enumerate(zip(listed["ID"], labels)):
        text = "" if pd.isna(label) else str(label)
        add_row(listing, "" if pd.isna(image_id) else str(image_id), text, number + 2, labelled)
    return listing


def survives_csv(ids: list[str]) -> bool:
    """Whether these IDs come back the same from a CSV file written and read as every artifact is."""
    text = pd.DataFrame({"ID": ids}).to_csv(index=False)
    back = pd.read_csv(io.StringIO(text), dtype={"ID": str}, keep_default_na=False)
    return back["ID"].tolist() == list(ids)


def round_trip_problems(ids: list[str], place: Callable[[str], tuple[str, int | None]]) -> list[Problem]:
    """The IDs a CSV round trip would change, each placed by ``place(ID) -> (file, line)``."""
    if survives_csv(ids):
        return []
    return [Problem(place(image_id)[0], "the ID does not come back the same from a CSV file", image_id,
                    place(image_id)[1]) for image_id in ids if not survives_csv([image_id])]


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


def image_identity(files: dict[str, str], identities: dict[str, str]) -> str:
    """One image's identity: its channel files' names and identities (size and mtime, or ETag), hashed."""
    text = "\n".join(f"{name}={identities.get(name, '')}" for name in sorted(files.values()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def manifest_table(images: dict[str, dict[str, str]], labels: dict[str, str], shard_size: int,
                   identities: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per image, in ID order: ID, shard, the four channel file names ("" where missing), Label, and
    the identity of its files (``identities``: file name -> its identity in the folder listing)."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    rows = [{"ID": image_id, "shard": index // shard_size,
             **{channel: images[image_id].get(channel, "") for channel in CHANNELS},
             "Label": labels.get(image_id, ""), "identity": image_identity(images[image_id], identities or {})}
            for index, image_id in enumerate(sorted(images))]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def build_manifest(file_names, listed: pd.DataFrame | None, shard_size: int) -> pd.DataFrame:
    """The manifest of a folder's files (names, or names -> identities) and, when there is one, the split's
    table as a DataFrame: it decides which images belong to the split (an image it names whose files are
    missing fails when read). Without a table, every image with at least one channel file in the folder is
    taken. The table's rows are checked as :func:`read_listing` checks a file: :class:`InputError` lists what
    is wrong."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    identities = file_names if isinstance(file_names, dict) else {}
    files = channel_files(list(file_names))
    if listed is None:
        return manifest_table(files, {}, shard_size, identities)
    listing = listing_from_frame(listed)
    if listing.problems:
        raise InputError(listing.problems)
    return manifest_table({image_id: files.get(image_id, {}) for image_id in listing.lines}, listing.labels,
                          shard_size, identities)


def shard_count(manifest: pd.DataFrame) -> int:
    return int(manifest["shard"].max()) + 1 if len(manifest) else 0


def shard_rows(manifest: pd.DataFrame, shard: int) -> pd.DataFrame:
    rows = manifest[manifest["shard"] == shard]
    if rows.empty:
        raise ValueError(f"shard {shard} does not exist: the manifest has {shard_count(manifest)} shard(s)")
    return rows.reset_index(drop=True)

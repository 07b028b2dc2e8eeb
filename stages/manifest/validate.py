"""A split's images validated before any work, from their files' headers, read through :mod:`stages.storage`.

Each image must have its four channel files, their headers must read (PNG: the IHDR chunk; JPEG: the SOF
segment; TIFF: the first page's tags, through tifffile; see :func:`stages.fields.image_size`: no pixel is
decoded), the four sizes must agree and stay under ``[pipeline] max_pixels``. :func:`check_split` adds these
problems to the table's (:mod:`stages.manifest.core`); :meth:`Checked.usable` fails with every one of them,
or leaves the bad images out and lists them (``[pipeline] bad_images = skip``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from stages import storage
from stages.classes import CHANNELS
from stages.fields import HeaderTruncated, ImageSize, channel_file_name, image_size, over_cap
from stages.manifest.core import InputError, Listing, Problem, round_trip_problems

__all__ = ["Checked", "InputError", "InputErrorLog", "Problem", "check_image", "check_images", "check_split",
           "rejected_table"]

HEAD_BYTES = 64 * 1024  # read from each local channel file: every PNG header and nearly every JPEG one
WORKERS = 8  # channel headers read at once (I/O bound: S3 requests, a network file system)
REJECTED_COLUMNS = ("ID", "file", "reason")


def read_head(uri: str, size: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file and whether they are the whole file. A local file is read that
    far only; an S3 object whole (the storage layer has no ranged read yet)."""
    if storage.is_s3(uri):
        return storage.read_bytes(uri), True
    try:
        with open(uri, "rb") as handle:
            head = handle.read(size)
    except FileNotFoundError:
        raise storage.ArtifactNotFound(f"artifact not found: {uri}") from None
    return head, len(head) < size


def header_size(uri: str) -> ImageSize:
    """A channel file's declared format and size, from its header (the whole file only where the first
    bytes do not hold it). ValueError says why it does not read."""
    head, complete = read_head(uri)
    if not head:
        raise ValueError("the file is empty")
    try:
        return image_size(head, complete)
    except HeaderTruncated:
        if complete:
            raise
        return image_size(storage.read_bytes(uri), True)


def check_image(folder: str, image_id: str, files: dict[str, str], max_pixels: int,
                listed: str = "") -> list[Problem]:
    """Everything wrong with one image's four channel files (empty when nothing is)."""
    def problem(name: str, reason: str) -> Problem:
        return Problem(storage.join(folder, name), reason, image_id, listed=listed)

    if not files:
        return [problem(f"{image_id}_*", f"no channel file: expected {image_id}_red.png, _green, _blue and _yellow "
                                         f"(or .jpg, .jpeg, .tif, .tiff)")]
    extension = "." + next(iter(files.values())).rpartition(".")[2]
    problems, sizes = [], {}
    for channel in CHANNELS:
        name = files.get(channel, "")
        if not name:
            problems.append(problem(channel_file_name(image_id, channel, extension),
                                    f"the {channel} channel file is missing"))
            continue
        try:
            size = header_size(storage.join(folder, name))
        except storage.ArtifactNotFound:
            problems.append(problem(name, f"the {channel} channel file is missing (it went after the listing)"))
            continue
        except storage.StorageError:
            raise  # the store itself failed: not a problem of this image
        except OSError as error:
            problems.append(problem(name, f"cannot be read: {error.strerror or error}"))
            continue
        except ValueError as error:
            empty = str(error) == "the file is empty"
            problems.append(problem(name, str(error) if empty else f"not a readable PNG, JPEG or TIFF image: {error}"))
            continue
        refused = over_cap(size, max_pixels)
        if refused:
            problems.append(problem(name, refused))
        sizes[channel] = size
    if len({(size.width, size.height) for size in sizes.values()}) > 1:
        found = ", ".join(f"{channel} {size.width}x{size.height}" for channel, size in sizes.items())
        problems.append(problem(files[next(iter(sizes))], f"the channels differ in size: {found}"))
    return problems


def check_images(folder: str, images: Iterable[tuple[str, dict[str, str], str]], max_pixels: int,
                 workers: int = WORKERS) -> list[Problem]:
    """:func:`check_image` for each ``(ID, files, where listed)``, headers read ``workers`` at once; the
    problems in the order of ``images``."""
    images = list(images)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = pool.map(lambda image: check_image(folder, image[0], image[1], max_pixels, image[2]), images)
        return [problem for problems in found for problem in problems]


@dataclasses.dataclass
class Checked:
    """A split's images (ID -> channel file names, in ID order), their labels, and what is wrong: with the
    table (always fatal) and with images (fatal, or those images left out, per ``[pipeline] bad_images``)."""

    images: dict[str, dict[str, str]]
    labels: dict[str, str]
    table_problems: list[Problem]
    image_problems: list[Problem]

    def usable(self, bad_images: str, subject: str = "the input data") -> tuple[dict, list[Problem]]:
        """The images to keep (ID -> channel files) and the problems of those left out, or
        :class:`InputError` with every problem where the input cannot be used as it is (``bad_images``:
        fail | skip)."""
        rejected = {problem.image_id for problem in self.image_problems}
        if self.table_problems or (rejected and bad_images != "skip"):
            note = "; nothing runs on it until they are fixed" + ("" if self.table_problems else (
                f" or [pipeline] bad_images = skip leaves the {len(rejected)} bad image"
                f"{'s' if len(rejected) != 1 else ''} out"))
            raise InputError(self.table_problems + self.image_problems, subject, note)
        kept = {image_id: files for image_id, files in self.images.items() if image_id not in rejected}
        return kept, self.image_problems


def rejected_table(problems: list[Problem]) -> pd.DataFrame:
    """The images left out, one row per problem: ID, file, reason."""
    return pd.DataFrame([(problem.image_id, problem.file, problem.reason) for problem in problems],
                        columns=list(REJECTED_COLUMNS))


def check_split(folder: str, found: dict[str, dict[str, str]], table_uri: str, listing: Listing | None,
                labelled: bool, max_pixels: int) -> Checked:
    """Validate a split: ``found`` is its folder's channel files by ID (:func:`core.channel_files`),
    ``listing`` its table as read (None: there is none). A table decides which images belong to the split;
    without one every image in the folder does (a labelled split must have one)."""
    if listing is not None:
        ids, labels, problems = list(listing.lines), listing.labels, list(listing.problems)
    else:
        ids, labels, problems = sorted(found), dict.fromkeys(found, ""), []
        if labelled:
            problems.append(Problem(table_uri, "missing: it lists the split's images and their labels (ID,Label)"))

    def place(image_id: str) -> tuple[str, int | None]:  # where an ID is written: its table line, or a file name
        if listing is not None:
            return listing.uri, listing.lines[image_id]
        return storage.join(folder, next(iter(found[image_id].values()))), None

    problems += round_trip_problems(ids, place)
    images = {image_id: found.get(image_id, {}) for image_id in sorted(ids)}
    where = listing.where if listing is not None else lambda image_id: ""
    image_problems = check_images(folder, [(image_id, files, where(image_id)) for image_id, files in images.items()],
                                  max_pixels)
    return Checked(images, {image_id: labels[image_id] for image_id in images}, problems, image_problems)


class InputErrorLog(logging.Filter):
    """For Luigi's logger: an :class:`InputError` is logged as its message alone, never with a traceback.

    Luigi logs what a task raises while the graph is built (the manifest is made then, by the shard fan-out)
    or while it runs, traceback first. This filter turns each such record into the message (the record's
    first line, then the problems), and a record repeating problems already logged (every wrapper of the
    split asks for the manifest) into that first line and a pointer to them.
    """

    MARK = f"{InputError.__module__}.{InputError.__qualname__}: "

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if isinstance(error, InputError):
            text = str(error)
        elif self.MARK in message:
            text = message.split(self.MARK, 1)[1].strip()
        else:
            return True
        first = message.split("\n", 1)[0].rstrip(":")
        record.msg = f"{first}: {text if text not in self.seen else 'the input data problems listed above'}"
        record.args, record.exc_info, record.exc_text = (), None, None
        self.seen.add(text)
        return True


def quiet_input_errors(logger_name: str = "luigi-interface") -> None:
    """Install :class:`InputErrorLog` on Luigi's logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, InputErrorLog) for existing in logger.filters):
        logger.addFilter(InputErrorLog())

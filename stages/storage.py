"""The one place that reads and writes artifacts, addressed by URI: a local path or ``s3://bucket/prefix``.

Every other module goes through these functions, so the same code runs on a laptop folder and on any
S3-compatible store. S3 settings come from the ``[s3]`` section of luigi.cfg (client keys such as
``endpoint_url``, ``region_name``, ``aws_access_key_id`` go to boto3; ``connect_timeout``, ``read_timeout``,
``max_attempts``, ``retry_mode`` bound every call, see :mod:`stages.s3`) or from boto3's own environment
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), never from code.

Writes are atomic: local files are written to a temporary name (``.<name>.<random>.tmp`` beside the target,
never listed) and renamed, S3 objects appear whole (one PUT, or a multipart upload completed last). Multi-file
outputs call :func:`mark_done` last, so a reader that sees the marker sees every file. Every failure names
the URI: :class:`ArtifactNotFound` for a missing artifact, :class:`StorageError` for anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from stages import s3, scratch
from stages.s3 import ArtifactNotFound, StorageError, reset_s3_client, s3_client, s3_settings

__all__ = ["SUCCESS_MARKER", "ArtifactNotFound", "StorageError", "done_record", "exists", "is_done", "is_s3",
           "join", "list_files", "listdir", "mark_done", "read_array", "read_arrays", "read_bytes", "read_json",
           "read_table", "remove", "reset_s3_client", "s3_client", "s3_settings", "write_array", "write_arrays",
           "write_bytes", "write_json", "write_table", "write_with"]

SUCCESS_MARKER = "_SUCCESS"
FILE_MODE = 0o644  # local artifacts: readable by other users' containers, writable by their owner only
FOLDER_MODE = 0o755
_UMASK = os.umask(0)
os.umask(_UMASK)


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def join(uri: str, *parts: str) -> str:
    out = str(uri).rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def missing(uri: str) -> ArtifactNotFound:
    return ArtifactNotFound(f"artifact not found: {uri}")


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        return s3.read_bytes(uri)
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError:
        raise missing(uri) from None


@contextlib.contextmanager
def _opened(uri: str) -> Iterator[BinaryIO]:
    """The artifact as a seekable binary file: a local file opened where it lies; an S3 object streamed into
    a spooled temporary file (in memory when small, on disk when large, gone when the block ends)."""
    if not is_s3(uri):
        try:
            handle = open(uri, "rb")
        except FileNotFoundError:
            raise missing(uri) from None
        with handle:
            yield handle
        return
    with tempfile.SpooledTemporaryFile(max_size=s3.MULTIPART_BYTES) as spool:
        s3.read_into(uri, spool)
        spool.seek(0)
        yield spool


def _make_folder(path: Path) -> None:
    """``mkdir -p`` whose new folders are never more open than 0755, whatever the umask."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=FOLDER_MODE & ~_UMASK)


def write_with(uri: str, write: Callable[[BinaryIO], object]) -> None:
    """Atomically store what ``write`` writes into a binary file object: locally straight into a temporary
    file beside the target; for S3 into a spooled temporary file (on disk once large) that is then sent as one
    PUT or, when large, as a multipart upload."""
    if is_s3(uri):
        with tempfile.SpooledTemporaryFile(max_size=s3.MULTIPART_BYTES) as spool:
            write(spool)
            spool.seek(0)
            s3.upload(uri, spool)
        return
    path = Path(uri)
    _make_folder(path.parent)
    scratch.remove_dead_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=scratch.temporary_name(path), suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE & ~_UMASK)  # mkstemp makes 0600; artifacts are shared with other users' containers
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(uri: str, data: bytes) -> None:
    write_with(uri, lambda handle: handle.write(data))


def exists(uri: str) -> bool:
    if is_s3(uri):
        return s3.exists(uri)
    return Path(uri).exists()


def listdir(uri: str) -> list[str]:
    """Names directly under ``uri`` (files and sub-folders), sorted; empty when nothing is there. Local
    dot-files (temporaries of writers in progress or killed) are never listed."""
    if is_s3(uri):
        return s3.listdir(uri)
    path = Path(uri)
    if not path.is_dir():
        return []
    return sorted(child.name for child in path.iterdir() if not child.name.startswith("."))


def list_files(uri: str) -> dict[str, str]:
    """The files directly under ``uri`` (an input folder), each with an identity that changes when its content
    does: ``size:mtime`` locally (in nanoseconds), ``size:ETag`` on S3, both from the listing alone. Dot-files
    are listed (an image ID may start with a dot); this module's write temporaries are not."""
    if is_s3(uri):
        return s3.list_files(uri)
    try:
        entries = list(os.scandir(uri))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    files = {}
    for entry in entries:
        if entry.is_file() and not scratch.is_temporary(entry.name):
            status = entry.stat()
            files[entry.name] = f"{status.st_size}:{status.st_mtime_ns}"
    return files


def remove(uri: str) -> None:
    """Delete a file or everything under a prefix; no error when nothing is there."""
    _forget_done(uri)
    if is_s3(uri):
        s3.remove(uri)
        return
    path = Path(uri)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def read_array(uri: str) -> np.ndarray:
    with _opened(uri) as handle:
        return np.load(handle, allow_pickle=False)


def write_array(uri: str, array: np.ndarray) -> None:
    write_with(uri, lambda handle: np.save(handle, np.ascontiguousarray(array), allow_pickle=False))


def read_arrays(uri: str) -> dict[str, np.ndarray]:
    with _opened(uri) as handle, np.load(handle, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_arrays(uri: str, **arrays: np.ndarray) -> None:
    """Several arrays in one compressed ``.npz`` object (label images compress ~50x)."""
    write_with(uri, lambda handle: np.savez_compressed(handle, **arrays))


def read_table(uri: str, **read_csv_options) -> pd.DataFrame:
    with _opened(uri) as handle:
        return pd.read_csv(handle, **read_csv_options)


def write_table(uri: str, table: pd.DataFrame) -> None:
    write_bytes(uri, table.to_csv(index=False).encode())


def read_json(uri: str):
    return json.loads(read_bytes(uri))


def write_json(uri: str, value) -> None:
    write_bytes(uri, json.dumps(value, indent=2, sort_keys=True).encode())


@contextlib.contextmanager
def writer_lock(folder_uri: str) -> Iterator[None]:
    """Held while a task writes ``folder_uri``: a second writer of the same folder (another run on the same
    work root) waits, then finds the folder finished. Local folders only: an flock on a hidden file beside
    the folder, released by the kernel when its holder dies, so a killed writer never blocks the next.
    On S3 a renewed lease object taken by a conditional PUT (:mod:`stages.s3_lock`)."""
    if is_s3(folder_uri):
        from stages import s3_lock

        with s3_lock.held(folder_uri):
            yield
        return
    path = Path(folder_uri)
    _make_folder(path.parent)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Folders seen finished by this process. A finished folder is never rewritten, only removed (by
# remove(), which forgets it), so a scheduler that checks the same thousands of shard markers again and
# again asks the store once each: on S3 each check is a request.
_done: set[str] = set()


def mark_done(folder_uri: str, record: dict | None = None) -> None:
    """Written last by a multi-file output: its presence means every other file is complete. ``record``
    says what the folder holds (a shard's image IDs), for readers to check against what they expect."""
    write_bytes(join(folder_uri, SUCCESS_MARKER), json.dumps(record, sort_keys=True).encode() if record else b"")
    _done.add(str(folder_uri).rstrip("/"))


def done_record(folder_uri: str) -> dict:
    """What :func:`mark_done` recorded of a finished folder ({} when nothing was)."""
    data = read_bytes(join(folder_uri, SUCCESS_MARKER))
    return json.loads(data) if data.strip() else {}


def is_done(folder_uri: str) -> bool:
    folder = str(folder_uri).rstrip("/")
    if folder not in _done and exists(join(folder, SUCCESS_MARKER)):
        _done.add(folder)
    return folder in _done


def _forget_done(uri: str) -> None:
    prefix = str(uri).rstrip("/")
    for folder in [folder for folder in _done if folder == prefix or folder.startswith(prefix + "/")]:
        _done.discard(folder)

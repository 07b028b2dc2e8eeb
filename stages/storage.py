"""The one place that reads and writes artifacts, addressed by URI: a local path or ``s3://bucket/prefix``.

Every other module goes through these functions, so the same code runs on a laptop folder and on any
S3-compatible store. S3 settings come from the ``[s3]`` section of luigi.cfg (every key is passed to
boto3, e.g. ``endpoint_url``, ``region_name``, ``aws_access_key_id``) or from boto3's own environment
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), never from code.

Writes are atomic: local files are written to a temporary name and renamed, S3 objects appear whole on
PUT. Multi-file outputs call :func:`mark_done` last, so a reader that sees the marker sees every file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

SUCCESS_MARKER = "_SUCCESS"
_UMASK = os.umask(0)
os.umask(_UMASK)


class ArtifactNotFound(FileNotFoundError):
    """An artifact URI that does not exist; the message names it."""


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def join(uri: str, *parts: str) -> str:
    out = str(uri).rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def s3_settings() -> dict[str, str]:
    """The boto3 client arguments from luigi.cfg's ``[s3]`` section (empty values dropped)."""
    import luigi.configuration  # luigi is light; its config parser honours LUIGI_CONFIG_PATH

    config = luigi.configuration.get_config()
    if not config.has_section("s3"):
        return {}
    return {key: value for key, value in config.items("s3") if value}


_client_lock = threading.Lock()


@functools.cache
def _cached_client(settings: tuple[tuple[str, str], ...]):
    import boto3

    return boto3.session.Session().client("s3", **dict(settings))


def s3_client():
    """One boto3 client per process and settings: creating one per call costs more than the call."""
    with _client_lock:
        return _cached_client(tuple(sorted(s3_settings().items())))


def reset_s3_client() -> None:
    """Forget the cached client (tests that start a new S3 server call this)."""
    _cached_client.cache_clear()


def _missing(uri: str) -> ArtifactNotFound:
    return ArtifactNotFound(f"artifact not found: {uri}")


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        client = s3_client()
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            raise _missing(uri) from None
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError:
        raise _missing(uri) from None


def write_with(uri: str, write: Callable[[BinaryIO], object]) -> None:
    """Atomically store what ``write`` writes into a binary file object: locally straight into a temporary
    file beside the target, on S3 into one buffer sent as the body (no further copies of large arrays)."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        buffer = io.BytesIO()
        write(buffer)
        buffer.seek(0)
        s3_client().put_object(Bucket=bucket, Key=key, Body=buffer)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are shared with other users' containers
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
        bucket, key = _split_s3(uri)
        client = s3_client()
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return Path(uri).exists()


def listdir(uri: str) -> list[str]:
    """Names directly under ``uri`` (files and sub-folders), sorted; empty when nothing is there."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        names: set[str] = set()
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            names.update(item["Key"][len(prefix):] for item in page.get("Contents", []))
            names.update(item["Prefix"][len(prefix):].rstrip("/") for item in page.get("CommonPrefixes", []))
        return sorted(names)
    path = Path(uri)
    if not path.is_dir():
        return []
    return sorted(child.name for child in path.iterdir() if not child.name.startswith("."))


def remove(uri: str) -> None:
    """Delete a file or everything under a prefix; no error when nothing is there."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        client = s3_client()
        paginator = client.get_paginator("list_objects_v2")
        keys = [key]
        for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return
    path = Path(uri)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def read_array(uri: str) -> np.ndarray:
    return np.load(io.BytesIO(read_bytes(uri)), allow_pickle=False)


def write_array(uri: str, array: np.ndarray) -> None:
    write_with(uri, lambda handle: np.save(handle, np.ascontiguousarray(array), allow_pickle=False))


def read_arrays(uri: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(read_bytes(uri)), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_arrays(uri: str, **arrays: np.ndarray) -> None:
    """Several arrays in one compressed ``.npz`` object (label images compress ~50x)."""
    write_with(uri, lambda handle: np.savez_compressed(handle, **arrays))


def read_table(uri: str, **read_csv_options) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(read_bytes(uri)), **read_csv_options)


def write_table(uri: str, table: pd.DataFrame) -> None:
    write_bytes(uri, table.to_csv(index=False).encode())


def read_json(uri: str):
    return json.loads(read_bytes(uri))


def write_json(uri: str, value) -> None:
    write_bytes(uri, json.dumps(value, indent=2, sort_keys=True).encode())


def mark_done(folder_uri: str) -> None:
    """Written last by a multi-file output: its presence means every other file is complete."""
    write_bytes(join(folder_uri, SUCCESS_MARKER), b"")


def is_done(folder_uri: str) -> bool:
    return exists(join(folder_uri, SUCCESS_MARKER))


@contextlib.contextmanager
def local_copy(uri: str, suffix: str = "") -> Iterator[Path]:
    """A local file holding the artifact, for libraries that insist on a path (Keras, Ultralytics)."""
    if not is_s3(uri):
        if not Path(uri).exists():
            raise _missing(uri)
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="hpa-stage-") as folder:
        path = Path(folder) / ("artifact" + suffix)
        path.write_bytes(read_bytes(uri))
        yield path


@contextlib.contextmanager
def staged_output(uri: str, suffix: str = "") -> Iterator[Path]:
    """A scratch file path; when the block ends without error its content is written to ``uri`` atomically."""
    with tempfile.TemporaryDirectory(prefix="hpa-stage-") as folder:
        path = Path(folder) / ("artifact" + suffix)
        yield path
        write_bytes(uri, path.read_bytes())

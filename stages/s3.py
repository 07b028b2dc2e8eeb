"""The S3 half of :mod:`stages.storage`: the shared client, its settings, and every call it makes.

Settings come from luigi.cfg's ``[s3]`` section. The keys of boto3's ``client()`` (``endpoint_url``,
``region_name``, ``aws_access_key_id``...) are passed to it as they are; ``connect_timeout``,
``read_timeout``, ``max_attempts`` (every try of a request, the first included), ``retry_mode`` and
``addressing_style`` become a ``botocore.config.Config``, so no call waits on a silent endpoint for longer
than about read_timeout x max_attempts. Any other key is an error that names it.

Every failure names the URI: a missing key raises :class:`ArtifactNotFound`, anything else (access denied,
no such bucket, endpoint down, timeouts) :class:`StorageError`. Large objects stream: writes above
:data:`MULTIPART_BYTES` go up as a multipart upload, and downloads to a local file go straight to disk.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

MULTIPART_BYTES = 8 * 1024 * 1024  # objects from this size on are uploaded (and spooled to disk) in parts
CLIENT_KEYS = frozenset({"endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
                         "aws_session_token", "aws_account_id", "api_version", "use_ssl", "verify"})
DEFAULTS = {"connect_timeout": "10", "read_timeout": "60", "max_attempts": "5", "retry_mode": "standard"}
CONFIG_KEYS = frozenset({*DEFAULTS, "addressing_style"})
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class ArtifactNotFound(FileNotFoundError):
    """An artifact URI that does not exist; the message names it."""


class StorageError(OSError):
    """Storage that failed for any reason other than a missing artifact (access denied, no such bucket, an
    endpoint that refuses or never answers); the message names the URI and the bucket."""


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def s3_settings() -> dict[str, str]:
    """The ``[s3]`` keys of luigi.cfg as written (empty values dropped)."""
    import luigi.configuration  # luigi is light; its config parser honours LUIGI_CONFIG_PATH

    config = luigi.configuration.get_config()
    if not config.has_section("s3"):
        return {}
    return {key: value for key, value in config.items("s3") if value}


def _number(key: str, value: str, kind: type):
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"luigi.cfg [s3] {key} = {value!r} is not a {kind.__name__}") from None
    if number <= 0:
        raise ValueError(f"luigi.cfg [s3] {key} = {value!r} must be positive")
    return number


def client_arguments(settings: dict[str, str]) -> dict:
    """boto3 ``client()`` keywords for these ``[s3]`` settings, timeouts and retries as a ``Config``."""
    from botocore.config import Config

    unknown = sorted(set(settings) - CLIENT_KEYS - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"luigi.cfg [s3] has unknown key(s) {', '.join(unknown)}; known keys: "
                         f"{', '.join(sorted(CLIENT_KEYS | CONFIG_KEYS))}")
    arguments: dict = {key: value for key, value in settings.items() if key in CLIENT_KEYS}
    if "use_ssl" in arguments:
        arguments["use_ssl"] = arguments["use_ssl"].lower() not in ("false", "no", "0", "off")
    if arguments.get("verify", "").lower() in ("false", "no", "0", "off", "true", "yes", "1", "on"):
        arguments["verify"] = arguments["verify"].lower() in ("true", "yes", "1", "on")
    merged = {**DEFAULTS, **{key: value for key, value in settings.items() if key in CONFIG_KEYS}}
    if merged["retry_mode"] not in ("standard", "adaptive", "legacy"):
        raise ValueError(f"luigi.cfg [s3] retry_mode = {merged['retry_mode']!r}: use standard, adaptive or legacy")
    options = {
        "connect_timeout": _number("connect_timeout", merged["connect_timeout"], float),
        "read_timeout": _number("read_timeout", merged["read_timeout"], float),
        "retries": {"total_max_attempts": _number("max_attempts", merged["max_attempts"], int),
                    "mode": merged["retry_mode"]},
    }
    if "addressing_style" in merged:
        options["s3"] = {"addressing_style": merged["addressing_style"]}
    arguments["config"] = Config(**options)
    return arguments


_client_lock = threading.Lock()


@functools.cache
def _cached_client(settings: tuple[tuple[str, str], ...]):
    import boto3

    return boto3.session.Session().client("s3", **client_arguments(dict(settings)))


def s3_client():
    """One boto3 client per process and settings: creating one per call costs more than the call."""
    with _client_lock:
        return _cached_client(tuple(sorted(s3_settings().items())))


def reset_s3_client() -> None:
    """Forget the cached client (tests that start a new S3 server call this)."""
    _cached_client.cache_clear()


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    attempts = s3_client().meta.config.retries.get("total_max_attempts", 5)
    return TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES,
                          num_download_attempts=attempts)


@contextlib.contextmanager
def translated(uri: str, action: str) -> Iterator[None]:
    """Re-raise boto3's errors of the calls in the block as ArtifactNotFound / StorageError naming ``uri``."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError
    from s3transfer.exceptions import RetriesExceededError

    bucket = split(uri)[0]
    try:
        yield
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", "unknown"))
        if code in MISSING_CODES:
            raise ArtifactNotFound(f"artifact not found: {uri}") from None
        message = details.get("Message") or error
        raise StorageError(f"S3 {action} of {uri} failed (bucket {bucket!r}): {code}: {message}") from error
    except (BotoCoreError, Boto3Error, RetriesExceededError) as error:
        raise StorageError(f"S3 {action} of {uri} failed (bucket {bucket!r}): "
                           f"{type(error).__name__}: {error}") from error


def read_bytes(uri: str) -> bytes:
    bucket, key = split(uri)
    with translated(uri, "read"):
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def read_into(uri: str, handle: BinaryIO) -> None:
    """Stream the object into ``handle`` (one GET, never whole in memory)."""
    bucket, key = split(uri)
    with translated(uri, "read"):
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        with contextlib.closing(body):
            shutil.copyfileobj(body, handle, 1024 * 1024)


def download(uri: str, path: Path) -> None:
    """The object as the local file ``path``, written straight to disk (large objects in parallel ranges)."""
    bucket, key = split(uri)
    with translated(uri, "download"):
        s3_client().download_file(bucket, key, str(path), Config=_transfer_config())


def upload(uri: str, handle: BinaryIO) -> None:
    """Store what ``handle`` holds from its current position: one PUT when small, else a multipart upload
    (the object appears whole only when the last part is in; a failed upload is aborted)."""
    bucket, key = split(uri)
    start = handle.tell()
    size = handle.seek(0, 2) - start
    handle.seek(start)
    with translated(uri, "write"):
        if size < MULTIPART_BYTES:
            s3_client().put_object(Bucket=bucket, Key=key, Body=handle.read())
        else:
            s3_client().upload_fileobj(handle, bucket, key, Config=_transfer_config())


def exists(uri: str) -> bool:
    bucket, key = split(uri)
    try:
        with translated(uri, "lookup"):
            s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except ArtifactNotFound:
        return False


def listdir(uri: str) -> list[str]:
    bucket, key = split(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    names: set[str] = set()
    with translated(uri, "listing"):
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                          Delimiter="/"):
            names.update(item["Key"][len(prefix):] for item in page.get("Contents", []))
            names.update(item["Prefix"][len(prefix):].rstrip("/") for item in page.get("CommonPrefixes", []))
    return sorted(names)


def list_files(uri: str) -> dict[str, str]:
    """The objects directly under ``uri``, each with its identity ``size:ETag`` (from the listing alone)."""
    bucket, key = split(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    files: dict[str, str] = {}
    with translated(uri, "listing"):
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                          Delimiter="/"):
            files.update((item["Key"][len(prefix):], f"{item['Size']}:{item['ETag'].strip(chr(34))}")
                         for item in page.get("Contents", []))
    return files


def remove(uri: str) -> None:
    bucket, key = split(uri)
    client = s3_client()
    with translated(uri, "removal"):
        keys = [key]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                failed = answer["Errors"][0]
                raise StorageError(f"S3 removal of {uri} failed (bucket {bucket!r}): s3://{bucket}/"
                                   f"{failed.get('Key')}: {failed.get('Code')}: {failed.get('Message')}")

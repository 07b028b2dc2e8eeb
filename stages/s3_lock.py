"""One writer per output folder on S3: a lease object taken with a conditional PUT (``If-None-Match: *``).

S3 has no file lock. The first writer creates ``<parent>/.<folder>.lock`` only if it does not exist yet,
and rewrites it every ``lease/3`` seconds while it works, from a background thread. A second writer waits
until the object is gone (the holder finished) or its lease ran out (the holder died: nobody renewed it),
deletes a lapsed lease and tries again; of two that try at once, the conditional PUT lets one win.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from stages import s3

LEASE_SECONDS = 120.0
POLL_SECONDS = 1.0


def lock_uri(folder_uri: str) -> str:
    parent, _, name = folder_uri.rstrip("/").rpartition("/")
    return f"{parent}/.{name}.lock"


def _put(uri: str, owner: str, lease: float, only_if_absent: bool) -> bool:
    """Write the lease; with ``only_if_absent``, False when someone else's lease is there."""
    from botocore.exceptions import ClientError

    bucket, key = s3.split(uri)
    body = json.dumps({"owner": owner, "expires": time.time() + lease}).encode()
    condition = {"IfNoneMatch": "*"} if only_if_absent else {}
    try:
        with s3.translated(uri, "lock"):
            s3.s3_client().put_object(Bucket=bucket, Key=key, Body=body, **condition)
    except s3.StorageError as error:
        cause = error.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise
    return True


def _lapsed(uri: str) -> bool:
    """True when the lease there ran out (its holder stopped renewing it) or is gone already."""
    try:
        lease = json.loads(s3.read_bytes(uri))
    except s3.ArtifactNotFound:
        return True
    except ValueError:  # a lease cut short: treat it as nobody's
        return True
    return float(lease.get("expires", 0)) < time.time()


@contextlib.contextmanager
def held(folder_uri: str, lease: float = LEASE_SECONDS, poll: float = POLL_SECONDS) -> Iterator[None]:
    uri = lock_uri(folder_uri)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    while not _put(uri, owner, lease, only_if_absent=True):
        if _lapsed(uri):
            s3.remove(uri)
        else:
            time.sleep(poll)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            _put(uri, owner, lease, only_if_absent=False)

    renewer = threading.Thread(target=renew, name="s3-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        s3.remove(uri)

"""Storage under failure: bounded S3 calls, errors that name the URI, streamed large objects, safe local files.

Every server here is on 127.0.0.1, started and stopped by the test itself; every S3 test sets small timeouts
through luigi.cfg's [s3] section and gets a fresh client before and after.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from stages import local_paths, s3, storage

from conftest import BUCKET, S3_ENV

REPO = Path(__file__).resolve().parents[1]
FAST = {"connect_timeout": "1", "read_timeout": "1", "max_attempts": "2"}


@pytest.fixture(autouse=True)
def fresh_client():
    storage.reset_s3_client()
    yield
    storage.reset_s3_client()


@pytest.fixture
def credentials(monkeypatch):
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def silent_endpoint(credentials):
    """A TCP server on loopback that accepts every connection and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            with contextlib.suppress(socket.timeout):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


@contextlib.contextmanager
def elapsed_at_most(seconds: float):
    started = time.monotonic()
    yield
    assert time.monotonic() - started < seconds


# --- settings -----------------------------------------------------------------------------------------------

def test_timeouts_and_retries_come_from_the_config(s3_endpoint, config_section):
    config_section("s3", connect_timeout="3", read_timeout="4.5", max_attempts="2", retry_mode="standard")
    config = storage.s3_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (3.0, 4.5)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert storage.s3_client().meta.endpoint_url == s3_endpoint  # client keys still go to boto3


def test_defaults_bound_every_call():
    config = s3.client_arguments({})["config"]
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)
    assert config.retries == {"total_max_attempts": 5, "mode": "standard"}


@pytest.mark.parametrize(("key", "value"), [("no_such_option", "1"), ("max_attempts", "many"),
                                            ("read_timeout", "0"), ("retry_mode", "forever")])
def test_a_bad_key_fails_naming_it(config_section, key, value):
    config_section("s3", **{key: value})
    with pytest.raises(ValueError, match=key):
        storage.s3_client()


# --- errors name the URI ------------------------------------------------------------------------------------

def test_silent_endpoint_fails_within_timeout_times_attempts(silent_endpoint, config_section):
    config_section("s3", endpoint_url=silent_endpoint, **FAST)
    uri = "s3://bucket/some/key.npy"
    for call in (storage.read_bytes, storage.exists, lambda u: storage.write_bytes(u, b"x")):
        with elapsed_at_most(8), pytest.raises(storage.StorageError, match="s3://bucket/some/key.npy") as caught:
            call(uri)
        assert "'bucket'" in str(caught.value) and "timeout" in str(caught.value).lower()


def test_stopped_server_fails_promptly_naming_the_uri(credentials, config_section, tmp_path):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    config_section("s3", endpoint_url=f"http://{host}:{port}", **FAST)
    bucket = f"stopped-{uuid.uuid4().hex[:8]}"
    storage.s3_client().create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/run/part.npy"
    storage.write_array(uri, np.arange(5))
    assert storage.read_array(uri).tolist() == [0, 1, 2, 3, 4]
    server.stop()

    calls = [storage.read_bytes, storage.read_array, storage.exists, storage.listdir, storage.remove,
             lambda u: storage.write_bytes(u, b"x"), lambda u: storage.write_array(u, np.zeros(3 * 2**20)),
             lambda u: local_paths.local_copy(u).__enter__(), lambda u: local_paths.mapped_array(u).__enter__()]
    for call in calls:
        with elapsed_at_most(8), pytest.raises(storage.StorageError, match=uri) as caught:
            call(uri)
        assert isinstance(caught.value, OSError) and not isinstance(caught.value, storage.ArtifactNotFound)
        assert f"'{bucket}'" in str(caught.value)


def test_no_such_bucket_names_bucket_and_key(s3_endpoint, config_section):
    config_section("s3", **FAST)
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/folder/x.json"
    for call in (storage.read_bytes, storage.listdir, lambda u: storage.write_json(u, {"a": 1})):
        with pytest.raises(storage.StorageError, match=uri) as caught:
            call(uri)
        assert "NoSuchBucket" in str(caught.value)


def test_access_denied_names_the_uri(s3_root):
    from botocore.stub import Stubber

    uri = storage.join(s3_root, "secret.npy")
    with Stubber(storage.s3_client()) as stubber:
        for operation in ("get_object", "head_object", "put_object"):
            stubber.add_client_error(operation, service_error_code="AccessDenied", http_status_code=403,
                                     service_message="Access Denied")
        for call in (storage.read_bytes, storage.exists, lambda u: storage.write_bytes(u, b"x")):
            with pytest.raises(storage.StorageError, match=uri) as caught:
                call(uri)
            assert "AccessDenied" in str(caught.value) and BUCKET in str(caught.value)


def test_missing_keys_stay_artifact_not_found(s3_root):
    uri = storage.join(s3_root, "absent.npy")
    for call in (storage.read_bytes, storage.read_array, storage.read_table,
                 lambda u: local_paths.local_copy(u).__enter__(), lambda u: local_paths.mapped_array(u).__enter__()):
        with pytest.raises(storage.ArtifactNotFound, match=uri):
            call(uri)
    assert not storage.exists(uri)


# --- large objects stream ----------------------------------------------------------------------------------

def _etag(uri: str) -> str:
    bucket, key = s3.split(uri)
    return storage.s3_client().head_object(Bucket=bucket, Key=key)["ETag"]


def test_large_array_goes_up_in_parts_and_comes_back(s3_root):
    array = np.random.default_rng(0).integers(0, 2**16, size=(2500, 4000), dtype=np.uint16)  # 20 MB
    uri = storage.join(s3_root, "big.npy")
    storage.write_array(uri, array)
    assert "-" in _etag(uri)  # an S3 multipart ETag is "<md5 of the part md5s>-<parts>"
    assert np.array_equal(storage.read_array(uri), array)
    with local_paths.mapped_arrays([uri, uri]) as (first, second):
        assert isinstance(first, np.memmap) and np.array_equal(first, array) and np.array_equal(second, array)
        scratch = Path(first.filename).parent
    assert not scratch.exists()

    small = storage.join(s3_root, "small.npy")
    storage.write_array(small, array[:10])
    assert "-" not in _etag(small)


def test_large_staged_output_and_local_copy(s3_root):
    payload = os.urandom(12 * 2**20)
    uri = storage.join(s3_root, "model.bin")
    with local_paths.staged_output(uri, suffix=".bin") as path:
        path.write_bytes(payload)
    assert "-" in _etag(uri)
    with local_paths.local_copy(uri, suffix=".bin") as path:
        assert path.read_bytes() == payload


# --- local files ---------------------------------------------------------------------------------------------

def test_files_written_under_umask_zero_are_not_world_writable(tmp_path):
    script = ("import os, sys\nos.umask(0)\n"  # the umask of a process from its start
              "from stages import local_paths, storage\n"
              "storage.write_bytes(sys.argv[1], b'x')\n"
              "with local_paths.staged_output(sys.argv[2]) as path:\n    path.write_bytes(b'y')\n")
    target = tmp_path / "new" / "deeper" / "a.bin"
    staged = tmp_path / "new" / "b.bin"
    subprocess.run([sys.executable, "-c", script, str(target), str(staged)], cwd=REPO, check=True, timeout=120)
    assert target.read_bytes() == b"x" and staged.read_bytes() == b"y"
    assert target.stat().st_mode & 0o777 == 0o644 and staged.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "new" / "deeper").stat().st_mode & 0o777 == 0o755


def test_temporaries_of_a_killed_writer_are_never_listed(tmp_path):
    folder = tmp_path / "shard"
    storage.write_bytes(str(folder / "done.npy"), b"1")
    (folder / ".part.npy.k2j3h4.tmp").write_bytes(b"half")
    assert storage.listdir(str(folder)) == ["done.npy"]

    def crash(handle):
        handle.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        storage.write_with(str(folder / "crash.npy"), crash)
    assert sorted(p.name for p in folder.iterdir()) == [".part.npy.k2j3h4.tmp", "done.npy"]


def test_scratch_folders_go_away_on_errors(any_root):
    uri = storage.join(any_root, "a.npy")
    storage.write_array(uri, np.arange(3))
    seen = []
    for block in (lambda: local_paths.local_copy(uri), lambda: local_paths.staged_output(storage.join(any_root, "b")),
                  lambda: local_paths.mapped_arrays([uri])):
        with pytest.raises(RuntimeError), block() as value:
            path = Path(value[0].filename) if isinstance(value, list) else value
            seen.append(path)
            raise RuntimeError("crash inside the block")
    assert not storage.exists(storage.join(any_root, "b"))
    for path in seen:
        if "hpa-" in str(path):  # scratch (local_copy of a local file is the file itself)
            assert not path.parent.exists()
        else:
            assert path.exists()

"""The storage layer behaves the same on a local folder and on a real S3-protocol server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages import local_paths, storage


def test_bytes_round_trip_and_listing(any_root):
    storage.write_bytes(storage.join(any_root, "a", "x.bin"), b"hello")
    storage.write_bytes(storage.join(any_root, "a", "sub", "y.bin"), b"world")
    assert storage.read_bytes(storage.join(any_root, "a", "x.bin")) == b"hello"
    assert storage.listdir(storage.join(any_root, "a")) == ["sub", "x.bin"]
    assert storage.listdir(storage.join(any_root, "nothing-here")) == []
    assert storage.exists(storage.join(any_root, "a", "sub", "y.bin"))
    assert not storage.exists(storage.join(any_root, "a", "z.bin"))


def test_missing_artifact_names_its_uri(any_root):
    uri = storage.join(any_root, "missing.npy")
    with pytest.raises(storage.ArtifactNotFound, match="missing.npy"):
        storage.read_bytes(uri)


def test_arrays_tables_json(any_root):
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    storage.write_array(storage.join(any_root, "labels.npy"), labels)
    loaded = storage.read_array(storage.join(any_root, "labels.npy"))
    assert loaded.dtype == np.uint16 and np.array_equal(loaded, labels)

    storage.write_arrays(storage.join(any_root, "pair.npz"), cells=labels, nuclei=labels * 2)
    pair = storage.read_arrays(storage.join(any_root, "pair.npz"))
    assert np.array_equal(pair["nuclei"], labels * 2)

    table = pd.DataFrame({"ID": ["a_1", "b_2"], "value": [0.5, 1.5]})
    storage.write_table(storage.join(any_root, "t.csv"), table)
    pd.testing.assert_frame_equal(storage.read_table(storage.join(any_root, "t.csv")), table)

    storage.write_json(storage.join(any_root, "m.json"), {"mAP": 0.5})
    assert storage.read_json(storage.join(any_root, "m.json")) == {"mAP": 0.5}


def test_success_marker_and_remove(any_root):
    folder = storage.join(any_root, "shard-00000")
    storage.write_bytes(storage.join(folder, "part.bin"), b"1")
    assert not storage.is_done(folder)
    storage.mark_done(folder)
    assert storage.is_done(folder)
    storage.remove(folder)
    assert not storage.exists(storage.join(folder, "part.bin"))
    assert not storage.is_done(folder)
    storage.remove(folder)  # removing what is gone is not an error


def test_overwrite_replaces_whole_object(any_root):
    uri = storage.join(any_root, "v.bin")
    storage.write_bytes(uri, b"first version, longer")
    storage.write_bytes(uri, b"second")
    assert storage.read_bytes(uri) == b"second"


def test_local_copy_and_staged_output(any_root):
    uri = storage.join(any_root, "model.bin")
    with local_paths.staged_output(uri, suffix=".bin") as path:
        path.write_bytes(b"weights")
        assert not storage.exists(uri)  # nothing is visible before the block ends
    with local_paths.local_copy(uri, suffix=".bin") as path:
        assert path.read_bytes() == b"weights"


def test_failed_staged_output_writes_nothing(any_root):
    uri = storage.join(any_root, "broken.bin")
    with pytest.raises(RuntimeError):
        with local_paths.staged_output(uri) as path:
            path.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert not storage.exists(uri)


def test_local_write_is_atomic_no_temp_left(tmp_path):
    uri = str(tmp_path / "out" / "x.bin")
    storage.write_bytes(uri, b"data")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.bin"]


def test_s3_client_is_shared(s3_endpoint):
    assert storage.s3_client() is storage.s3_client()
    assert storage.s3_settings()["endpoint_url"] == s3_endpoint


def test_local_files_get_umask_permissions(tmp_path):
    uri = str(tmp_path / "shared.bin")
    storage.write_bytes(uri, b"x")
    assert (tmp_path / "shared.bin").stat().st_mode & 0o777 == 0o644 & ~storage._UMASK

"""Nothing a killed process wrote to scratch or half-wrote beside an artifact survives the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stages import storage

REPO = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_writers_temporary_goes_with_the_next_write(tmp_path):
    target = tmp_path / "submission.csv"
    stale = tmp_path / f".submission.csv.{dead_pid()}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".submission.csv.{os.getppid()}.def456.tmp"  # a writer still at work: kept
    live.write_bytes(b"y")
    storage.write_bytes(str(target), b"ID\n")
    assert not stale.exists() and live.exists() and target.read_bytes() == b"ID\n"
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == [live.name]


def test_a_killed_processes_scratch_folder_goes_with_the_next_one(tmp_path):
    code = ("import os, signal\nfrom stages import scratch\n"
            "probe = scratch.folder('probe-')\nprint(probe.name, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HPA_SCRATCH": str(tmp_path)}  # no other process sweeps here
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    left = Path(done.stdout.strip())
    assert left.is_dir() and left.parent.parent == tmp_path  # SIGKILL: nothing could clean up
    code = "from stages import scratch\nwith scratch.folder('next-'):\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert not left.exists()

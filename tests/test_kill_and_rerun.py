"""SIGKILL in the middle of a run, then the same command again: it finishes the work, redoes only what was not
finished, and every artifact is byte for byte what an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stages import storage
from stages.dev.synth.core import write_dataset

REPO = Path(__file__).resolve().parents[1]


def command(data: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "luigi", "--module", "stages", "TileAll", "--split", "test",
            "--pipeline-input", str(data), "--pipeline-work", str(work), "--pipeline-profile", "demo",
            "--pipeline-shard-size", "2"]


def markers(work: Path) -> dict[str, int]:
    return {str(path.relative_to(work)): path.stat().st_mtime_ns for path in work.rglob(storage.SUCCESS_MARKER)}


def artifacts(work: Path) -> dict[str, bytes]:
    """Every tile artifact (what downstream reads) by its path below the work root."""
    return {str(path.relative_to(work)): path.read_bytes() for path in (work / "tile").rglob("*")
            if path.is_file() and not path.name.startswith(".")}


def test_a_run_killed_after_its_first_shard_reruns_the_rest_and_writes_the_same_bytes(tmp_path):
    data = tmp_path / "data"
    write_dataset(str(data), 0, 6, 96, 96, 21)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(command(data, clean), cwd=REPO, check=True, capture_output=True)

    child = subprocess.Popen(command(data, killed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(name.startswith("segment/") for name in markers(killed)) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finished = markers(killed)
    assert any(name.startswith("segment/") for name in finished)  # killed mid-run: some work was done
    assert len(finished) < len(markers(clean))  # and some was not

    subprocess.run(command(data, killed), cwd=REPO, check=True, capture_output=True)
    after = markers(killed)
    assert {name: after[name] for name in finished} == finished  # what was finished was not redone
    assert set(after) == set(markers(clean))
    assert artifacts(killed) == artifacts(clean)
    assert not [path for path in killed.rglob("*") if path.name.endswith(".tmp")]  # no temporary survives

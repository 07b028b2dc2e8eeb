"""Two runs on one work root: each output is computed once, and neither run loses an input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_two_processes_compute_one_output_once(tmp_path):
    log, work = tmp_path / "runs.log", tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    command = [sys.executable, str(HERE / "concurrent_writer.py"), str(work), str(log)]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in results]
    assert log.read_text() == "ran\n"  # the second writer waited, then found the folder finished

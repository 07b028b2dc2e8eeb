"""bench/ensemble_gpu.py: its whole code path at tiny sizes on a CPU, and its refusal without a GPU.

Each runs the script in a child process (its own Keras backend and imports, as on the GPU machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "ensemble_gpu.py"


def run(*args: str, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_tiny_run_on_cpu_times_every_use_of_the_ensemble(tmp_path):
    out = tmp_path / "ensemble.json"
    done = run("--allow-cpu", "--tiny", "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["complete"] and document["tiny"]
    uses = {row["name"]: row for row in document["uses"]}
    assert len(uses) == 10  # 5 cell models, 3 image models, image model #2 on cells, YOLO
    assert {row["source"] for row in uses.values()} == {"cell", "image", "image_on_cell", "detector"}
    assert uses["image.b7_600_noext (image-on-cell)"]["inputs_per_image"] == 3  # --cells of the tiny run
    assert uses["image.b7_600_noext"]["inputs_per_image"] == 1
    assert uses["yolo.v5s"]["boxes_per_image"] > 0  # the class biases at 0: NMS has boxes to work on
    for row in uses.values():
        assert row["project_s_per_image"] > 0 and row["bare_s_per_image"] > 0
    ensemble = document["ensemble"]
    assert ensemble["project_s_per_image"] == pytest.approx(sum(r["project_s_per_image"] for r in uses.values()),
                                                            abs=1e-4)
    assert ensemble["project_over_bare"] == pytest.approx(ensemble["project_s_per_image"]
                                                          / ensemble["bare_s_per_image"], rel=1e-2)
    assert "| **ensemble** |" in done.stdout


def test_refuses_without_a_gpu_unless_told():
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present: nothing to refuse")
    except ImportError:
        pass
    done = run()
    assert done.returncode == 2
    assert "refusing to run" in done.stderr and "--allow-cpu --tiny" in done.stderr
    done = run("--allow-cpu")  # full sizes on a CPU: refused by the argument check
    assert done.returncode == 2 and "--allow-cpu goes only with --tiny" in done.stderr

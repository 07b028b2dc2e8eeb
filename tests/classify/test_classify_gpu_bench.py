"""bench/classify_gpu.py runs end to end on a tiny model with the TensorFlow backend (the figures are not
tested: the real run needs a GPU and KERAS_BACKEND=jax)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_classify_gpu_bench_smoke():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "classify_gpu.py"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(done.stdout[done.stdout.index("{"):])
    assert result["keras_backend"] == "tensorflow" and result["backbone_source"] == "keras_applications"
    assert result["project_images_per_s"] > 0 and result["bare_jit_images_per_s"] > 0
    assert 0 < result["ratio_project_over_bare"]

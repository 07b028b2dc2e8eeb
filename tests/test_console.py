"""The console of ``python -m stages.demo``: the pipeline's lines, Luigi's INFO, warnings worth reading and the
summary; no TensorFlow/absl C++ lines, no Ultralytics banners, tables or progress bars, no Luigi DEBUG, no
third-party Python warnings. ``--verbose`` brings them back.

A child process runs the demo on a tiny target (6 synthetic images of 128 px; one image model trained 2 x 2
eager steps and the demo detector, 2 + 1 epochs), so TensorFlow and Ultralytics are imported there for the
first time, as in a user's run (about a minute on 2 cores)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import dataclasses, sys
from types import MappingProxyType

import luigi

import stages
from stages import demo
from stages.classify import stage as classify_stage
from stages.zoo import get_profile


def short_profile():
    profile = get_profile("demo")
    models = {name: dataclasses.replace(spec, epochs=2) for name, spec in profile.models.items()}
    return dataclasses.replace(profile, steps_per_epoch=2, models=MappingProxyType(models))


classify_stage.profile = short_profile


class Tiny(luigi.WrapperTask):
    def requires(self):
        return [stages.TrainImageModel(model="image.b7_600_noext"), stages.TrainYolo()]


stages.Tiny = Tiny
stages.__all__.append("Tiny")
sys.exit(demo.main(sys.argv[1:]))
"""
NOISE = re.compile(
    r"^(DEBUG: |[IWE]\d{4} |WARNING: All log messages before absl|.*oneDNN|.*tf\.function retracing"
    r"|WARNING:tensorflow|.*(Deprecation|User|Future|Runtime)Warning|Ultralytics \d|.*engine/trainer"
    r"|\s+from\s+n\s+params|.*\x1b\[|.*summary: \d+ layers|\s+Epoch\s+GPU_mem|\s+all\s+\d)")


def run_demo(tmp_path: Path, *extra: str) -> list[str]:
    config = tmp_path / "run.cfg"
    config.write_text(f"[classify]\nrun_eagerly = true\n\n[detector]\ndevice = cpu\nworkers = 0\n"
                      f"config_dir = {tmp_path / 'ultralytics'}\n")
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config), "PYTHONPATH": str(REPO)}
    for key in ("TF_CPP_MIN_LOG_LEVEL", "YOLO_VERBOSE", "GRPC_VERBOSITY", "PYTHONWARNINGS"):
        env.pop(key, None)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
         "--images", "6", "--test-images", "1", "--size", "128", "--target", "Tiny", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    lines = (child.stdout + child.stderr).splitlines()
    assert child.returncode == 0, "\n".join(lines[-80:])
    return lines


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    return root, run_demo(root)


def test_a_default_run_prints_only_the_pipelines_and_luigis_lines(quiet_run):
    _, lines = quiet_run
    noise = [line for line in lines if NOISE.match(line)]
    assert noise == [], "\n".join(noise[:40])
    assert len(lines) < 100, "\n".join(lines)
    epochs = [line for line in lines if re.match(r"^INFO: \S+: epoch \d+/\d+", line)]
    image = [line for line in epochs if line.startswith("INFO: TrainImageModel_")]
    yolo = [line for line in epochs if line.startswith("INFO: TrainYolo_")]
    assert [line.split(": ")[2].split(":")[0] for line in image] == ["epoch 1/2", "epoch 2/2"]
    assert all(", val_loss " in line and "val macro AUC " in line for line in image)
    assert [line.split(": ")[2].split(" (")[0] for line in yolo] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("val mAP50 " in line for line in yolo)
    assert any(line.startswith("===== Luigi Execution Summary") for line in lines)
    assert not any("has status   PENDING" in line for line in lines)


def test_verbose_brings_luigis_debug_lines_back(quiet_run):
    root, _ = quiet_run
    lines = run_demo(root, "--verbose")  # everything is built: only Luigi's scheduling remains
    assert any(line.startswith("DEBUG: ") for line in lines)
    assert any("has status   DONE" in line for line in lines)

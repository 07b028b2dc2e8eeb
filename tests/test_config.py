"""The embedded defaults (local scheduler, [retcode]) apply from any working directory, under a user's file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LUIGI = Path(sys.executable).with_name("luigi")


def run_luigi(cwd: Path, *arguments: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "LUIGI_CONFIG_PATH"}
    env["PYTHONPATH"] = str(REPO)
    if config is not None:
        env["LUIGI_CONFIG_PATH"] = str(config)
    return subprocess.run([str(LUIGI), "--module", "stages", *arguments], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_failed_run_outside_the_repository_exits_non_zero_without_a_scheduler(tmp_path):
    done = run_luigi(tmp_path, "Manifest", "--pipeline-input", str(tmp_path / "none"),
                     "--pipeline-work", str(tmp_path / "work"))
    assert done.returncode == 30, done.stderr[-2000:]  # [retcode] task_failed, local scheduler: no wait


def test_a_users_config_overrides_what_it_names_and_keeps_the_rest(tmp_path):
    user = tmp_path / "mine.cfg"
    user.write_text(f"[pipeline]\nwork = {tmp_path / 'user-work'}\ninput = {tmp_path / 'none'}\n")
    done = run_luigi(tmp_path, "Manifest", config=user)
    assert done.returncode == 30, done.stderr[-2000:]
    assert str(tmp_path / "none") in done.stderr  # the user's input, in the error that names it


def test_settings_made_before_the_import_keep_their_values(tmp_path):
    code = ("import luigi.configuration\nconfig = luigi.configuration.get_config()\n"
            "config.add_section('pipeline')\nconfig.set('pipeline', 'input', '/set/before')\n"
            "import stages\nfrom stages.config import pipeline\n"
            "print(pipeline().input, pipeline().profile, config.get('core', 'local_scheduler'))\n")
    env = {key: value for key, value in os.environ.items() if key != "LUIGI_CONFIG_PATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["/set/before", "demo", "true"]  # the rest from the embedded defaults

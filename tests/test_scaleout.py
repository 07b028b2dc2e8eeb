"""Scale-out: a central luigid on 127.0.0.1 and two worker processes (the one that schedules Submission and
an assistant, `python -m stages.assist`) against one S3 bucket.

The run goes all the way to Submission; to fit the suite's time budget the fusion uses the detector source
alone (`[fuse] weights = {"detector": 1}`, `gate = none`), which still exercises every kind of task: per-shard stages,
shard fan-out, a training task, fusion, submission, evaluation and report. The bucket is versioned, so
every write of every artifact is counted: no artifact may have been written twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages import storage
from stages.dev.synth.core import write_dataset
from conftest import BUCKET

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(path: Path, endpoint: str, data: str, work: str, scheduler: str) -> Path:
    path.write_text(
        "[core]\n"
        f"local_scheduler = {'true' if scheduler == 'local' else 'false'}\n"
        # Luigi refuses a second identical command on one machine; here both "machines" are this one.
        "no_lock = true\n"
        "[worker]\nkeep_alive = true\nwait_interval = 0.2\nwait_jitter = 0.1\n"
        "[retcode]\nalready_running = 10\nmissing_data = 20\nnot_run = 25\ntask_failed = 30\n"
        "scheduling_error = 35\nunhandled_exception = 40\n"
        f"[pipeline]\ninput = {data}\nwork = {work}\nprofile = demo\nshard_size = 1\n"
        '[fuse]\nweights = {"detector": 1}\ngate = none\n'
        "[detector]\ndevice = cpu\n"
        f"[s3]\nendpoint_url = {endpoint}\n"
    )
    return path


def worker_env(config: Path) -> dict[str, str]:
    return {**os.environ, "LUIGI_CONFIG_PATH": str(config), "PYTHONPATH": str(REPO),
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def luigi_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "luigi", "--module", "stages", "Submission", *extra]


@pytest.fixture
def luigid(tmp_path):
    port = free_port()
    (tmp_path / "luigid-logs").mkdir()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(tmp_path / "luigid.state"), "--logdir", str(tmp_path / "luigid-logs")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("luigid did not start")
    yield port
    server.terminate()
    server.wait(timeout=10)


def object_versions(prefix: str) -> dict[str, int]:
    client = storage.s3_client()
    counts: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def test_luigid_and_two_workers_equal_single_process(s3_endpoint, s3_root, tmp_path, luigid):
    storage.s3_client().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    data = storage.join(s3_root, "data")
    write_dataset(data, 6, 5, 128, 128, 21)

    shared_work = storage.join(s3_root, "shared")
    config = write_config(tmp_path / "workers.cfg", s3_endpoint, data, shared_work, scheduler="luigid")
    scheduler = ["--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid)]
    run = dict(cwd=tmp_path, env=worker_env(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = subprocess.Popen(luigi_command(*scheduler), **run)
    assistant = subprocess.Popen([sys.executable, "-m", "stages.assist", *scheduler], **run)
    driver_output = driver.communicate(timeout=900)[0]
    # Luigi's worker leaves once nothing is pending for it, possibly while the assistant still runs the last
    # tasks; its exit code then says some tasks ran elsewhere (10, 25). A failed task would be 30.
    assert driver.returncode in (0, 10, 25), driver_output[-4000:]
    published = storage.join(shared_work, "published.json")
    deadline = time.monotonic() + 600
    while not storage.exists(published) and assistant.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assistant.send_signal(signal.SIGUSR1)  # finish the current task (there is none left) and leave
    assistant_output = assistant.communicate(timeout=120)[0]
    assert storage.exists(published), assistant_output[-4000:]
    rerun = subprocess.run(luigi_command(*scheduler), cwd=tmp_path, env=worker_env(config), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]  # the whole graph is complete: a no-op, exit 0
    outputs = [driver_output, assistant_output]
    ran = [line.split(") done ", 1)[1].strip() for output in outputs for line in output.splitlines()
           if ") done " in line]
    assert any(") done " in line for line in assistant_output.splitlines()), assistant_output[-3000:]
    assert len(ran) == len(set(ran)), "a task ran on both workers"

    single_work = storage.join(s3_root, "single")
    single = write_config(tmp_path / "single.cfg", s3_endpoint, data, single_work, scheduler="local")
    done = subprocess.run(luigi_command(), cwd=tmp_path, env=worker_env(single), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    shared = storage.read_table(storage.join(shared_work, "submission.csv"), keep_default_na=False)
    alone = storage.read_table(storage.join(single_work, "submission.csv"), keep_default_na=False)
    assert len(shared) == 5 and shared.equals(alone)
    assert storage.read_json(storage.join(shared_work, "evaluation.json"))["mAP"] == \
        storage.read_json(storage.join(single_work, "evaluation.json"))["mAP"]

    versions = object_versions(shared_work.split(f"{BUCKET}/", 1)[1] + "/")
    markers = [key for key in versions if key.endswith(storage.SUCCESS_MARKER)]
    assert len(markers) >= 3 * 5  # segment, detect, match... for each of the 5 shards of test
    twice = {key: count for key, count in versions.items() if count > 1}
    assert not twice, f"artifacts written more than once: {sorted(twice)[:5]}"

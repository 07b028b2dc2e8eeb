"""The demo pipeline three ways on the same tiny synthetic data: in this process, then with `[runner] mode =
docker` (every stage task in its stage image, as the image's non-root user) on a local work folder and on
moto's S3 server on 127.0.0.1. The docker runs must publish the in-process run's submission.csv byte for byte.

The local docker run gives containers no network at all (`--network none`): nothing may download at run
time. The S3 run needs the host network to reach the server on 127.0.0.1.

The driver makes each split's manifest itself before it schedules anything (stages.inputs.validate_inputs),
whatever the runner, so the manifest image is run on its own: the Manifest task through the docker runner,
into a fresh folder, must write the files the driver wrote.
"""

from __future__ import annotations

import configparser
import filecmp
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from engine import DOCKER, REPO

PYTHON = str(REPO / ".venv" / "bin" / "python")
IMAGE_USER = (10001, 10001)  # images/base/Dockerfile's hpa user
BUCKET = "hpa-local-test"
# tiny and quick: the sizes `.ci/run STAGE` runs a stage on
DATA = ["--images", "12", "--test-images", "3", "--size", "256"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def write_config(path: Path, runner: dict[str, str], s3: dict[str, str] | None = None) -> Path:
    """luigi.cfg with the run's [runner] (and [s3]) keys: the docker runner mounts this one file into every
    container, so it must hold everything the container reads from a config file."""
    config = configparser.ConfigParser()
    config.read(REPO / "luigi.cfg")
    for section, values in (("runner", runner), ("s3", s3 or {})):
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, value)
    with open(path, "w") as handle:
        config.write(handle)
    return path


def demo(data: str, work: str, config: Path, log: Path, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    with open(log, "w") as handle:
        done = subprocess.run([PYTHON, "-m", "stages.demo", "--data", data, "--work", work, *DATA],
                              cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, "LUIGI_CONFIG_PATH": str(config), **(env or {})})
    seconds = time.monotonic() - started
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-30:]
        raise RuntimeError(f"demo run failed ({done.returncode}) after {seconds:.0f} s, {log}:\n" + "\n".join(tail))
    return seconds


def writable_by_image_user(folder: Path) -> None:
    """A bind-mounted work folder must be writable by the image's user (uid 10001), as a Kubernetes volume
    is through fsGroup: the containers write every artifact into it."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, *IMAGE_USER)


def same_bytes(expected: bytes, found: bytes, what: str) -> str:
    if expected != found:
        raise AssertionError(f"{what}: submission.csv differs from the in-process run's")
    return f"{what}: submission.csv identical to the in-process run's ({len(found)} bytes)"


MANIFEST_IN_ITS_IMAGE = """
import sys
import luigi.configuration
config = luigi.configuration.get_config()
config.set("pipeline", "input", sys.argv[1])
config.set("pipeline", "work", sys.argv[2])
import stages
from stages import runners
runners.run_in_docker(stages.Manifest(split="test"))
"""


def manifest_run(scratch: Path, data: Path, config: Path, driver_work: Path) -> str:
    work = scratch / "work-manifest"
    writable_by_image_user(work)
    subprocess.run([PYTHON, "-c", MANIFEST_IN_ITS_IMAGE, str(data), str(work)], cwd=REPO, check=True,
                   env={**os.environ, "LUIGI_CONFIG_PATH": str(config)})
    written = sorted(path.relative_to(work) for path in (work / "manifest").rglob("*")
                     if path.is_file() and not path.name.endswith(".lock"))
    if not written:
        raise AssertionError("the manifest image wrote nothing")
    _, mismatch, errors = filecmp.cmpfiles(work, driver_work, [str(path) for path in written], shallow=False)
    if mismatch or errors:
        raise AssertionError(f"the manifest image's files differ from the driver's: {mismatch + errors}")
    return f"manifest image, Manifest(split=test): {len(written)} files identical to the driver's"


def local_runs(scratch: Path) -> tuple[Path, list[str], bytes]:
    data = scratch / "data"
    results = []
    inprocess = scratch / "work-inprocess"
    seconds = demo(str(data), str(inprocess), write_config(scratch / "inprocess.cfg", {"mode": "inprocess"}),
                   scratch / "demo-inprocess.log")
    expected = (inprocess / "submission.csv").read_bytes()
    results.append(f"in-process demo: {seconds:.0f} s")
    docker_work = scratch / "work-docker"
    writable_by_image_user(docker_work)
    config = write_config(scratch / "docker-local.cfg",
                          {"mode": "docker", "docker": DOCKER, "network": "none", "accelerator": "none"})
    seconds = demo(str(data), str(docker_work), config, scratch / "demo-docker-local.log")
    results.append(f"docker runner, local work folder, --network none: {seconds:.0f} s")
    results.append(same_bytes(expected, (docker_work / "submission.csv").read_bytes(), "docker, local"))
    results.append(manifest_run(scratch, data, config, docker_work))
    return data, results, expected


def s3_run(scratch: Path, data: Path, expected: bytes) -> list[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(p for p in data.rglob("*") if p.is_file()):
            client.upload_file(str(path), BUCKET, f"data/{path.relative_to(data)}")
        config = write_config(scratch / "docker-s3.cfg",
                              {"mode": "docker", "docker": DOCKER, "network": "host", "accelerator": "none"},
                              {"endpoint_url": endpoint, "region_name": "us-east-1"})
        seconds = demo(f"s3://{BUCKET}/data", f"s3://{BUCKET}/work", config, scratch / "demo-docker-s3.log",
                       env=CREDENTIALS)
        found = client.get_object(Bucket=BUCKET, Key="work/submission.csv")["Body"].read()
        return [f"docker runner, moto S3 on {endpoint}, --network host: {seconds:.0f} s",
                same_bytes(expected, found, "docker, S3")]
    finally:
        server.stop()


def run_all(scratch: Path) -> list[str]:
    data, results, expected = local_runs(scratch)
    results += s3_run(scratch, data, expected)
    for line in results:
        print(line, flush=True)
    return results


if __name__ == "__main__":
    run_all(Path(sys.argv[1]))

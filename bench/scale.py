"""The real task graph at the real job's size, scheduled and "run" from nothing to a published Submission.

    .venv/bin/python -m bench.scale --train 100000 --external 0 --test 10000
    .venv/bin/python -m bench.scale --train 10000 --test 10000 --scheduler luigid --workers 4
    .venv/bin/python -m bench.scale --train 10000 --test 1000 --store s3       # moto's S3 server on loopback

The pipeline's own tasks, fingerprints and manifests with the ``hpa2021`` profile, over manifests of that
many images (written through the manifest contract: no image files exist), with ``[runner] mode = markers``:
every task's work is replaced by writing its folder's marker (and, for a task that is not per shard, its
fixed-name files, empty, so ``Submission`` publishes real copies). What is left is what the real job pays
before and around its work: building the graph, scheduling it, checking and writing every output.

Each measurement runs in a fresh process. Printed: the task count, the wall time of ``luigi.build``, the time
per task, for S3 the request count by operation and per shard and stage; the last line is
``TASKS tasks, SECONDS s, MS ms/task``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, scheduling


def config_text(root: str, endpoint: str | None, external: bool, shard_size: int, tasks_per_stage: int) -> str:
    text = (f"[pipeline]\ninput = {root}/input\nwork = {root}/work\nprofile = hpa2021\n"
            f"shard_size = {shard_size}\ntasks_per_stage = {tasks_per_stage}\n"
            f"external = {root + '/external' if external else ''}\n"
            "[runner]\nmode = markers\n[core]\nlocal_scheduler = true\n")
    if endpoint:
        text += f"[s3]\nendpoint_url = {endpoint}\nregion_name = us-east-1\n"
    return text


def write_inputs(images: dict[str, int], shard_size: int) -> None:
    """The splits' manifests (as the Manifest task would write them from a listing) and an empty truth
    table, so Evaluate is part of the graph as on data with known truth."""
    import stages
    from stages import storage
    from stages.classes import CHANNELS
    from stages.manifest import contract, core
    from stages.submit.stage import truth_uri

    for split, count in images.items():
        if not count:
            continue
        ids = [f"{split}_{index:07d}" for index in range(count)]
        names = [f"{image_id}_{channel}.png" for image_id in ids for channel in CHANNELS]
        task = stages.Manifest(split=split)
        contract.MANIFEST.write(task.folder(), core.build_manifest(names, None, shard_size))
        storage.mark_done(task.folder())
    storage.write_bytes(storage.join(truth_uri(), "cells.csv"), b"ID,cell_id,Label\n")


def _child(scheduler: str, workers: int, port: int | None) -> None:
    import luigi

    import stages
    from stages import storage

    counts: collections.Counter = collections.Counter()
    if storage.is_s3(luigi.configuration.get_config().get("pipeline", "work")):
        storage.s3_client().meta.events.register("before-call.s3", lambda model, **_: counts.update([model.name]))
    options = {"local_scheduler": True} if scheduler == "local" else {
        "local_scheduler": False, "scheduler_host": "127.0.0.1", "scheduler_port": port}
    started = time.perf_counter()
    result = luigi.build([stages.Submission(split="test")], workers=workers, detailed_summary=True,
                         log_level="WARNING", **options)
    seconds = time.perf_counter() - started
    scheduled = re.search(r"Scheduled (\d+) tasks", result.summary_text)
    print(json.dumps({"status": str(result.status), "seconds": seconds, "s3_calls": dict(counts),
                      "tasks": int(scheduled[1]) if scheduled else 0}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_luigid(scratch: Path) -> tuple[int, Path]:
    port, pidfile = free_port(), scratch / "luigid.pid"
    luigid = Path(sys.executable).with_name("luigid")
    subprocess.run([str(luigid), "--background", "--address", "127.0.0.1", "--port", str(port), "--pidfile",
                    str(pidfile), "--logdir", str(scratch), "--state-path", str(scratch / "state.pickle")], check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return port, pidfile
        time.sleep(0.1)
    raise RuntimeError("luigid did not start")


def stop_luigid(pid: int) -> None:
    """Stop it and wait: it writes its state file on the way out, into the folder about to be removed."""
    os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def measure(args: argparse.Namespace, scratch: Path, endpoint: str | None) -> dict:
    root = f"s3://{scheduling.BUCKET}/scale" if endpoint else str(scratch / "scale")
    config = scratch / "scale.cfg"
    text = config_text(root, endpoint, args.external > 0, args.shard_size, args.tasks_per_stage)
    config.write_text(text)
    scheduling.apply_config(text)
    write_inputs({"train": args.train, "external": args.external, "test": args.test}, args.shard_size)
    port, pidfile = start_luigid(scratch) if args.scheduler == "luigid" else (None, None)
    try:
        command = [sys.executable, "-m", "bench.scale", "--child", "--scheduler", args.scheduler,
                   "--workers", str(args.workers)] + (["--port", str(port)] if port else [])
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(config), **(scheduling.S3_ENV if endpoint else {})}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=common.REPO, env=env, capture_output=True, text=True, check=False)
        process_seconds = time.perf_counter() - started
    finally:
        if pidfile and pidfile.exists():
            stop_luigid(int(pidfile.read_text().strip()))
    if done.returncode:
        raise RuntimeError(f"the scheduled run failed:\n{done.stderr[-4000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_seconds": process_seconds,
            "log": done.stderr}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--external", type=int, default=0)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--scheduler", choices=("local", "luigid"), default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--store", choices=("local", "s3"), default="local")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--tasks-per-stage", type=int, default=64)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.scheduler, args.workers, args.port)
        return 0
    with tempfile.TemporaryDirectory(prefix="hpa-bench-scale-") as scratch:
        if args.store == "s3":
            with scheduling.moto_server() as endpoint:
                import boto3

                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
                    Bucket=scheduling.BUCKET)
                result = measure(args, Path(scratch), endpoint)
        else:
            result = measure(args, Path(scratch), None)
    if "SUCCESS" not in result["status"]:
        print(f"{result['log'][-4000:]}\nrun did not succeed: {result['status']}", file=sys.stderr)
        return 1
    shards = sum(-(-count // args.shard_size) for count in (args.train, args.external, args.test))
    calls = sum(result["s3_calls"].values())
    print(f"{args.train} train + {args.external} external + {args.test} test images, shard_size {args.shard_size} "
          f"({shards} shards), tasks_per_stage {args.tasks_per_stage}, {args.scheduler} scheduler, "
          f"{args.workers} worker(s), {args.store} storage: {result['status']}; whole process "
          f"{result['process_seconds']:.1f} s")
    if args.store == "s3":
        print(f"S3 requests: {calls} ({', '.join(f'{op} {n}' for op, n in sorted(result['s3_calls'].items()))})")
    tasks, seconds = result["tasks"], result["seconds"]
    print(f"{tasks} tasks, {seconds:.1f} s, {1000 * seconds / max(1, tasks):.1f} ms/task")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scheduling overhead: how long Luigi takes to find there is nothing to do over 10,000 images.

    .venv/bin/python -m bench.scheduling                 # 10,000 test + 10,000 train images, shard_size 32
    .venv/bin/python -m bench.scheduling --images 2000   # smaller

Setting up "every artifact already present" for 10,000 images by running the pipeline is out of reach, so
the artifacts are made the way Luigi looks at them: the task graph is walked from ``Submission`` (each
task's ``requires()``, and for an all-shards task every shard task it checks in ``complete()``), and each
output gets an empty file at its URI: the ``_SUCCESS`` marker that closes every declared task's folder
(``task.output().uri``). The manifests are real (10,000 rows each, written through the manifest contract;
shard tasks are listed from them), and
``Submission``'s ``published.json`` holds the record it expects, with its copies present. That is exactly
what the tasks' ``complete()`` reads: the existence of those URIs, the manifest, and the published record.

Then, each in a fresh process (so imports and Luigi's instance cache start cold, as a user's command does),
``luigi.build([task], local_scheduler=True)`` is timed on local storage and against moto's S3 server on
loopback, counting the S3 calls through a botocore event hook on the storage layer's client:

- ``Submission``: the whole pipeline's goal; its record is current, so Luigi checks it alone (the target).
- ``FuseAll`` / ``TileAll``: a completeness check that visits every shard (what Luigi does below a task
  whose own output is missing or stale, e.g. after changing a submission setting).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common

BUCKET = "hpa-bench"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
TARGETS = {"local": 10.0, "s3": 30.0}  # seconds for the no-op Submission (issue 7)
TASKS = ("Submission", "FuseAll", "TileAll")


def config_text(input_uri: str, work_uri: str, shard_size: int, endpoint: str | None) -> str:
    text = (f"[pipeline]\ninput = {input_uri}\nwork = {work_uri}\nprofile = hpa2021\nshard_size = {shard_size}\n"
            "[core]\nlocal_scheduler = true\n")
    if endpoint:
        text += f"[s3]\nendpoint_url = {endpoint}\nregion_name = us-east-1\n"
    return text


def task_of(name: str):
    import stages

    return getattr(stages, name)(split="test")


# ------------------------------------------------------------------------------------------------ set-up


def write_manifest(task, images: int, shard_size: int) -> None:
    from stages import storage
    from stages.classes import CHANNELS
    from stages.manifest import contract as manifest_contract
    from stages.manifest import core as manifest_core

    ids = [f"img_{task.split}_{index:06d}" for index in range(images)]
    names = [f"{image_id}_{channel}.png" for image_id in ids for channel in CHANNELS]
    manifest_contract.MANIFEST.write(task.folder(), manifest_core.build_manifest(names, None, shard_size))
    storage.mark_done(task.folder())


def populate(images: int, shard_size: int, threads: int = 10) -> collections.Counter:
    """Every output the graph under ``Submission`` checks, as empty files (see the module doc); returns the
    number of tasks per class. Uses the luigi config of this process."""
    import luigi

    from stages import Manifest, Submission, storage
    from stages.manifest.core import INPUT_SPLITS
    from stages.submit.publish import PublishedTarget
    from stages.submit.stage import truth_uri
    from stages.shards import ShardGroup
    from stages.tasking import StorageTarget

    storage.write_bytes(storage.join(truth_uri(), "cells.csv"), b"ID,cell_id,Label\n")  # truth known: Evaluate runs
    seen: set[str] = set()
    kinds: collections.Counter = collections.Counter()
    markers: list[str] = []
    published = []

    def walk(task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        members = task.members() if isinstance(task, ShardGroup) else []  # a group's shards are its output
        for dependency in [*luigi.task.flatten(task.requires()), *members]:
            walk(dependency)
        kinds[type(task).__name__] += 1
        for target in luigi.task.flatten(task.output()):
            if isinstance(target, PublishedTarget):
                published.append(target)
            elif isinstance(target, StorageTarget):
                if not isinstance(task, Manifest):
                    markers.append(target.uri)
            else:
                raise TypeError(f"{task.task_id}: unexpected output {target!r}")

    for split in INPUT_SPLITS:  # all-shards tasks list their shards from the manifest while the graph is built
        write_manifest(Manifest(split=split), images, shard_size)
    walk(Submission(split="test"))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda uri: storage.write_bytes(uri, b""), markers))
    empty = hashlib.sha256(b"").hexdigest()
    for target in published:
        for copy in target.expected["copies"]:
            storage.write_bytes(copy, b"")
        storage.write_json(target.uri, {**target.expected, "sha256": {copy: empty for copy in target.expected["copies"]}})
    return kinds


# ------------------------------------------------------------------------------------------------ measuring


def _child(task_name: str) -> None:
    """In a fresh process: time luigi.build of one task; count S3 calls by operation."""
    import luigi

    from stages import storage

    counts: collections.Counter = collections.Counter()
    if storage.is_s3(luigi.configuration.get_config().get("pipeline", "work")):
        storage.s3_client().meta.events.register(
            "before-call.s3", lambda model, **_: counts.update([model.name]))
    task = task_of(task_name)
    started = time.perf_counter()
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    finished = time.perf_counter()
    print(json.dumps({
        "task": task_name, "status": str(result.status), "build_s": finished - started, "s3_calls": dict(counts),
        "keras_imported": "keras" in sys.modules,
    }))


def run_child(task_name: str, config: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.scheduling", "--child", task_name], cwd=common.REPO,
                          env={**os.environ, **env, "LUIGI_CONFIG_PATH": str(config)}, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{task_name} child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_s": wall}


def apply_config(text: str) -> None:
    """This process's luigi config from the same text the children read."""
    import configparser

    import luigi.configuration

    from stages import storage

    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    config = luigi.configuration.get_config()
    for section in parsed.sections():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in parsed.items(section):
            config.set(section, key, value)
    storage.reset_s3_client()


def measure_store(name: str, input_uri: str, work_uri: str, images: int, shard_size: int, scratch: Path,
                  endpoint: str | None, tasks: list[str]) -> list[dict]:
    text = config_text(input_uri, work_uri, shard_size, endpoint)
    config = scratch / f"{name}.cfg"
    config.write_text(text)
    apply_config(text)
    started = time.perf_counter()
    kinds = populate(images, shard_size)
    print(f"  {name}: {sum(kinds.values())} tasks made complete in {time.perf_counter() - started:.0f} s "
          f"({', '.join(f'{kind} {count}' for kind, count in kinds.most_common(6))}, ...)", flush=True)
    results = []
    for task_name in tasks:
        result = run_child(task_name, config, S3_ENV if endpoint else {})
        result["store"] = name
        results.append(result)
        calls = sum(result["s3_calls"].values())
        print(f"  {name} {task_name}: {result['status']}, build {result['build_s']:.2f} s, "
              f"{calls} S3 calls {result['s3_calls'] if calls else ''}", flush=True)
    return results


@contextlib.contextmanager
def moto_server():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {key: os.environ.get(key) for key in S3_ENV}
    os.environ.update(S3_ENV)
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def report(results: list[dict], images: int, shard_size: int) -> str:
    rows = []
    for r in results:
        calls = sum(r["s3_calls"].values())
        detail = ", ".join(f"{op} {n}" for op, n in sorted(r["s3_calls"].items())) if calls else "-"
        rows.append((r["task"], r["store"], r["status"].replace("LuigiStatusCode.", ""), f"{r['build_s']:.2f}",
                     f"{r['process_s']:.2f}", calls if r["store"] == "s3" else "-", detail,
                     "yes" if r["keras_imported"] else "no"))
    text = common.table(["task", "storage", "luigi status", "luigi.build s", "whole process s", "S3 calls",
                         "by operation", "keras imported"], rows)
    title = (f"## No-op scheduling, {images} test images (+ {images} train), shard_size {shard_size} "
             f"({-(-images // shard_size)} shards per split)")
    lines = [title, text, "", "Targets (issue 7):"]
    for r in results:
        if r["task"] == "Submission":
            limit = TARGETS[r["store"]]
            verdict = "MET" if r["process_s"] < limit else "MISSED"
            lines.append(f"- no-op Submission on {r['store']}: {r['process_s']:.1f} s for the whole process "
                         f"({r['build_s']:.2f} s in luigi.build): {verdict} (must be < {limit:g} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=10_000, help="images per split")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--stores", nargs="+", choices=("local", "s3"), default=["local", "s3"])
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    common.print_machine("Scheduling overhead", "python -m bench.scheduling " + " ".join(sys.argv[1:]))
    results = []
    with tempfile.TemporaryDirectory(prefix="hpa-bench-scheduling-") as scratch:
        scratch_path = Path(scratch)
        if "local" in args.stores:
            results += measure_store("local", str(scratch_path / "input"), str(scratch_path / "work"), args.images,
                                     args.shard_size, scratch_path, None, args.tasks)
        if "s3" in args.stores:
            with moto_server() as endpoint:
                import boto3

                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
                results += measure_store("s3", f"s3://{BUCKET}/input", f"s3://{BUCKET}/work", args.images,
                                         args.shard_size, scratch_path, endpoint, args.tasks)
    print()
    print(report(results, args.images, args.shard_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())

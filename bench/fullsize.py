"""The ``hpa2021`` profile at full size, end to end: every stage, every model at its real architecture and
input size (B7 at 600 and 720 px, 256-px tiles, YOLOv5s at 512 px), on 2048-px synthetic fields, to a
valid submission, with each model's training capped to a few steps (``[classify] max_steps``,
``[detector] max_epochs``: operational settings, outside the fingerprints; the models are not the
profile's, the shapes, memory and code paths are).

Each stage runs as ``luigi --module stages <its whole task>`` in a child process of its own, in pipeline
order, so each row's wall time and peak memory (the child's max RSS) are that stage's alone.

    .venv/bin/python -m bench.fullsize                       # 4 train + 2 test images of 2048 px
    .venv/bin/python -m bench.fullsize --max-steps 1 --root /tmp/fullsize   # keep (and reuse) data and work
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common

def steps() -> list[tuple[str, list[str]]]:
    """``(stage, luigi task arguments)`` in pipeline order, so each child finds its upstream finished. Each
    classifier trains in a child of its own: its peak is its own, and a B7 after a B7 in one process does
    not fit in 24 GiB (TensorFlow keeps what it allocated)."""
    from stages.zoo import get_profile

    profile = get_profile("hpa2021")
    training = [("classify", [f"Train{role.capitalize()}Model", "--model", spec.name])
                for role in ("cell", "image") for spec in profile.role(role)]
    return [
        ("manifest", ["Manifest", "--split", "train"]), ("manifest", ["Manifest", "--split", "test"]),
        ("segment", ["SegmentAll", "--split", "train"]), ("segment", ["SegmentAll", "--split", "test"]),
        ("tile", ["TileAll", "--split", "train"]), ("tile", ["TileAll", "--split", "test"]),
        ("pseudolabel", ["PseudoLabel"]),
        *training,
        ("detect", ["TrainYolo"]), ("detect", ["DetectAll", "--split", "test"]),
        ("match", ["MatchAll", "--split", "test"]),
        ("classify + fuse", ["FuseAll", "--split", "test"]),  # every classifier's predictions, then the fusion
        ("submit", ["Submission"]),
    ]


def config_text(data: Path, work: Path, args: argparse.Namespace) -> str:
    return (f"[pipeline]\ninput = {data}\nwork = {work}\nprofile = hpa2021\n"
            f"[classify]\nmax_steps = {args.max_steps}\nmicro_batch = {args.micro_batch}\npredict_batch_size = 4\n"
            f"[detector]\ndevice = cpu\nmax_epochs = {args.max_epochs}\npredict_batch = 2\n"
            f"[segment]\nbackend = {args.segment_backend}\n")


def run_step(task: list[str], env: dict) -> tuple[float, float, int]:
    """``(seconds, peak GiB, exit status)`` of one ``luigi --module stages`` child."""
    command = [sys.executable, "-m", "luigi", "--module", "stages", *task]
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=common.REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage: its peak alone
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code:
            log.seek(0)
            print(log.read()[-6000:], file=sys.stderr)
    return seconds, usage.ru_maxrss / 2 ** 20, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fullsize", description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=4)
    parser.add_argument("--test", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--max-steps", type=int, default=2, help="[classify] max_steps")
    parser.add_argument("--max-epochs", type=int, default=1, help="[detector] max_epochs (per training phase)")
    parser.add_argument("--micro-batch", type=int, default=1, help="[classify] micro_batch (divides 16)")
    parser.add_argument("--segment-backend", default="classic")
    parser.add_argument("--root", help="keep data and work here (default: a temporary folder)")
    args = parser.parse_args(argv)
    common.print_machine("hpa2021 at full size, end to end", "python -m bench.fullsize " + " ".join(argv or sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="hpa-fullsize-") as scratch:
        root = Path(args.root or scratch)
        data, work = root / "data", root / "work"
        from stages.dev.synth.core import write_dataset

        if (data / "_SUCCESS").exists():  # a --root of an earlier run: the same files, so its finished work counts
            print(f"reusing the data in {data}")
        else:
            started = time.perf_counter()
            write_dataset(str(data), args.train, args.test, args.size, args.size, seed=3)
            print(f"{args.train} + {args.test} synthetic {args.size}-px fields in {time.perf_counter() - started:.0f} s")
        config = root / "fullsize.cfg"
        config.write_text(config_text(data, work, args))
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(config)}
        rows, failed = [], None
        for stage, task in steps():
            seconds, peak, code = run_step(task, env)
            rows.append((stage, " ".join(task), f"{seconds:.0f}", f"{peak:.2f}", "ok" if code == 0 else f"exit {code}"))
            print(" | ".join(rows[-1]), flush=True)
            if code:
                failed = task
                break
        print(common.table(("stage", "task", "seconds", "peak GiB (max RSS)", "result"), rows))
        submission = work / "submission.csv"
        if failed is None and submission.exists():
            lines = submission.read_text().count("\n") - 1
            print(f"submission.csv: {lines} image rows, {submission.stat().st_size} bytes")
        return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

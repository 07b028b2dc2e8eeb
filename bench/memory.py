"""Peak memory (max RSS) of the per-shard CPU stages, run for real on one shard of synthetic fields.

The real tasks' ``run_here()`` (Manifest, then Segment, Tile and ImageInputs of shard 0) each run in a
fresh child process with the ``hpa2021`` profile (tiles 256, image-on-cell 600, image inputs up to 720),
so each peak is that stage's alone. A child reports its own peak RSS (VmHWM) after its imports and at
the end, and its wall time.

    .venv/bin/python -m bench.memory --images 32       # the default shard size; about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common

LIMIT_GIB = 2.0
STAGES = ("segment", "tile", "image_inputs")


def peak_rss_kib() -> int:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over from the parent through
    fork and exec, so a child of a big parent would report the parent's size."""
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])


def _child(stage: str) -> None:
    """Runs inside the child: one stage of shard 0 with the config that LUIGI_CONFIG_PATH names."""
    from stages import ImageInputs, Manifest, Segment, Tile
    from stages.zoo import get_profile

    baseline = peak_rss_kib()
    started = time.perf_counter()
    if stage == "segment":
        Manifest(split="test").run_here()
        Segment(split="test", shard=0).run_here()
    elif stage == "tile":
        Tile(split="test", shard=0).run_here()
    elif stage == "image_inputs":
        size = max(spec.input_size for spec in get_profile("hpa2021").role("image"))
        ImageInputs(split="test", shard=0, size=size).run_here()
    else:
        raise SystemExit(f"unknown stage {stage}")
    peak = peak_rss_kib()
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "seconds": time.perf_counter() - started}))


def measure(fields: list[common.Field], images: int) -> list[dict]:
    """Write a shard of ``images`` test images (the distinct ``fields`` reused in turn) and run each stage."""
    results = []
    with tempfile.TemporaryDirectory(prefix="hpa-bench-memory-") as scratch:
        root = Path(scratch)
        common.write_test_split(root / "input", fields, images)
        config = root / "bench.cfg"
        config.write_text(
            "[pipeline]\n"
            f"input = {root / 'input'}\nwork = {root / 'work'}\nprofile = hpa2021\nshard_size = {images}\n"
            "[segment]\nbackend = classic\n"
        )
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(config)}
        for stage in STAGES:
            done = subprocess.run([sys.executable, "-m", "bench.memory", "--child", stage], cwd=common.REPO,
                                  env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"the {stage} child failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append({"stage": stage, "images": images, **result})
            print(f"  {stage}: peak {result['peak_kib'] / 2**20:.2f} GiB, {result['seconds']:.0f} s", flush=True)
    return results


def report(fields: list[common.Field], images: int) -> str:
    print(f"peak memory: one shard of {images} {fields[0].field.shape[1]}-px images per stage", flush=True)
    results = measure(fields, images)
    body = [(r["stage"], r["images"], f"{r['baseline_kib'] / 2**20:.2f}", f"{r['peak_kib'] / 2**20:.2f}",
             f"{r['seconds']:.1f}", f"{r['images'] / r['seconds']:.2f}") for r in results]
    worst = max(r["peak_kib"] for r in results) / 2**20
    text = common.table(["stage (run_here, one shard)", "images", "RSS after imports GiB", "peak RSS GiB",
                         "seconds", "images/s"], body)
    verdict = "MET" if worst < LIMIT_GIB else "MISSED"
    return (f"## Peak memory per shard (hpa2021 sizes)\n{text}\n"
            f"- peak of any per-shard CPU stage: {worst:.2f} GiB: {verdict} (must be < {LIMIT_GIB:g} GiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=32, help="images in the shard (default shard_size)")
    parser.add_argument("--distinct", type=int, default=4, help="distinct synthetic fields, reused in turn")
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    common.print_machine("Peak memory per shard", "python -m bench.memory " + " ".join(sys.argv[1:]))
    print(report(common.synthetic_fields(args.distinct, args.size), args.images))
    return 0


if __name__ == "__main__":
    sys.exit(main())

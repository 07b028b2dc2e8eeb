"""`.ci/run images`: the stage images built and run for real on this machine, from a clean one.

1. Docker's engine and debootstrap from Debian if missing; dockerd started without a bridge, stopped at the end.
2. Local test bases standing in for the upstream ones (images/local-test/engine.py), then every target of
   docker-bake.hcl with the project's own Dockerfiles (stage_images.py): size and build time of each.
3. The Keras-on-JAX images run the classify stage's prediction on the CPU (jax_check.py).
4. The demo pipeline in process, then every stage in its own image on a local folder and on moto's S3
   server; the submissions must be identical (pipeline_runs.py).

    .venv/bin/python images/local-test/run.py [--scratch DIR] [--skip-jax] [--build-only]

Logs (every build's, dockerd's, every demo run's) go to the scratch folder, kept at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import engine
import jax_check
import pipeline_runs
import stage_images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="images/local-test/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--scratch", type=Path, help="logs and work folders (default: a new temporary folder)")
    parser.add_argument("--skip-jax", action="store_true", help="leave out the Keras-on-JAX images (about 5 GB)")
    parser.add_argument("--build-only", action="store_true", help="build the images, run nothing")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="hpa-images-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"logs and work folders: {scratch}", flush=True)
    started = time.monotonic()
    engine.install_tools()
    with engine.engine(scratch):
        images = stage_images.StageImages(engine.standin_bases(scratch), scratch)
        groups = ("bases", "default") if args.skip_jax else ("bases", "default", "keras-jax")
        built = [images.build(name) for name in images.targets(*groups)]
        print(stage_images.table(built), flush=True)
        if not args.build_only:
            if not args.skip_jax:
                for accelerator in ("cuda", "tpu"):
                    print(jax_check.predict_in(images.built[f"classify-jax-{accelerator}"].image, scratch), flush=True)
            pipeline_runs.run_all(scratch)
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

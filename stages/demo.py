"""The main job on a fresh machine: synthetic HPA data, then the whole pipeline with the embedded defaults.

    python -m stages.demo                      # data/synthetic -> work/, demo profile, local scheduler
    python -m stages.demo --target TileAll     # stop after a task
    python -m stages.demo --stage segment      # one stage's task over a whole split (what .ci/run STAGE runs)
    python -m stages.demo --verbose            # also Luigi's DEBUG lines and every library's own output

Synthetic data is generated only into an empty or absent ``--data`` folder; a folder the generator finished
(its ``_SUCCESS``) or one with ``train.csv`` is used as it is, anything else is refused. So a second run
reuses the data and Luigi finds every finished artifact: it does no work twice.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time

import luigi
import luigi.configuration
from luigi.execution_summary import LuigiStatusCode

import stages
from stages import inputs, quiet, storage
from stages.config import pipeline
from stages.manifest.core import InputError
from stages.submit.publish import Submission, published_text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stages.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/synthetic", help="input data URI (generated when absent)")
    parser.add_argument("--work", default="work", help="artifact root URI")
    parser.add_argument("--external", default="",
                        help="external training data URI (train/, train.csv); default: luigi.cfg's (none)")
    parser.add_argument("--profile", default="demo", choices=["demo", "hpa2021"])
    parser.add_argument("--images", type=int, default=256, help="synthetic training images")
    parser.add_argument("--test-images", type=int, default=32, help="synthetic test images")
    parser.add_argument("--size", type=int, default=512, help="synthetic image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="Luigi worker processes")
    parser.add_argument("--target", default=stages.FINAL_TASK, choices=stages.__all__, help="task to build")
    parser.add_argument("--stage", choices=sorted(stages.STAGE_TASKS),
                        help="build this stage's task over a whole split (overrides --target)")
    parser.add_argument("--verbose", action="store_true",
                        help="Luigi's DEBUG lines and what TensorFlow, absl and Ultralytics print (default: the "
                             "pipeline's and Luigi's lines only; luigi.cfg [console] verbose)")
    return parser.parse_args(argv)


class SchedulingEcho(logging.Filter):
    """Leaves out Luigi's "Informed scheduler that task X has status PENDING": one line per task while the
    graph is built, each followed later by the task's own "running" and "done" lines (kept with --verbose)."""

    PENDING = re.compile(r"^Informed scheduler that task\s+\S+\s+has status\s+PENDING$")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PENDING.match(record.getMessage())


class DataFolderError(ValueError):
    """A --data folder the demo must neither use nor write into."""


def prepare_data(args: argparse.Namespace) -> None:
    """Use the data at ``--data``, or generate synthetic data there, but only into an empty or absent folder
    (or one the generator finished: it writes ``_SUCCESS`` last): never over a user's files."""
    if storage.is_done(args.data) or storage.exists(storage.join(args.data, "train.csv")):
        return
    entries = storage.listdir(args.data)
    if entries:
        raise DataFolderError(
            f"{args.data} holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} ({', '.join(entries[:4])}"
            f"{', ...' if len(entries) > 4 else ''}) but no train.csv, and no {storage.SUCCESS_MARKER} of the synthetic "
            f"data generator: it is neither Kaggle-layout data nor synthetic data this command made. The demo "
            f"generates data only into an empty or absent folder: pass one, or data with train.csv.")
    from stages.dev.synth.core import write_dataset

    state = "new" if not storage.exists(args.data) else "empty"
    print(f"generating synthetic data in {args.data} ({state} folder): {args.images} training and "
          f"{args.test_images} test images of {args.size} px ...", flush=True)
    write_dataset(args.data, args.images, args.test_images, args.size, args.size, args.seed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage:
        args.target = stages.STAGE_TASKS[args.stage]
    started = time.monotonic()
    try:
        prepare_data(args)
    except DataFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = luigi.configuration.get_config()
    settings = {"input": args.data, "work": args.work, "profile": args.profile}
    if args.external:  # else luigi.cfg's, if any
        settings["external"] = args.external
    for key, value in settings.items():
        config.set("pipeline", key, value)
    if args.verbose:
        if not config.has_section("console"):
            config.add_section("console")
        config.set("console", "verbose", "true")
    verbose = not quiet.setup()
    interface = logging.getLogger("luigi-interface")
    for echo in [f for f in interface.filters if isinstance(f, SchedulingEcho)]:
        interface.removeFilter(echo)
    if not verbose:
        interface.addFilter(SchedulingEcho())
    try:
        inputs.validate_inputs()  # every split, before anything is scheduled: one message, no traceback
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    target = getattr(stages, args.target)()
    result = luigi.build([target], local_scheduler=True, workers=args.workers, detailed_summary=True,
                         log_level="DEBUG" if verbose else config.get("core", "log_level", "INFO"))
    elapsed = time.monotonic() - started
    if result.status not in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY):
        print(f"FAILED after {elapsed:.0f} s", file=sys.stderr)
        return 1
    print(f"done in {elapsed:.0f} s: {target} -> work root {pipeline().work}")
    if isinstance(target, Submission):
        print(published_text(target.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())

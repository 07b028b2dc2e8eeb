"""Run one task's own work in this process, without scheduling its upstream tasks.

This is the entry point of every stage image and of the docker/kubernetes runners: the outer Luigi
worker has already made the upstream artifacts, so the container only checks they are there and runs.

    python -m stages.runstage Tile --split test --shard 3 --pipeline-work s3://bucket/run
"""

from __future__ import annotations

import sys

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.task import flatten

import stages  # noqa: F401 -- registers every task class with Luigi
import stages.runners  # noqa: F401 -- registers [runner]: the runners pass --runner-mode inprocess
from stages.tasking import StageTask


def run_task(argv: list[str]) -> luigi.Task:
    with CmdlineParser.global_instance(argv) as parser:
        task = parser.get_task_obj()
        missing = [dependency for dependency in flatten(task.requires()) if not dependency.complete()]
        if missing:
            raise SystemExit(f"{task}: upstream artifacts missing, run them first: {', '.join(map(str, missing))}")
        if not isinstance(task, StageTask):
            raise SystemExit(f"{task} is not a stage task (a wrapper over shards or the publishing step): run it "
                             f"with luigi, not runstage")
        task.run()
    return task


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    run_task(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Join a central luigid as an assistant worker: run any pending pipeline task, whoever scheduled it.

One machine schedules the graph (``luigi --module stages Submission --scheduler-host H``); every other
machine runs ``python -m stages.assist --scheduler-host H``. An assistant also takes the per-shard tasks
that a wrapper yields at run time, which a second plain ``luigi ... Submission`` worker would never see.
SIGUSR1 makes it finish its current task and exit.
"""

from __future__ import annotations

import argparse
import sys

import luigi

import stages  # noqa: F401 -- registers every task class, so the assistant can run any of them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.assist", description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler-host", default="localhost")
    parser.add_argument("--scheduler-port", type=int, default=8082)
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    args = parser.parse_args(argv)
    luigi.configuration.get_config().set("worker", "keep_alive", "true")  # an assistant waits for work
    luigi.build([], assistant=True, local_scheduler=False, scheduler_host=args.scheduler_host,
                scheduler_port=args.scheduler_port, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

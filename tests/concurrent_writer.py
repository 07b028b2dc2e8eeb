"""A toy declared task for tests/test_concurrency.py, run by two processes at once:
``python tests/concurrent_writer.py WORK LOG``. Its run records each execution in LOG and takes a while."""

import sys
import time

import luigi

from stages.artifacts import Artifact
from stages.declare import Stage, TaskSpec
from stages.tasking import make_task_class

OUTPUT = Artifact("out.json", "json", "the toy's output")


def slow_run(ctx):
    with open(sys.argv[2], "a") as log:
        log.write("ran\n")
    time.sleep(1.5)
    return {OUTPUT: {"done": True}}


SPEC = TaskSpec(name="ConcurrentToy", doc="toy", outputs=(OUTPUT,), run=slow_run, splits=("test",))
ConcurrentToy = make_task_class(Stage(name="toy", doc="toy", tasks=(SPEC,), whole="ConcurrentToy"), SPEC)

if __name__ == "__main__":
    luigi.configuration.get_config().set("pipeline", "work", sys.argv[1])
    task = ConcurrentToy()
    ok = luigi.build([task], local_scheduler=True, log_level="WARNING")
    sys.exit(0 if ok and OUTPUT.read(task.folder()) == {"done": True} else 1)

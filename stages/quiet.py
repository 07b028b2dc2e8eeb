"""A quiet console: the pipeline's own lines, Luigi's and warnings a user should read; nothing else.

TensorFlow, absl, gRPC and Ultralytics print a lot that tells a pipeline user nothing (C++ start-up lines
such as ``I0000 ... oneDNN custom operations are on``, ``tf.function retracing`` warnings, trainer
configuration dumps, model tables, progress bars), and third-party Python warnings add more. By default
(``[console] verbose = false``) :func:`setup` keeps them off the console; ``verbose = true`` (or
``python -m stages.demo --verbose``, or ``--console-verbose true`` on the luigi command line) leaves every
library as it is.

Some of it must be decided before a library is imported (TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` once,
Ultralytics ``YOLO_VERBOSE`` at import), so the task code that imports them calls :func:`setup` first and
imports Keras through :func:`import_keras`. Nothing here imports TensorFlow while the task graph is built.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

import luigi

# Read by TensorFlow, absl, gRPC and Ultralytics at import or first use; a value the user set wins.
ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ INFO, WARNING and ERROR lines (FATAL still shows)
    "ABSL_MIN_LOG_LEVEL": "3",
    "GLOG_minloglevel": "3",
    "GRPC_VERBOSITY": "ERROR",
    "YOLO_VERBOSE": "false",  # Ultralytics' logger at ERROR: no banners, tables, progress bars
}
# Python loggers of third parties, raised to ERROR.
LOGGERS = ("tensorflow", "absl", "keras", "ultralytics", "h5py", "matplotlib", "PIL", "torch", "numexpr")
# What TensorFlow writes to the C++ stderr while it is imported, before its own log level applies: absl's
# preamble, INFO lines (``I0000 00:00:... port.cc:153] oneDNN ...``) and the CPU-feature note's second line.
IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ [^ ]+:\d+\] .*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)\s*$")

_state = {"quiet": None}


class console(luigi.Config):  # noqa: N801 -- Luigi derives the [console] section name from the class name
    verbose = luigi.BoolParameter(
        default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="let TensorFlow, absl, Ultralytics and third-party warnings print everything (default: "
                    "only the pipeline's lines, Luigi's and warnings worth reading)")


def verbose() -> bool:
    return bool(console().verbose)


def setup() -> bool:
    """Quiet the third parties unless ``[console] verbose``; returns whether it is quiet. Cheap, and safe to
    call at the start of every task: nothing is imported."""
    quiet = not verbose()
    if quiet:
        for key, value in ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        if _state["quiet"] is not True:
            # Third-party warnings off; the pipeline's own (module stages.*) still show.
            warnings.filterwarnings("ignore")
            warnings.filterwarnings("default", module=r"stages(\.|$)")
    elif _state["quiet"]:
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        warnings.resetwarnings()
    _state["quiet"] = quiet
    return quiet


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern = IMPORT_NOISE):
    """Hold back what is written to file descriptor 2 (C++ libraries included) inside the block, then write
    back every line that ``noise`` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines()
                    if line.strip() and not noise.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def import_keras():
    """Keras (and TensorFlow under it), imported after :func:`setup` and, when quiet, without TensorFlow's
    import-time C++ lines."""
    quiet = setup()
    with filtered_stderr() if quiet and "keras" not in sys.modules else contextlib.nullcontext():
        import keras
    return keras


def warn(ctx, message: str) -> None:
    """A warning a user should read, on the task's logger (``luigi-interface``), prefixed by the task id."""
    task_id = getattr(getattr(ctx, "task", None), "task_id", "?")
    logging.getLogger("luigi-interface").warning("%s: %s", task_id, message)

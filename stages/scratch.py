"""Scratch space that never outlives its process, even one killed with SIGKILL.

Scratch folders live under one folder per user and carry their process id in their name; temporaries of
local writes carry it too. Whoever makes the next one removes those whose process is gone, so a killed run
leaves nothing behind for longer than the next run's first write.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

# HPA_SCRATCH puts scratch on a disk of the user's choosing (S3 downloads of large arrays land here).
ROOT = Path(os.environ.get("HPA_SCRATCH") or tempfile.gettempdir()) / f"hpa-stages-{os.getuid()}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def owner(name: str, pattern: re.Pattern) -> int | None:
    match = pattern.match(name)
    return int(match[1]) if match else None


FOLDER = re.compile(r"^(\d+)-")


@functools.cache
def _swept() -> bool:
    """The first scratch folder of a process removes the folders of processes that are gone."""
    ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        pid = owner(entry.name, FOLDER)
        if pid is not None and not alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
    return True


def folder(prefix: str) -> tempfile.TemporaryDirectory:
    """A scratch folder (a context manager yielding its path), removed when the block ends."""
    _swept()
    return tempfile.TemporaryDirectory(dir=ROOT, prefix=f"{os.getpid()}-{prefix}")


def temporary_name(target: Path) -> str:
    """The prefix of a local write's temporary beside ``target``: hidden, and naming its writer."""
    return f".{target.name}.{os.getpid()}."


TEMPORARY = re.compile(r"^\..+\.(\d+)\..*\.tmp$")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_name`'s (a write in progress, or a killed one's)."""
    return TEMPORARY.match(name) is not None


def remove_dead_temporaries(target: Path) -> None:
    """Temporaries beside ``target`` whose writer was killed: they would otherwise stay forever."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\..*\.tmp$")
    with contextlib.suppress(FileNotFoundError):
        for entry in target.parent.iterdir():
            pid = owner(entry.name, pattern)
            if pid is not None and pid != os.getpid() and not alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()

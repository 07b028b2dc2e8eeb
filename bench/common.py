"""What the benchmarks share: synthetic HPA-size fields, a Kaggle-layout writer, timing, the machine, tables.

Timing on a shared machine: each measurement is repeated a few rounds, project and reference interleaved,
and the best (fastest) round is kept: other processes only ever add time, so the minimum is the closest to
the code's own cost, and a ratio of minima taken in the same run is the most stable figure there is.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # ``python bench/run.py`` as well as ``python -m bench.run``
    sys.path.insert(0, str(REPO))

from stages.classes import CHANNELS


@dataclass
class Field:
    """One synthetic field of view: the stacked channels, their PNG files' bytes and the truth."""

    image_id: str
    field: np.ndarray  # (H, W, 4) uint8, CHANNELS order
    pngs: dict[str, bytes]  # channel -> PNG bytes (as the Kaggle layout stores it)
    truth: np.ndarray  # (H, W) uint16 cell labels
    cell_classes: list[list[int]]


def synthetic_fields(count: int, size: int = 2048, seed: int = 0, log=print) -> list[Field]:
    """``count`` distinct synthetic fields (about 25 cells each at 2048 px), deterministic from ``seed``."""
    from stages.dev.synth import generate_image
    from stages.dev.synth.core import encode_png

    fields = []
    for index in range(count):
        started = time.perf_counter()
        image = generate_image([seed, index], size, size)
        field = np.stack([image.channels[channel] for channel in CHANNELS], axis=-1)
        pngs = {channel: encode_png(image.channels[channel]) for channel in CHANNELS}
        fields.append(Field(f"bench_{seed}_{index:05d}", field, pngs, image.cell_labels, image.cell_classes))
        log(f"  synthetic field {index + 1}/{count}: {int(image.cell_labels.max())} cells, "
            f"{sum(map(len, pngs.values())) / 2**20:.1f} MiB of PNG, {time.perf_counter() - started:.1f} s")
    return fields


def write_test_split(root: Path, fields: Sequence[Field], count: int) -> list[str]:
    """A Kaggle-layout input folder with ``count`` test images (``fields`` reused in turn under new IDs):
    ``test/<ID>_<channel>.png`` and ``sample_submission.csv``. Returns the IDs."""
    (root / "test").mkdir(parents=True, exist_ok=True)
    ids, lines = [], ["ID,ImageWidth,ImageHeight,PredictionString"]
    for index in range(count):
        source = fields[index % len(fields)]
        image_id = f"bench_{index:05d}"
        for channel, data in source.pngs.items():
            (root / "test" / f"{image_id}_{channel}.png").write_bytes(data)
        height, width = source.field.shape[:2]
        ids.append(image_id)
        lines.append(f"{image_id},{width},{height},")
    (root / "sample_submission.csv").write_text("\n".join(lines) + "\n")
    return ids


def best_time(function: Callable[[], object], rounds: int) -> float:
    """Seconds of the fastest of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def interleaved(functions: dict[str, Callable[[], object]], rounds: dict[str, int]) -> dict[str, float]:
    """Best-round seconds of each function; rounds alternate between them so that load spikes from other
    processes hit them alike."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_number in range(max(rounds.values())):
        for name, function in functions.items():
            if round_number < rounds[name]:
                started = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM, Python and the load average (others' work on a shared machine skews timings)."""
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        total_kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "ram": f"{total_kib / 2**20:.1f} GiB",
        "python": platform.python_version(),
        "load average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def print_machine(title: str, command: str) -> None:
    print(f"# {title}")
    print(f"command: {command}")
    for key, value in machine().items():
        print(f"{key}: {value}")
    print()


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (it reads as plain text too)."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(str(title)), *(len(row[column]) for row in cells)) for column, title in enumerate(header)]

    def line(values):
        return "| " + " | ".join(value.ljust(width) for value, width in zip(values, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|",
                      *map(line, cells)])

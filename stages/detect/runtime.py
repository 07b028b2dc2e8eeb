"""What the detect tasks need around the core: the ``[detector]`` knobs, a loaded model per process, and the
local dataset tree Ultralytics insists on reading."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import luigi

from stages import local_paths, storage
from stages.config import pipeline
from stages.detect import contract, yolo
from stages.zoo import get_profile


class detector(luigi.Config):  # noqa: N801 -- Luigi names the [detector] section after the class
    device = luigi.Parameter(default="auto", description="'cpu', a CUDA index such as '0', or 'auto' (GPU if any)")
    workers = luigi.IntParameter(default=-1, description="data loader workers; -1: 0 on CPU, up to 8 on a GPU")
    predict_batch = luigi.IntParameter(default=16, description="images per predict call")
    config_dir = luigi.Parameter(default="", description="YOLO_CONFIG_DIR (default: $YOLO_CONFIG_DIR, else a per-user "
                                 "temp folder)")
    max_epochs = luigi.IntParameter(
        default=0, description="cap on the epochs of each training phase, to try a profile at full size in minutes "
                               "(the detector is then not the profile's); 0: none")


def capped_epochs(epochs: int) -> int:
    cap = int(detector().max_epochs)
    return min(epochs, cap) if cap > 0 else epochs


def resolved_device() -> str:
    device = str(detector().device).strip().lower()
    if device != "auto":
        return device
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def resolved_workers(device: str) -> int:
    workers = int(detector().workers)
    if workers >= 0:
        return workers
    return 0 if device == "cpu" else min(8, os.cpu_count() or 1)


def config_dir() -> str | None:
    return detector().config_dir or None


def detector_spec():
    spec = get_profile(pipeline().profile).detector
    if spec.channels != "green":
        raise ValueError(f"detector {spec.name}: only the green channel (x3) is supported, not {spec.channels!r}")
    return spec


@functools.lru_cache(maxsize=2)
def cached_model(weights_uri: str, config: str | None):
    """One loaded detector per process and weights (shards of one worker reuse it)."""
    with local_paths.local_copy(weights_uri, suffix=".pt") as path:
        return yolo.load_model(path, config)


def materialise_dataset(dataset_uri: str, export_uri: str, target: Path, threads: int = 16) -> Path:
    """The detector dataset as a local tree for Ultralytics, which reads paths and writes its label caches
    beside the label folders (so it gets a tree of its own, never the artifact). The YAML and the list
    files come from the dataset folder (Ultralytics resolves them and takes their real folder as the root);
    each listed image and its label file, relative to the export root, is linked (local storage) or
    downloaded (S3)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (contract.DATASET.name, *contract.SUBSET_FILES.values()):
        (target / name).write_bytes(storage.read_bytes(storage.join(dataset_uri, name)))
    listed = {line for name in contract.SUBSET_FILES.values() for line in (target / name).read_text().split()}
    images = [line.removeprefix("./") for line in listed]
    relative = sorted({*images, *map(contract.label_path, images)})
    for path in relative:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
    if not storage.is_s3(export_uri):
        source = Path(export_uri).resolve()
        for path in relative:
            if not (source / path).is_file():
                raise storage.ArtifactNotFound(f"artifact not found: {storage.join(export_uri, path)}")
            os.symlink(source / path, target / path)
        return target

    def download(path: str) -> None:
        (target / path).write_bytes(storage.read_bytes(storage.join(export_uri, path)))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(download, relative))
    return target

"""Luigi tasks of the detect stage: load inputs, call core / yolo, save outputs through storage.

- ``YoloExport`` (per train shard): detector images and YOLO label files.
- ``YoloDataset`` (all train shards): the train/val split and the Ultralytics ``dataset.yaml``, beside
  the shard folders.
- ``TrainYolo``: two-phase training, offline; weights and metrics to storage.
- ``Detect`` (per shard) / ``DetectAll``: boxes in original-image pixels with class and confidence.

All of them are the ``detect`` stage (one Docker image, ``images/detect``): their artifacts live under
``<work>/detect/<fingerprint>/<split>/``, told apart by the fingerprint. Operational knobs live in the
``[detector]`` section of luigi.cfg and stay out of the fingerprints.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import yaml

from stages import storage
from stages.classes import parse_labels
from stages.config import pipeline
from stages.detect import contract, core, yolo
from stages.fields import BadImageError, channel_file_name, decode_channel
from stages.manifest.core import SPLITS
from stages.manifest.task import Manifest, load_shard, split_folder
from stages.segment.task import Segment, read_shard_cells
from stages.tasking import AllShards, ShardTask, StageTask, StorageTarget
from stages.zoo import get_profile

STAGE = "detect"


class detector(luigi.Config):  # noqa: N801 -- Luigi names the [detector] section after the class
    device = luigi.Parameter(default="auto", description="'cpu', a CUDA index such as '0', or 'auto' (GPU if any)")
    workers = luigi.IntParameter(default=-1, description="data loader workers; -1: 0 on CPU, up to 8 on a GPU")
    predict_batch = luigi.IntParameter(default=16, description="images per predict call")
    config_dir = luigi.Parameter(default="", description="YOLO_CONFIG_DIR (default: $YOLO_CONFIG_DIR, else a per-user "
                                 "temp folder)")


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


def read_green(split: str, row) -> np.ndarray:
    """The image's green channel as 2-D uint8 (the only channel the detector reads)."""
    folder = split_folder(split)
    if not row["green"]:
        expected = storage.join(folder, channel_file_name(row["ID"], "green", ".png"))
        raise BadImageError(row["ID"], expected, "the green channel file is missing")
    uri = storage.join(folder, row["green"])
    try:
        data = storage.read_bytes(uri)
    except storage.ArtifactNotFound:
        raise BadImageError(row["ID"], uri, "the green channel file is missing") from None
    return decode_channel(data, row["ID"], uri)


def materialise_dataset(root_uri: str, target: Path, threads: int = 16) -> Path:
    """The detector dataset as a local tree for Ultralytics, which reads paths and writes its label caches
    beside the label folders (so it gets a tree of its own, never the artifact). The YAML and the list
    files are copied (Ultralytics resolves them and takes their real folder as the root); each listed
    image and its label file is linked (local storage) or downloaded (S3)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (contract.DATASET_FILE, *contract.SUBSET_FILES.values()):
        (target / name).write_bytes(storage.read_bytes(storage.join(root_uri, name)))
    listed = {line for name in contract.SUBSET_FILES.values() for line in (target / name).read_text().split()}
    images = [line.removeprefix("./") for line in listed]
    relative = sorted({*images, *map(contract.label_path, images)})
    for path in relative:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
    if not storage.is_s3(root_uri):
        source = Path(root_uri).resolve()
        for path in relative:
            if not (source / path).is_file():
                raise storage.ArtifactNotFound(f"artifact not found: {storage.join(root_uri, path)}")
            os.symlink(source / path, target / path)
        return target

    def download(path: str) -> None:
        (target / path).write_bytes(storage.read_bytes(storage.join(root_uri, path)))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(download, relative))
    return target


class YoloExport(ShardTask):
    """Detector images (green x3, long side = input_size) and YOLO label lines for one train shard."""

    stage = STAGE
    split = luigi.ChoiceParameter(choices=SPLITS, default="train")

    def content_settings(self) -> dict:
        spec = detector_spec()
        return {
            "input_size": spec.input_size,
            "channels": spec.channels,
            # the split is decided by YoloDataset, but it lives in this folder: a new fraction, a new folder
            "validation_fraction": get_profile(pipeline().profile).validation_fraction,
        }

    def upstream(self):
        return [Manifest(split=self.split), Segment(split=self.split, shard=self.shard)]

    def fill(self, folder: str) -> None:
        size = detector_spec().input_size
        rows = load_shard(self.split, self.shard)
        cells = read_shard_cells(Segment(split=self.split, shard=self.shard).folder())
        bbox_columns = ["bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]
        cells_of = {image_id: group[bbox_columns].to_numpy() for image_id, group in cells.groupby("ID", sort=False)}
        index = []
        for _, row in rows.iterrows():
            green = read_green(self.split, row)
            height, width = green.shape
            image = core.detector_image(green, size)
            bboxes = cells_of.get(row["ID"], np.zeros((0, 4)))
            lines = core.label_lines(bboxes, parse_labels(row["Label"]), height, width)
            storage.write_bytes(storage.join(folder, contract.image_file(row["ID"])), core.encode_png(image))
            storage.write_bytes(storage.join(folder, contract.label_file(row["ID"])),
                                ("\n".join(lines) + "\n" if lines else "").encode())
            index.append((row["ID"], width, height, image.shape[1], image.shape[0], len(bboxes), len(lines)))
        storage.write_table(storage.join(folder, contract.EXPORT_INDEX_FILE),
                            pd.DataFrame(index, columns=list(contract.EXPORT_INDEX_COLUMNS)))


class YoloDataset(AllShards):
    """The whole detector dataset: every shard's export, then train.txt / val.txt / split.csv and the
    Ultralytics ``dataset.yaml`` (written last) at the root of the export folder."""

    shard_task = YoloExport
    split = luigi.ChoiceParameter(choices=SPLITS, default="train")

    def _export(self) -> YoloExport:
        return YoloExport(split=self.split, shard=0)

    def fingerprint(self) -> str:
        return self._export().fingerprint()

    def root(self) -> str:
        return self._export().stage_root()

    def output(self):
        return StorageTarget(storage.join(self.root(), contract.DATASET_FILE))

    def complete(self) -> bool:
        return self.output().exists() and super().complete()

    def run(self):
        tasks = self.shard_tasks()
        yield tasks
        root = self.root()
        storage.remove(self.output().uri)
        shards = []
        for task in tasks:
            index = storage.read_table(storage.join(task.folder(), contract.EXPORT_INDEX_FILE), dtype={"ID": str})
            shards.append(index.assign(shard=task.shard, folder=task.folder().rsplit("/", 1)[-1]))
        images = pd.concat(shards, ignore_index=True)
        fraction = get_profile(pipeline().profile).validation_fraction
        subset = core.assign_subsets(images["ID"], fraction, seed=0)
        images["subset"] = images["ID"].map(subset)
        for name, file in contract.SUBSET_FILES.items():
            chosen = images[images["subset"] == name]
            lines = [f"./{folder}/{contract.image_file(image_id)}"
                     for folder, image_id in zip(chosen["folder"], chosen["ID"])]
            storage.write_bytes(storage.join(root, file), ("\n".join(lines) + "\n" if lines else "").encode())
        storage.write_table(storage.join(root, contract.SPLIT_FILE), images[list(contract.SPLIT_COLUMNS)])
        description = core.dataset_yaml(has_validation=bool((images["subset"] == "val").any()))
        storage.write_bytes(self.output().uri, yaml.safe_dump(description, sort_keys=False).encode())


class TrainYolo(StageTask):
    """Two-phase YOLO training (basic, then fine-tuning: zoo ``epochs`` and ``finetune_epochs``), offline."""

    stage = STAGE
    needs_gpu = True
    split = luigi.ChoiceParameter(choices=SPLITS, default="train")

    def content_settings(self) -> dict:
        spec = detector_spec()
        return {
            "architecture": spec.architecture,
            "input_size": spec.input_size,
            "epochs": spec.epochs,
            "finetune_epochs": spec.finetune_epochs,
            "initial_weights": spec.initial_weights,
            "batch": get_profile(pipeline().profile).batch_size,
            "basic": core.BASIC_OVERRIDES,
            "finetune": core.FINETUNE_OVERRIDES,
            "seed": 0,
        }

    def upstream(self):
        return [YoloDataset(split=self.split)]

    def output(self):
        return StorageTarget(storage.join(self.stage_root(), storage.SUCCESS_MARKER))

    def weights_uri(self) -> str:
        return storage.join(self.stage_root(), contract.WEIGHTS_FILE)

    def metrics_uri(self) -> str:
        return storage.join(self.stage_root(), contract.METRICS_FILE)

    def run_here(self):
        spec = detector_spec()
        root = self.stage_root()
        storage.remove(root)
        device = resolved_device()
        phases = core.training_phases(spec.input_size, spec.epochs, spec.finetune_epochs,
                                      get_profile(pipeline().profile).batch_size, device, resolved_workers(device))
        try:
            with tempfile.TemporaryDirectory(prefix="hpa-detect-train-") as scratch:
                dataset = materialise_dataset(YoloDataset(split=self.split).root(), Path(scratch) / "dataset")
                with initial_weights_path(spec.initial_weights) as initial:
                    result = yolo.train(dataset / contract.DATASET_FILE, spec.architecture, phases,
                                        Path(scratch) / "runs", initial, config_dir())
                for phase, path in result.phase_weights.items():
                    storage.write_bytes(storage.join(root, contract.PHASE_WEIGHTS_FILE.format(phase=phase)),
                                        path.read_bytes())
                for phase, path in result.results.items():
                    storage.write_bytes(storage.join(root, contract.RESULTS_FILE.format(phase=phase)),
                                        path.read_bytes())
                storage.write_json(self.metrics_uri(), {**yolo.metrics_document(result), "device": device})
                storage.write_bytes(self.weights_uri(), result.weights.read_bytes())
        except BaseException:
            storage.remove(root)
            raise
        storage.mark_done(root)


@contextlib.contextmanager
def initial_weights_path(uri: str | None):
    """A local path for the zoo's optional initial weights (a local path or a storage URI), or None."""
    if not uri:
        yield None
        return
    with storage.local_copy(uri, suffix=".pt") as path:
        yield path


@functools.lru_cache(maxsize=2)
def _cached_model(weights_uri: str, config: str | None):
    """One loaded detector per process and weights (shards of one worker reuse it)."""
    with storage.local_copy(weights_uri, suffix=".pt") as path:
        return yolo.load_model(path, config)


class Detect(ShardTask):
    """YOLO boxes for one shard at confidence 0.001 and NMS IoU 0.5, in original-image pixels."""

    stage = STAGE
    needs_gpu = True

    def content_settings(self) -> dict:
        return {
            "input_size": detector_spec().input_size,
            "conf": core.CONFIDENCE_THRESHOLD,
            "iou": core.NMS_IOU,
            "max_det": core.MAX_DETECTIONS,
        }

    def upstream(self):
        return [TrainYolo(), Manifest(split=self.split)]

    def fill(self, folder: str) -> None:
        size = detector_spec().input_size
        device = resolved_device()
        model = _cached_model(TrainYolo().weights_uri(), config_dir())
        rows = load_shard(self.split, self.shard)
        batch = max(1, int(detector().predict_batch))
        tables, images = [], []
        for start in range(0, len(rows), batch):
            chunk = rows.iloc[start:start + batch]
            greens = [read_green(self.split, row) for _, row in chunk.iterrows()]
            boxes = yolo.detect_greens(model, greens, list(chunk["ID"]), size, device, batch)
            tables.append(boxes)
            counts = boxes["ID"].value_counts()
            images += [(image_id, green.shape[1], green.shape[0], int(counts.get(image_id, 0)))
                       for image_id, green in zip(chunk["ID"], greens)]
        storage.write_table(storage.join(folder, contract.BOXES_FILE), core.concat_boxes(tables))
        storage.write_table(storage.join(folder, contract.DETECT_IMAGES_FILE),
                            pd.DataFrame(images, columns=list(contract.DETECT_IMAGES_COLUMNS)))


class DetectAll(AllShards):
    shard_task = Detect


def load_boxes(split: str, shard: int) -> pd.DataFrame:
    """A Detect shard's box table with the contract's dtypes."""
    uri = storage.join(Detect(split=split, shard=shard).folder(), contract.BOXES_FILE)
    table = storage.read_table(uri, dtype={"ID": str})
    return table.astype(contract.BOX_DTYPES) if len(table) else core.empty_boxes()

"""Luigi tasks of the segment stage: a shard's fields in, label images and cell tables out."""

from __future__ import annotations

import contextlib
import dataclasses

import luigi
import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CHANNELS
from stages.fields import read_field
from stages.manifest.task import Manifest, load_shard, split_folder
from stages.segment import contract
from stages.segment.core import BACKENDS, SegmentSettings, cell_table, make_segmenter
from stages.tasking import AllShards, ShardTask, StageTask


class segment(luigi.Config):  # noqa: N801 -- Luigi derives the [segment] section name from the class name
    backend = luigi.ChoiceParameter(choices=BACKENDS, default="classic", description="classic | hpacellseg")
    nuclei_model = luigi.Parameter(default="", description="hpacellseg: dpn_unet_nuclei_v1.pth (path or URI)")
    cell_model = luigi.Parameter(default="", description="hpacellseg: dpn_unet_cell_3ch_v1.pth (path or URI)")
    device = luigi.Parameter(default="cpu", description="hpacellseg: torch device, e.g. cpu or cuda")
    fast_label = luigi.BoolParameter(
        default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING, description="hpacellseg: label at 512 px"
    )
    scale_factor = luigi.FloatParameter(default=0.25, description="hpacellseg: image scale fed to the networks")

    def settings(self) -> SegmentSettings:
        return SegmentSettings(
            backend=self.backend,
            nuclei_model=self.nuclei_model,
            cell_model=self.cell_model,
            device=self.device,
            fast_label=self.fast_label,
            scale_factor=self.scale_factor,
        )


class Segment(ShardTask):
    stage = "segment"

    def content_settings(self) -> dict:
        return segment().settings().content()

    def upstream(self) -> list[StageTask]:
        return [Manifest(split=self.split)]

    def fill(self, folder: str) -> None:
        images = load_shard(self.split, self.shard).to_dict("records")
        source = split_folder(self.split)
        tables, sizes = [], []
        with local_models(segment().settings()) as settings:
            segment_field = make_segmenter(settings)
            for number, image in enumerate(images, start=1):
                image_id = image["ID"]
                self.progress(f"{image_id}: image {number}/{len(images)}", 100 * (number - 1) // len(images))
                field = read_field(source, image_id, {channel: image[channel] for channel in CHANNELS})
                cells, nuclei = segment_field(field)
                storage.write_arrays(storage.join(folder, contract.labels_file(image_id)), cells=cells, nuclei=nuclei)
                table = cell_table(cells)
                table.insert(0, "ID", image_id)
                tables.append(table)
                sizes.append((image_id, field.shape[1], field.shape[0], len(table)))
        storage.write_table(storage.join(folder, contract.CELLS_FILE), pd.concat(tables, ignore_index=True))
        images_table = pd.DataFrame(sizes, columns=list(contract.IMAGES_COLUMNS))
        storage.write_table(storage.join(folder, contract.IMAGES_FILE), images_table)
        self.progress(f"{len(images)} image(s), {sum(size[-1] for size in sizes)} cell(s)", 100)


class SegmentAll(AllShards):
    shard_task = Segment


@contextlib.contextmanager
def local_models(settings: SegmentSettings):
    """The settings with any s3:// weight URI replaced by a local copy (torch.load wants a path)."""
    with contextlib.ExitStack() as stack:
        local = {
            key: str(stack.enter_context(storage.local_copy(uri, ".pth")))
            for key in ("nuclei_model", "cell_model")
            if storage.is_s3(uri := getattr(settings, key))
        }
        yield dataclasses.replace(settings, **local)


def read_shard_cells(folder: str) -> pd.DataFrame:
    """A segment shard's cell table (``contract.CELLS_COLUMNS``), image IDs as text."""
    return storage.read_table(storage.join(folder, contract.CELLS_FILE), dtype={"ID": str})


def read_shard_images(folder: str) -> pd.DataFrame:
    """A segment shard's image table (``contract.IMAGES_COLUMNS``), image IDs as text."""
    return storage.read_table(storage.join(folder, contract.IMAGES_FILE), dtype={"ID": str})


def read_labels(folder: str, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(cells, nuclei)`` uint16 label images of one image of a segment shard."""
    arrays = storage.read_arrays(storage.join(folder, contract.labels_file(image_id)))
    cells, nuclei = (arrays[name] for name in contract.LABEL_ARRAYS)
    return cells, nuclei

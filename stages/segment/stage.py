"""The segment stage: a shard's fields of view in, cell and nucleus label images and cell tables out."""

from __future__ import annotations

import contextlib
import dataclasses

import luigi

from stages import local_paths, storage
from stages.declare import Stage, TaskSpec, single
from stages.segment import contract
from stages.segment.core import BACKENDS, SegmentSettings, make_segmenter, segment_shard


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
        return SegmentSettings(backend=self.backend, nuclei_model=self.nuclei_model, cell_model=self.cell_model,
                               device=self.device, fast_label=self.fast_label, scale_factor=self.scale_factor)


def uses_gpu() -> bool:
    """With hpacellseg on cuda. Classic segmentation is CPU work; only the network backend wants a GPU."""
    settings = segment()
    return settings.backend == "hpacellseg" and str(settings.device).startswith("cuda")


@contextlib.contextmanager
def local_models(settings: SegmentSettings):
    """The settings with any s3:// weight URI replaced by a local copy (torch.load wants a path)."""
    with contextlib.ExitStack() as stack:
        local = {
            key: str(stack.enter_context(local_paths.local_copy(uri, ".pth")))
            for key in ("nuclei_model", "cell_model")
            if storage.is_s3(uri := getattr(settings, key))
        }
        yield dataclasses.replace(settings, **local)


def run(ctx) -> dict:
    from stages import quiet

    quiet.setup()  # before torch (hpacellseg) is imported
    rows = ctx.rows().set_index("ID", drop=False)
    with local_models(segment().settings()) as settings:
        cells, images = segment_shard(
            rows.index.tolist(), lambda image_id: ctx.field(rows.loc[image_id]),
            make_segmenter(settings), lambda image_id, *labels: ctx.write(contract.LABELS, labels, image_id=image_id),
            ctx.progress)
    ctx.progress(f"{len(images)} image(s), {len(cells)} cell(s)", 100)
    empty = images.loc[images["cells"] == 0, "ID"].astype(str).tolist()
    if empty:
        quiet.warn(ctx, f"{len(empty)} of {len(images)} image(s) have no cell: {', '.join(empty[:5])}"
                        f"{', ...' if len(empty) > 5 else ''} (they get no score row and no prediction)")
    return {contract.CELLS: cells, contract.IMAGES: images}


SEGMENT = TaskSpec(
    name="Segment", doc="Per shard: cell and nucleus label images of every image, and their cell tables.",
    needs=lambda task: {"manifest": single("Manifest")},
    outputs=(contract.LABELS, contract.CELLS, contract.IMAGES),
    content=lambda task: segment().settings().content(),
    run=run, per_shard=True, folder="shard-{shard:05d}", gpu=uses_gpu, operational=("segment.device",),
)

STAGE = Stage(name="segment", doc=__doc__.split("\n")[0], tasks=(SEGMENT,), whole="SegmentAll")

"""The fuse stage: a shard's per-source score tables in, the fused table out.

The sources and their weights come from the profile (``fusion`` in stages/zoo.yaml), or from the
``[fuse]`` section of luigi.cfg where it sets them. A source with weight 0 (or none) is not required at
all, so its models are never trained or run: the Luigi graph shrinks with the configuration.
"""

from __future__ import annotations

import json
from types import MappingProxyType

import luigi

from stages.config import pipeline
from stages.declare import Needs, Stage, TaskSpec, this_shard
from stages.fuse import contract, core
from stages.zoo import FusionSettings, get_profile


class fuse(luigi.Config):  # noqa: N801 -- Luigi derives the [fuse] section name from the class name
    mode = luigi.Parameter(default="", description="weighted | multiplicative; empty: the profile's fusion mode")
    gate = luigi.Parameter(default="", description="none | image | cells | cells_max (fused scores times the image "
                                                   "models' probability of the class, or times the cell models' "
                                                   "mean or highest probability over the image's cells); empty: "
                                                   "the profile's")
    weights = luigi.Parameter(
        default="",
        description='JSON object source -> weight, e.g. {"cell": 0.6, "image": 0.4}; empty: the profile\'s weights. '
        "Sources: cell, image, detector, image_on_cell; a source left out (or at 0) is not computed.",
    )


def fusion_settings() -> FusionSettings:
    """The profile's fusion settings, with any ``[fuse]`` override applied (validated by the zoo's type)."""
    profile = get_profile(pipeline().profile).fusion
    config = fuse()
    weights = profile.weights
    if str(config.weights).strip():
        try:
            weights = json.loads(config.weights)
        except json.JSONDecodeError as error:
            raise ValueError(f"[fuse] weights is not a JSON object: {config.weights!r} ({error})") from None
        if not isinstance(weights, dict):
            raise ValueError(f"[fuse] weights must be a JSON object source -> weight, got {config.weights!r}")
    settings = FusionSettings(mode=config.mode or profile.mode, weights=MappingProxyType(dict(weights)),
                              gate=config.gate or profile.gate)
    core.used_weights(settings.weights)  # negative or all-zero weights fail before any work
    return settings


def source_needs(sources) -> dict[str, list[Needs]]:
    """Per fused source, the per-shard tasks whose score tables it averages."""
    profile = get_profile(pipeline().profile)
    makers = {
        "cell": lambda: [this_shard("PredictCells", model=spec.name) for spec in profile.role("cell")],
        "image": lambda: [this_shard("PredictImages", model=spec.name) for spec in profile.role("image")],
        "detector": lambda: [this_shard("Match")],
        "image_on_cell": lambda: [this_shard("PredictImageOnCell")],
    }
    needs = {source: makers[source]() for source in sources}
    empty = [source for source, found in needs.items() if not found]
    if empty:
        raise ValueError(f"fusion source(s) {empty} have no model in profile {profile.name}")
    return needs


def needs(task) -> dict[str, Needs]:
    return {f"{source}/{number}": need for source, found in source_needs(fusion_settings().sources).items()
            for number, need in enumerate(found)}


def run(ctx) -> dict:
    settings = fusion_settings()
    sources = {}
    for source, found in source_needs(settings.sources).items():
        ctx.progress(f"reading {source} ({len(found)} table(s))")
        tables = [ctx.input(f"{source}/{number}").read(contract.SCORES) for number in range(len(found))]
        sources[source] = core.mean_tables(tables, source)
        ctx.write(contract.SOURCE, sources[source], source=source)
    fused = core.fuse(sources, settings.weights, settings.mode, settings.gate)
    ctx.progress(f"{len(fused)} cell(s) fused from {', '.join(sources)} ({settings.mode}, gate {settings.gate})")
    return {contract.SCORES: fused}


def content(task) -> dict:
    settings = fusion_settings()
    gate = {"gate": settings.gate} if settings.gate != "none" else {}  # the faithful fusion keeps its folders
    return {"mode": settings.mode, "weights": core.used_weights(settings.weights), **gate, "version": 1}


FUSE = TaskSpec(
    name="Fuse", doc="Per shard: per (cell, class) the configured combination of the sources' scores.",
    needs=needs, outputs=(contract.SCORES, contract.SOURCE), content=content, run=run,
    per_shard=True, folder="shard-{shard:05d}",
)

STAGE = Stage(name="fuse", doc="Weighted (or multiplicative) fusion of every source's scores.", tasks=(FUSE,),
              whole="FuseAll")

"""The match stage: a shard's detector boxes to its segmented cells, as a score table."""

from stages.declare import Stage, TaskSpec, this_shard
from stages.detect import contract as detect_contract
from stages.match import contract, core
from stages.segment import contract as segment_contract


def run(ctx) -> dict:
    cells = ctx.input("segment").read(segment_contract.CELLS)
    boxes = ctx.input("boxes").read(detect_contract.BOXES)
    return {contract.SCORES: core.match_scores(cells, boxes)}


MATCH = TaskSpec(
    name="Match", doc="Per shard: each box to the nearest cell centroid; per (cell, class) the highest confidence.",
    needs=lambda task: {"boxes": this_shard("Detect"), "segment": this_shard("Segment")},
    outputs=(contract.SCORES,), content=lambda task: {"rule": "nearest-centroid, max confidence", "version": 1},
    run=run, per_shard=True, folder="shard-{shard:05d}",
)

STAGE = Stage(name="match", doc=__doc__.split("\n")[0], tasks=(MATCH,), whole="MatchAll")

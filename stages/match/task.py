"""Luigi tasks of the match stage: a shard's segment cells and detector boxes in, its score table out."""

from __future__ import annotations

from stages import storage
from stages.detect.task import Detect, load_boxes
from stages.match import contract, core
from stages.segment.task import Segment, read_shard_cells
from stages.tasking import AllShards, ShardTask


class Match(ShardTask):
    """Per shard: each box to the nearest cell centroid; per (cell, class) the highest confidence."""

    stage = "match"

    def content_settings(self) -> dict:
        return {"rule": "nearest-centroid, max confidence", "version": 1}

    def upstream(self):
        return [Detect(split=self.split, shard=self.shard), Segment(split=self.split, shard=self.shard)]

    def scores_uri(self) -> str:
        return storage.join(self.folder(), contract.SCORES_FILE)

    def fill(self, folder: str) -> None:
        cells = read_shard_cells(Segment(split=self.split, shard=self.shard).folder())
        boxes = load_boxes(self.split, self.shard)
        storage.write_table(storage.join(folder, contract.SCORES_FILE), core.match_scores(cells, boxes))


class MatchAll(AllShards):
    shard_task = Match


def load_scores(split: str, shard: int):
    """A Match shard's score table with the contract's dtypes."""
    table = storage.read_table(Match(split=split, shard=shard).scores_uri(), dtype={"ID": str})
    return table.astype(contract.SCORE_TABLE_DTYPES)

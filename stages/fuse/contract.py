"""What the fuse stage writes: the fused score table, and beside it each used source's own table (the mean
over its models) for the ablation; both in the one score-table shape of :mod:`stages.scores`."""

from stages.artifacts import table
from stages.scores import SCORES, TABLE_DTYPES

SOURCE = table("source_{source}.csv", "one source's scores (the mean over its models)", TABLE_DTYPES)
__all__ = ["SCORES", "SOURCE"]

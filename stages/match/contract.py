"""What the match stage writes: the fusion's score-table shape (:mod:`stages.scores`), one row per cell of
the segment table, in its order; per class the highest confidence of the boxes whose centre is nearest
this cell's centroid, 0 where no box."""

from stages.scores import SCORES

__all__ = ["SCORES"]

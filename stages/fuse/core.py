"""Fusion of per-cell score tables (SPEC 3.9): numpy and pandas in, one table out.

Every source table has the columns ``ID, cell_id, class_0 .. class_18`` (stages.scores.TABLE_COLUMNS),
one row per cell. A source may arrive as several tables (the cell models, the image models): its score is
their plain mean. Sources are then combined per (cell, class) with the profile's weights:

- ``weighted`` (the 16th-place solution):  ``f = sum_s w_s * p_s / sum_s w_s``.
  With the configured weights (0.5 cell, 0.3 image, 0.1 detector, 0.1 image-on-cell; they sum to 1) this
  is exactly ``0.5 x cell + 0.3 x image + 0.1 x YOLO + 0.1 x image-on-cell``. Dividing by the weight sum
  only matters when weights do not sum to 1 (e.g. a source left out); it keeps the fused score a
  probability in [0, 1] and changes no ranking, so no AP.
- ``multiplicative``: the weighted geometric mean ``f = exp(sum_s w_s * log(max(p_s, EPS)) / sum_s w_s)``,
  i.e. ``prod_s p_s ** (w_s / sum w)``. A cell scores high only where every source agrees; EPS keeps a
  hard 0 from one source (a cell the detector found no box for) from zeroing the others completely.

A gate then multiplies the fused score by an image-level probability of the class, the same for every cell
of an image: ``image``, the image source's (its image models see the whole field), ``f x p_image``;
``cells``, the cell source's mean over all cells of the image, ``f x mean_{cells of the image} p_cell``;
``cells_max``, its highest, ``f x max_{cells of the image} p_cell`` (a field shows a class when its cells do:
many cells' noisy calls pooled into one; the maximum also keeps a class that one cell of twenty shows, such
as a mitotic spindle). A class the field does not show is turned down in all its cells, which is what a
biologist's per-cell call needs; the challenge metric cannot see it (it ranks cells only inside images that
hold the class).

A source whose weight is 0 or absent is not used at all (the task does not even compute it); a source
with a positive weight must be given. All tables must hold exactly the same (ID, cell_id) keys, each once:
a mismatch is an error naming the source and example keys, never a silent NaN or an inner join.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stages.classes import SCORE_COLUMNS
from stages.scores import KEY_COLUMNS, TABLE_COLUMNS
from stages.zoo import FUSION_GATES as GATES
from stages.zoo import FUSION_MODES as MODES
from stages.zoo import GATE_SOURCES

EPS = 1e-6
# how a cells gate pools the cell source's probabilities over the cells of an image
CELL_POOLING = {"cells": "mean", "cells_max": "max"}


class KeyMismatch(ValueError):
    """Score tables that do not describe the same cells."""


def _sorted_table(table: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [column for column in TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"score table {name}: missing column(s) {missing}")
    table = table.loc[:, list(TABLE_COLUMNS)].copy()
    table["ID"] = table["ID"].astype(str)
    table["cell_id"] = table["cell_id"].astype(np.int64)
    duplicated = table.duplicated(list(KEY_COLUMNS))
    if duplicated.any():
        examples = table.loc[duplicated, list(KEY_COLUMNS)].head(3).to_records(index=False).tolist()
        raise KeyMismatch(f"score table {name}: {int(duplicated.sum())} duplicated (ID, cell_id) key(s), e.g. {examples}")
    scores = table[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"score table {name}: NaN or infinite scores")
    return table.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def _check_keys(reference: pd.DataFrame, reference_name: str, table: pd.DataFrame, name: str) -> None:
    if len(table) == len(reference) and (table["ID"].to_numpy() == reference["ID"].to_numpy()).all() and (
        table["cell_id"].to_numpy() == reference["cell_id"].to_numpy()
    ).all():
        return
    ours = pd.MultiIndex.from_frame(reference[list(KEY_COLUMNS)])
    theirs = pd.MultiIndex.from_frame(table[list(KEY_COLUMNS)])
    only_ours = ours.difference(theirs)
    only_theirs = theirs.difference(ours)
    raise KeyMismatch(
        f"score tables {reference_name} and {name} describe different cells: {len(only_ours)} (ID, cell_id) key(s) "
        f"only in {reference_name} (e.g. {list(only_ours[:3])}), {len(only_theirs)} only in {name} "
        f"(e.g. {list(only_theirs[:3])})"
    )


def mean_tables(tables: Sequence[pd.DataFrame], name: str = "source") -> pd.DataFrame:
    """The per-(cell, class) mean of several score tables over the same cells, sorted by (ID, cell_id)."""
    if isinstance(tables, pd.DataFrame):
        tables = [tables]
    if not tables:
        raise ValueError(f"{name}: no score table to average")
    ordered = [_sorted_table(table, f"{name}[{index}]") for index, table in enumerate(tables)]
    reference = ordered[0]
    for index, table in enumerate(ordered[1:], start=1):
        _check_keys(reference, f"{name}[0]", table, f"{name}[{index}]")
    stacked = np.stack([table[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64) for table in ordered])
    out = reference[list(KEY_COLUMNS)].copy()
    out[list(SCORE_COLUMNS)] = stacked.mean(axis=0)
    return out


def used_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The sources that take part: positive weight. A negative weight is an error."""
    negative = {source: weight for source, weight in weights.items() if weight is not None and weight < 0}
    if negative:
        raise ValueError(f"fusion weights must not be negative: {negative}")
    used = {source: float(weight) for source, weight in weights.items() if weight}
    if not used:
        raise ValueError(f"fusion needs at least one source with a positive weight, got {dict(weights)}")
    return used


def image_level(gate_table: pd.DataFrame, gate: str, reference: pd.DataFrame, reference_name: str) -> np.ndarray:
    """Per cell of ``reference`` (sorted by key), the gate's image-level probability of every class."""
    _check_keys(reference, reference_name, gate_table, f"{GATE_SOURCES[gate]} (the gate)")
    scores = gate_table[list(SCORE_COLUMNS)]
    if gate in CELL_POOLING:
        scores = scores.groupby(gate_table["ID"].to_numpy(), sort=False).transform(CELL_POOLING[gate])
    return scores.to_numpy()


def fuse(
    sources: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
    weights: Mapping[str, float],
    mode: str = "weighted",
    gate: str = "none",
) -> pd.DataFrame:
    """One fused score table from per-source tables (see the module doc for the formulas).

    ``sources`` maps a source name (``cell``, ``image``, ``detector``, ``image_on_cell``) to its table or
    list of tables (averaged first). Sources without a positive weight are ignored even when given; every
    source with one must be given, and the gate's source (``image`` for ``gate="image"``, ``cell`` for
    ``gate="cells"`` or ``"cells_max"``). Output: TABLE_COLUMNS, sorted by (ID, cell_id).
    """
    if mode not in MODES:
        raise ValueError(f"fusion mode {mode!r} is not one of {MODES}")
    if gate not in GATES:
        raise ValueError(f"fusion gate {gate!r} is not one of {GATES}")
    used = used_weights(weights)
    gated = [GATE_SOURCES[gate]] if gate in GATE_SOURCES else []
    missing = [source for source in [*used, *gated] if source not in sources]
    if missing:
        raise ValueError(f"fusion weights name source(s) {missing} but no table was given (given: {sorted(sources)})")
    names = list(used)
    tables = [mean_tables(sources[name], name) for name in names]
    for name, table in zip(names[1:], tables[1:]):
        _check_keys(tables[0], names[0], table, name)
    scores = np.stack([table[list(SCORE_COLUMNS)].to_numpy() for table in tables])  # (S, N, C)
    w = np.array([used[name] for name in names])[:, None, None] / sum(used.values())
    if mode == "weighted":
        fused = (w * scores).sum(axis=0)
    else:
        fused = np.exp((w * np.log(np.clip(scores, EPS, None))).sum(axis=0))
    if gated:
        source = gated[0]  # averaged already when it is also fused
        gate_table = tables[names.index(source)] if source in names else mean_tables(sources[source], source)
        fused = fused * image_level(gate_table, gate, tables[0], names[0])
    out = tables[0][list(KEY_COLUMNS)].copy()
    out[list(SCORE_COLUMNS)] = fused
    return out

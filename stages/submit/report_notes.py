"""The report's plain-words parts (pure): the channel legend, and the notes a reader needs before trusting
a number (demo-sized models; a source that contributed nothing; the level a ranking reaches by chance).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from stages.classes import SCORE_COLUMNS
from stages.submit.report_draw import CELL_OUTLINE, NUCLEUS_OUTLINE
from stages.submit.summary import score_text

DEMO_PROFILE = "demo"
VIEW_NAMES = {"flip": "mirrored", "rotate90": "quarter turns"}
NEAR_CHANCE = 0.01  # a source within this of the chance level is "no better than chance"


def swatch(rgb: tuple[int, int, int], border: str = "#888") -> str:
    return (f"<span class='swatch' style='background:rgb{tuple(rgb)};border-color:{border}'></span>")


def legend_html() -> str:
    """What the colours of the drawings mean: the four stains, how the composite maps them, the outlines."""
    rows = [
        (swatch((255, 0, 0)), "red", "microtubules", "red"),
        (swatch((0, 255, 0)), "green", "the protein of interest (what is classified)", "green"),
        (swatch((0, 0, 255)), "blue", "nucleus", "blue"),
        (swatch((255, 255, 0)), "yellow", "endoplasmic reticulum (ER)",
         "red too: each pixel shows the brighter of microtubules and ER, so green is the protein alone"),
    ]
    body = "".join(f"<tr><td>{mark}</td><th>{name}</th><td>{stain}</td><td>{shown}</td></tr>"
                   for mark, name, stain, shown in rows)
    outlines = (f"{swatch(CELL_OUTLINE)} thin white line: a cell's outline; {swatch(NUCLEUS_OUTLINE)} thin "
                f"magenta line: its nucleus' outline; a small white number: the cell's id, the first column "
                f"of the image's table. Click an image to enlarge it (click again or press Esc to close).")
    return ("<div class='legend'><table><thead><tr><th></th><th>stain</th><th>marks</th><th>drawn in the "
            f"composite as</th></tr></thead><tbody>{body}</tbody></table><p>{outlines}</p></div>")


class Patterns(NamedTuple):
    """What the score tables of the sources show before any truth: ``constant``, source -> its one value
    (a detector that found no box scores 0 everywhere); ``per_image``, the other sources that give every
    cell of an image the same scores (image-level models)."""

    constant: dict[str, float]
    per_image: frozenset[str]


def score_patterns(tables: Iterable[tuple[str, pd.DataFrame]]) -> Patterns:
    """:class:`Patterns` of ``(source, score table)`` pairs, one source possibly in many tables (one per
    shard). Sources seen only in empty tables are in neither; "per image" needs an image with two cells."""
    values: dict[str, float | None] = {}
    alike: dict[str, bool] = {}  # every image's cells alike so far
    several: set[str] = set()  # seen an image with two cells or more
    for source, table in tables:
        if table.empty:
            continue
        scores = table[list(SCORE_COLUMNS)].to_numpy(dtype=np.float64)
        low, high = float(scores.min()), float(scores.max())
        values[source] = low if low == high and values.get(source, low) == low else None
        groups = table.groupby(table["ID"].astype(str), sort=False)[list(SCORE_COLUMNS)]
        spread = float((groups.max() - groups.min()).to_numpy().max())
        alike[source] = alike.get(source, True) and spread == 0
        if (groups.size() > 1).any():
            several.add(source)
    constant = {source: value for source, value in values.items() if value is not None}
    return Patterns(constant, frozenset(source for source, same in alike.items()
                                        if same and source in several and source not in constant))


def chance_level(result: Mapping) -> float | None:
    """About what the challenge mAP of a random ranking is on these images, from an evaluation result's
    per-class counts: per class with truth, (the share of counted predictions that are true) x (the share
    of truth cells a predicted cell matches), averaged. Rough (the precision envelope lifts small samples);
    the metric counts a class's predictions only in images whose truth has the class, so on images where
    most cells show their image's labels it is high."""
    levels = []
    for entry in result["per_class"].values():
        if entry.get("AP") is None:
            continue
        predictions, hits, truth = entry.get("predictions", 0), entry.get("true_positives", 0), entry["truth_cells"]
        levels.append(hits / predictions * hits / truth if predictions and truth else 0.0)
    return float(np.mean(levels)) if levels else None


class Baseline(NamedTuple):
    """The mAP a ranking reaches without skill on these images: ``exact`` where a constant source was
    evaluated (its mAP), else :func:`chance_level`'s estimate; ``source``: that constant source."""

    value: float
    exact: bool
    source: str = ""


def baseline(results: Mapping[str, Mapping], constant: Mapping[str, float]) -> Baseline | None:
    """The :class:`Baseline` of an evaluation's results (name -> result, the fusion first)."""
    for name, result in results.items():
        source = name.removesuffix(" alone")
        if name != source and source in constant and result.get("mAP") is not None:
            return Baseline(float(result["mAP"]), True, source)
    chance = chance_level(next(iter(results.values()))) if results else None
    return None if chance is None else Baseline(chance, False)


def baseline_name(base: Baseline) -> str:
    return f"the constant-score level {base.value:.4f}" if base.exact else f"chance (about {base.value:.3f})"


def silent_reason(source: str, value: float) -> str:
    if source == "detector" and value == 0:
        return "the detector found no boxes in any image, so every cell scores 0 for every class"
    return f"every score of this source is {value:g}"


def source_notes(results: Mapping[str, Mapping], patterns: Patterns, base: Baseline | None) -> dict[str, str]:
    """Row name ("<source> alone") -> a note (HTML) for the ablation table: why a constant source's mAP
    means nothing, why an image-level source ties the cells of an image, or that a source ranks no better
    than the baseline."""
    notes = {}
    for name, result in results.items():
        source = name.removesuffix(" alone")
        mean = result.get("mAP")
        at_base = (name != source and mean is not None and base is not None
                   and mean <= base.value + (1e-9 if base.exact else NEAR_CHANCE))
        if name != source and source in patterns.constant:
            notes[name] = (f"Contributed nothing: {silent_reason(source, patterns.constant[source])}. Its mAP "
                           f"{score_text(mean)} is what any constant score reaches here (every cell tied), not "
                           f"evidence of skill; in the fusion it adds the same amount to every cell and changes no "
                           f"ranking.")
        elif name != source and source in patterns.per_image:
            notes[name] = ("Gives every cell of an image the same scores (image-level models: each cell gets its "
                           "image's), so it cannot tell the cells of one image apart"
                           + (f"; its mAP is no better than {baseline_name(base)}." if at_base else "."))
        elif at_base:
            notes[name] = f"No better than {baseline_name(base)} on these images."
    return notes


def reading_notes(profile: str | None, constant: Mapping[str, float], base: Baseline | None,
                  evaluated: bool) -> list[str]:
    """Paragraphs (HTML) for the top of the report: what to keep in mind when reading its numbers."""
    notes = []
    if profile == DEMO_PROFILE:
        notes.append("<b>Demo-sized models.</b> This run used the <code>demo</code> profile: a three-member ensemble "
                     "of small models (64-pixel cell tiles, random initial weights, a few hundred training steps) "
                     "trained for minutes on a hundred-odd images, most likely synthetic. The numbers show that the "
                     "pipeline works end to end, not biology: do not read them as what the method achieves.")
    for source, value in constant.items():
        notes.append(f"<b>The {html.escape(source)} source contributed nothing:</b> "
                     f"{html.escape(silent_reason(source, value))}.")
    if evaluated and base is not None:
        what = (f"<b>Constant-score level {base.value:.4f}</b> (the {html.escape(base.source)} alone row, whose "
                f"scores are all {constant[base.source]:g})." if base.exact else
                f"<b>Chance level about {base.value:.3f}</b> (estimated from the cells counted per class).")
        notes.append(f"{what} The challenge mAP counts a prediction of a class only in images whose truth has "
                     "that class, so it only asks whether the cells that show a class outrank the other cells of "
                     "those images; where most cells show their image's labels, even scores without skill reach "
                     "about this figure. Read every row against it (and against the strict mAP and per-cell AUC, "
                     "where shown).")
    return notes


def ensemble_summary(profile, external: bool, max_steps: int = 0) -> dict[str, str]:
    """One line per member of a zoo profile's ensemble: what it is, what and how long it trained on (with
    ``external``: an external data root is configured; ``max_steps``: the classifiers' step cap, 0 none), how
    it predicts."""
    lines = {}
    for name in profile.members:
        spec = profile.model(name)
        if spec.role == "detector":
            lines[name] = (f"detector: {spec.architecture}, {spec.input_size} px {spec.channels}, "
                           f"{spec.epochs} + {spec.finetune_epochs} fine-tuning epochs")
            continue
        length = (f"{spec.epochs * profile.steps_per_epoch} steps of {profile.batch_size}" if profile.steps_per_epoch
                  else f"{spec.epochs} pass(es) over the data in batches of {profile.batch_size}")
        data = ("pseudo labels" if spec.pseudo_labels else "weak labels") + (
            " of the training and external splits" if spec.external_data and external else "")
        if max_steps:
            length += f" (capped at {max_steps} by [classify] max_steps)"
        views = " + ".join(VIEW_NAMES[view] for view in spec.test_time_augment) or "none"
        lines[name] = (f"{spec.role} model: {spec.backbone}, {spec.input_size} px {spec.channels}, {length} on "
                       f"{data}, from {spec.initial_weights or 'random weights'}; test-time views: {views}")
    return lines

"""The evaluation of a run as a document (``evaluation.json``) and as a few printable lines (pure).

The numbers come from :func:`stages.submit.evaluate.evaluate_sources` (the fusion and each source alone
over the run's images) and :func:`stages.submit.file_score.evaluate_submission` (the written file); this module
only arranges them, so the task that writes the JSON, the one that prints it and the report all read the
same keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from stages.zoo import FusionSettings

FUSED = "fused"  # the name of the fusion's score table among evaluate_sources' tables


def score_text(value: float | None) -> str:
    """An mAP or AP for people: four decimals, "n/a" where no class had truth."""
    return "n/a" if value is None else f"{value:.4f}"


def evaluation_document(
    split: str,
    truth: str,
    results: Mapping[str, dict],
    submission_file: dict,
    fusion: FusionSettings,
    seconds: float,
) -> dict:
    """``evaluation.json``: ``results`` is evaluate_sources' name -> result with ``"fused"`` and every
    source of ``fusion.sources``; ``submission_file`` is evaluate_submission's result; ``truth`` the truth's
    URI; ``seconds`` the evaluation's wall time (rounded to 10 ms: finer is noise)."""
    fused = results[FUSED]
    return {
        "split": split,
        "truth": truth,
        "images": fused["images"],
        "mAP": fused["mAP"],
        "fused": fused,
        "sources": {source: results[source] for source in fusion.sources},
        "submission_file": submission_file,
        "fusion": {"mode": fusion.mode, "weights": dict(fusion.weights)},
        "seconds": round(seconds, 2),
    }


def evaluation_text(document: Mapping) -> str:
    """The ablation of an :func:`evaluation_document` as a few printable lines."""
    lines = [f"evaluation of {document['images']} {document['split']} image(s) against {document['truth']}:",
             f"  fused ({document['fusion']['mode']}): mAP {score_text(document['fused']['mAP'])} over "
             f"{document['fused']['classes_evaluated']} class(es)"]
    for source, result in document["sources"].items():
        lines.append(f"  {source} alone: mAP {score_text(result['mAP'])}")
    lines.append(f"  submission.csv as written: mAP {score_text(document['submission_file']['mAP'])}")
    return "\n".join(lines)

"""The evaluation of a run as a document (``evaluation.json``) and as a few printable lines (pure).

The numbers come from :func:`stages.submit.evaluate.evaluate_sources` (the fusion and each source alone
over the run's images) and :func:`stages.submit.file_score.evaluate_submission` (the written file); this module
only arranges them, so the task that writes the JSON, the one that prints it and the report all read the
same keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from stages.submit.cell_auc import PAIR_IOU
from stages.zoo import FusionSettings

FUSED = "fused"  # the name of the fusion's score table among evaluate_sources' tables


def score_text(value: float | None) -> str:
    """An mAP or AP for people: four decimals, "n/a" where no class had truth."""
    return "n/a" if value is None else f"{value:.4f}"


def measures(iou_threshold: float) -> dict[str, str]:
    """The three measures of every result, one sentence each, for readers of ``evaluation.json``."""
    return {
        "mAP": f"The challenge metric: mean over the classes with truth cells of the average precision at mask IoU "
               f">= {iou_threshold:g}, a prediction of a class counted only in images whose truth has that class "
               f"(Open Images style).",
        "strict_mAP": "The same mean average precision with every prediction counted: a prediction of a class in an "
                      "image whose truth lacks that class is a false positive, as it would be for a user without "
                      "image labels.",
        "cell_auc": f"Per-cell macro ROC-AUC: each truth cell takes the confidences of the predicted mask of best IoU "
                    f"with it (>= {PAIR_IOU:g}; none: 0 for every class), and the ROC-AUC over all truth cells is "
                    f"averaged over the cell_auc_classes classes having both positive and negative truth cells.",
    }


def measure_text(result: Mapping) -> str:
    """The three measures of one result on one line ("n/a" where a measure has nothing to average)."""
    return (f"mAP {score_text(result.get('mAP'))} over {result.get('classes_evaluated', 0)} class(es), "
            f"strict mAP {score_text(result.get('strict_mAP'))}, cell AUC {score_text(result.get('cell_auc'))} "
            f"over {result.get('cell_auc_classes', 0)} class(es)")


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
    URI; ``seconds`` the evaluation's wall time (rounded to 10 ms: finer is noise); ``measures`` says what
    ``mAP``, ``strict_mAP`` and ``cell_auc`` of each result mean."""
    fused = results[FUSED]
    return {
        "split": split,
        "truth": truth,
        "images": fused["images"],
        "mAP": fused["mAP"],
        "fused": fused,
        "sources": {source: results[source] for source in fusion.sources},
        "submission_file": submission_file,
        "fusion": {"mode": fusion.mode, "weights": dict(fusion.weights), "gate": fusion.gate},
        "seconds": round(seconds, 2),
        "measures": measures(fused["iou_threshold"]),
    }


def fusion_label(fusion: Mapping) -> str:
    """``weighted`` or e.g. ``weighted, gate cells``: the rule the fused scores came from."""
    gate = fusion.get("gate", "none")
    return fusion["mode"] + (f", gate {gate}" if gate != "none" else "")


def evaluation_text(document: Mapping) -> str:
    """The ablation of an :func:`evaluation_document` as a few printable lines."""
    lines = [f"evaluation of {document['images']} {document['split']} image(s) against {document['truth']}:",
             f"  fused ({fusion_label(document['fusion'])}): {measure_text(document['fused'])}"]
    for source, result in document["sources"].items():
        lines.append(f"  {source} alone: {measure_text(result)}")
    lines.append(f"  submission.csv as written: {measure_text(document['submission_file'])}")
    return "\n".join(lines)

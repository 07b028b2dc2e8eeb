"""What the submit stage writes: the one place these names are spelled."""

from __future__ import annotations

from stages.artifacts import Artifact

SUBMISSION_COLUMNS: tuple[str, ...] = ("ID", "ImageWidth", "ImageHeight", "PredictionString")
SUBMISSION = Artifact("submission.csv", "table", "one row per image of the split: ID, ImageWidth, ImageHeight, "
                      "PredictionString (triples class confidence mask, all 19 classes per cell)",
                      columns=SUBMISSION_COLUMNS, dtypes={"ID": str})
EVALUATION = Artifact("evaluation.json", "json", "mAP and per-class AP of the fusion, of each source alone and "
                      "of the written file")
REPORT = Artifact("report.html", "bytes", "one self-contained HTML page: AP chart, ablation, images, settings")
REPORT_IMAGE = Artifact("images/{image_id}.png", "bytes", "each drawn image, also embedded in the report")
PUBLISHED = "published.json"  # at the work root: the copies, the artifacts they came from, the run's settings
RECORDED_SETTINGS = ("input", "external", "profile", "shard_size")  # [pipeline] keys that shape every artifact

# Truth in the synthetic / hold-out layout: ``truth/cells.csv`` has one row per truth cell.
TRUTH_CELLS_COLUMNS: tuple[str, ...] = ("ID", "cell_id", "Label")

IOU_THRESHOLD = 0.6

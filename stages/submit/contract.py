"""What the submit stage reads and writes: the one place these names are spelled."""

from __future__ import annotations

STAGE = "submit"

SUBMISSION_COLUMNS: tuple[str, ...] = ("ID", "ImageWidth", "ImageHeight", "PredictionString")
SUBMISSION_FILE = "submission.csv"
EVALUATION_FILE = "evaluation.json"
REPORT_FILE = "report.html"

# Truth in the synthetic / hold-out layout: ``truth/cells.csv`` has one row per truth cell.
TRUTH_CELLS_COLUMNS: tuple[str, ...] = ("ID", "cell_id", "Label")

IOU_THRESHOLD = 0.6

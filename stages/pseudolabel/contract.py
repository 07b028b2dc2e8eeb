"""What the pseudolabel stage reads and writes: the one place that names its files and columns."""

from stages.classes import SCORE_COLUMNS
from stages.classify.contract import HISTORY_FILE, MODEL_FILE, TRAINING_FILE
from stages.pseudolabel.core import LABEL_COLUMNS

INPUTS = {
    "tiles": "tile stage: every shard of the training split(s) (tiles.npy, index.csv)",
    "manifest": "the training split's manifest: the image labels the fold models learn from (weak labels)",
    "zoo": "the profile's pseudo_label block: positive_threshold, negative_threshold, folds, model",
}

# ---- TrainFoldModel: <work>/pseudolabel_fold/<fingerprint>/train/fold-K/
FOLD_SCORES_FILE = "oof_scores.csv"  # the fold model's probabilities on the tiles of fold K (out of fold)
FOLD_FILES = (MODEL_FILE, HISTORY_FILE, TRAINING_FILE, FOLD_SCORES_FILE)

# ---- PseudoLabel: <work>/pseudolabel/<fingerprint>/train/
OOF_SCORES_FILE = "oof_scores.csv"  # every tile's out-of-fold probabilities
OOF_COLUMNS = ("ID", "cell_id", "split", "fold", *SCORE_COLUMNS)
PSEUDO_LABELS_FILE = "pseudo_labels.csv"  # the kept tiles and their pseudo label
PSEUDO_LABEL_COLUMNS = LABEL_COLUMNS  # ID, cell_id, split, Label ("0|16"; "18" = Negative)
PSEUDO_LABEL_DTYPES = {"ID": str, "cell_id": "int64", "split": str, "Label": str}
SUMMARY_FILE = "summary.json"  # tiles, kept, dropped, per-class counts, thresholds

OUTPUTS = {
    "TrainFoldModel": f"{', '.join(FOLD_FILES)}",
    "PseudoLabel": f"{PSEUDO_LABELS_FILE} ({', '.join(PSEUDO_LABEL_COLUMNS)}), {OOF_SCORES_FILE} "
                   f"({', '.join(OOF_COLUMNS[:4])}, class_0 .. class_18), {SUMMARY_FILE}",
}

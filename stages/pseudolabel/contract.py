"""What the pseudolabel stage writes: the one place its files and columns are declared."""

from stages.artifacts import Artifact, table
from stages.classes import SCORE_COLUMNS
from stages.classify.contract import HISTORY, MODEL, TRAINING

_SCORES = {column: "float64" for column in SCORE_COLUMNS}

# ---- TrainFoldModel: <work>/train_fold_model/<fingerprint>/train/fold-K/ (plus the fold model's files)
FOLD_SCORES = table("oof_scores.csv", "the fold model's probabilities on the tiles of fold K (out of fold)",
                    {"ID": str, "cell_id": "int64", "split": str, "fold": "int64", **_SCORES})
FOLD_OUTPUTS = (MODEL, HISTORY, TRAINING, FOLD_SCORES)

# ---- PseudoLabel: <work>/pseudo_label/<fingerprint>/train/
OOF_SCORES = table("oof_scores.csv", "every training tile's out-of-fold probabilities",
                   dict(FOLD_SCORES.dtypes))
PSEUDO_LABELS = table("pseudo_labels.csv", 'the kept tiles and their pseudo label ("0|16"; "18" = Negative)',
                      {"ID": str, "cell_id": "int64", "split": str, "Label": str})
SUMMARY = Artifact("summary.json", "json", "tiles, kept, dropped, per-class counts, thresholds")

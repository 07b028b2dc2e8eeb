"""What the classify stage writes: the one place its files are declared.

Every prediction task writes the one score-table shape the fusion combines (:mod:`stages.scores`): one row
per cell of the segment table, ``ID, cell_id, class_0 .. class_18``.
"""

from stages.artifacts import Artifact, table
from stages.classes import SCORE_COLUMNS
from stages.scores import SCORES

# ---- TrainCellModel / TrainImageModel: <work>/train_*_model/<fingerprint>/train/<model>/
MODEL = Artifact("model.keras", "bytes", "the whole Keras 3 model: uint8 pixels in, 19 sigmoid probabilities out")
HISTORY = table("history.csv", "one row per epoch: epoch, then every metric Keras logged on the training "
                "batches (loss, learning_rate, auc: Keras' auc counts a class without positives as 0, so read "
                "instead) and the validation pass's val_loss and val_macro_auc: mean ROC-AUC over the "
                "val_auc_classes classes with positives and negatives in the validation set (empty in epochs "
                "without a validation pass: about 20 evenly spaced per run, the last always, every epoch under "
                "the plateau schedule)",
                {"epoch": "int64"}, open_columns=True)
TRAINING = Artifact("training.json", "json", "the model's zoo entry, the training settings, sample counts, seconds")

# ---- PredictCells / PredictImages / PredictImageOnCell: per shard
IMAGE_SCORES = table("image_scores.csv", "PredictImages only: ID, class_0 .. class_18, one row per image",
                     {"ID": str, **{column: "float64" for column in SCORE_COLUMNS}})
__all__ = ["HISTORY", "IMAGE_SCORES", "MODEL", "SCORES", "TRAINING"]

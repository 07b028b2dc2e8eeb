"""Luigi tasks of the pseudolabel stage (SPEC 3.4): two-fold cross prediction, then the threshold rule.

- ``TrainFoldModel(fold)``: a cell model (the zoo's ``pseudo_label.model`` settings, weak labels) trained
  on the tiles of every other fold, predicting the tiles of this fold.
- ``PseudoLabel()``: all folds' out-of-fold probabilities through the rule (:mod:`stages.pseudolabel.core`);
  cell models with ``pseudo_labels: true`` train on its ``pseudo_labels.csv``.
"""

from __future__ import annotations

import dataclasses

import luigi
import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CLASS_NAMES, parse_labels
from stages.classify import task as classify_task
from stages.pseudolabel import contract, core
from stages.tasking import FolderTask, StageTask
from stages.zoo import ModelSpec


def settings():
    return classify_task.profile().pseudo_label


def fold_spec() -> ModelSpec:
    """The fold models' zoo entry: the configured cell model, trained on weak labels."""
    spec = classify_task.classifier_spec(settings().model, "cell")
    return dataclasses.replace(spec, pseudo_labels=False)


def pseudo_label_splits() -> list[str]:
    return classify_task.training_splits(fold_spec())


def fold_of_rows(index: pd.DataFrame) -> np.ndarray:
    """Each tile's fold, by its image (split and ID): every tile of an image lies in one fold."""
    keys = classify_task.image_keys(index)
    folds = core.assign_folds(keys, settings().folds, classify_task.classify().seed)
    return np.array([folds[key] for key in keys], dtype=np.int64)


class TrainFoldModel(FolderTask):
    """The fold model that never saw fold ``fold``, and its probabilities on that fold's tiles."""

    stage = "pseudolabel_fold"
    split = "train"
    fold = luigi.IntParameter(description="the held-out fold, 0..folds-1")

    def content_settings(self) -> dict:
        return {"fold": self.fold, "folds": settings().folds, **classify_task.training_content(fold_spec())}

    def upstream(self) -> list[StageTask]:
        from stages.tile.task import Tile

        return [Tile(split=split, shard=0) for split in pseudo_label_splits()]

    def requires(self):
        from stages.tile.task import TileAll

        return [TileAll(split=split) for split in pseudo_label_splits()]

    def folder(self) -> str:
        return storage.join(self.stage_root(), f"fold-{self.fold}")

    def run_here(self):
        if not 0 <= self.fold < settings().folds:
            raise ValueError(f"fold {self.fold} is not in 0..{settings().folds - 1}")
        super().run_here()

    def fill(self, folder: str) -> None:
        from stages.classify import data
        from stages.classify.predict import predict_probabilities

        spec = fold_spec()
        tiles = classify_task.tile_set(pseudo_label_splits())
        folds = fold_of_rows(tiles.index)
        held_out = np.flatnonzero(folds == self.fold)
        training = np.flatnonzero(folds != self.fold)
        targets = classify_task.weak_targets(tiles.index)
        with classify_task.opened_arrays(tiles.tile_uris) as arrays:
            bank = data.ArrayBank(arrays)
            model = classify_task.fit_and_save(
                self, spec, folder, bank, targets, tiles.index["ID"].to_numpy(), rows=training,
                extra={"labels": "weak (image labels)", "fold": self.fold, "held_out_tiles": int(len(held_out))})
            self.progress(f"predicting the {len(held_out)} tile(s) of fold {self.fold}")
            scores = predict_probabilities(model, _Rows(bank, held_out), spec.channels,
                                           classify_task.classify().predict_batch_size)
        rows = tiles.index.iloc[held_out]
        table = data.score_table(rows["ID"], rows["cell_id"], scores)
        table.insert(2, "split", rows["split"].to_numpy())
        table.insert(3, "fold", self.fold)
        storage.write_table(storage.join(folder, contract.FOLD_SCORES_FILE), table)


class _Rows:
    """Some rows of an ArrayBank, sliceable like an array (what predict_probabilities reads)."""

    def __init__(self, bank, rows: np.ndarray):
        self.bank, self.rows = bank, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: slice) -> np.ndarray:
        return self.bank.take(self.rows[item])


class PseudoLabel(FolderTask):
    """Out-of-fold probabilities of every training tile through the threshold rule."""

    stage = "pseudolabel"
    split = "train"

    def content_settings(self) -> dict:
        rule = settings()
        return {"positive_threshold": rule.positive_threshold, "negative_threshold": rule.negative_threshold}

    def upstream(self) -> list[StageTask]:
        return [TrainFoldModel(fold=fold) for fold in range(settings().folds)]

    def folder(self) -> str:
        return self.stage_root()


    def fill(self, folder: str) -> None:
        rule = settings()
        scores = pd.concat(
            [storage.read_table(storage.join(task.folder(), contract.FOLD_SCORES_FILE),
                                dtype={"ID": str, "split": str}) for task in self.upstream()],
            ignore_index=True,
        )
        labels = core.pseudo_label_table(scores, rule.positive_threshold, rule.negative_threshold)
        storage.write_table(storage.join(folder, contract.OOF_SCORES_FILE), scores[list(contract.OOF_COLUMNS)])
        storage.write_table(storage.join(folder, contract.PSEUDO_LABELS_FILE), labels)
        counts = np.zeros(len(CLASS_NAMES), np.int64)
        for label in labels["Label"]:
            counts[parse_labels(label)] += 1
        summary = {
            "tiles": int(len(scores)), "kept": int(len(labels)), "dropped": int(len(scores) - len(labels)),
            "positive_threshold": rule.positive_threshold, "negative_threshold": rule.negative_threshold,
            "folds": rule.folds, "model": rule.model,
            "tiles_per_class": {f"{index} {name}": int(count) for index, (name, count) in enumerate(zip(CLASS_NAMES, counts))},
        }
        storage.write_json(storage.join(folder, contract.SUMMARY_FILE), summary)


def read_pseudo_labels(task: PseudoLabel) -> pd.DataFrame:
    return storage.read_table(storage.join(task.folder(), contract.PSEUDO_LABELS_FILE),
                              dtype=contract.PSEUDO_LABEL_DTYPES, keep_default_na=False)


def pseudo_targets(task: PseudoLabel, index: pd.DataFrame, weak: np.ndarray):
    """Targets for a cell model trained on pseudo labels: ``(targets, rows, record)``.

    Tiles of a split the pseudo labels cover (``pseudo_label_splits()``) take their pseudo label, or are left
    out where the rule dropped them; tiles of any other split keep their weak label (``weak``).
    """
    from stages.classify import data

    labels = read_pseudo_labels(task)
    keys = index[["split", "ID", "cell_id"]].astype({"split": str, "ID": str, "cell_id": np.int64})
    found = keys.merge(labels, on=["split", "ID", "cell_id"], how="left", validate="one_to_one")["Label"]
    covered = keys["split"].isin(pseudo_label_splits()).to_numpy()
    labelled = covered & found.notna().to_numpy()
    targets = weak.copy()
    targets[labelled] = data.label_matrix(found[labelled].astype(str).tolist())
    keep = ~covered | labelled
    record = {"labels": "pseudo labels", "pseudo_labelled_tiles": int(labelled.sum()),
              "dropped_tiles": int((~keep).sum()), "weak_labelled_tiles": int((~covered).sum())}
    return targets, np.flatnonzero(keep), record

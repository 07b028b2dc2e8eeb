"""The pseudolabel stage (SPEC 3.4): two-fold cross prediction, then the threshold rule.

``TrainFoldModel(fold)`` trains a cell model (the zoo's ``pseudo_label.model`` settings, weak labels) on the
tiles of every other fold and predicts the tiles of this fold; ``PseudoLabel`` puts every fold's
out-of-fold probabilities through the rule (:mod:`stages.pseudolabel.core`). Cell models with
``pseudo_labels: true`` train on its ``pseudo_labels.csv``.
"""

from __future__ import annotations

import dataclasses

import luigi
import numpy as np
import pandas as pd

from stages import inputs
from stages.classify import core as classify_core
from stages.classify import stage as classify
from stages.declare import Stage, TaskSpec, single
from stages.pseudolabel import contract, core
from stages.tile import contract as tile_contract
from stages.zoo import ModelSpec


def rule():
    return classify.profile().pseudo_label


def fold_spec() -> ModelSpec:
    """The fold models' zoo entry: the configured cell model, trained on weak labels."""
    return dataclasses.replace(classify.classifier_spec(rule().model, "cell"), pseudo_labels=False)


def run_fold(ctx) -> dict:
    from stages.classify import data
    from stages.classify.predict import predict_probabilities

    fold, folds = ctx.params["fold"], rule().folds
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not in 0..{folds - 1}")
    spec, splits = fold_spec(), classify.pseudo_label_splits()
    shards = classify.shards_of(ctx, "Tile", splits)
    index = classify_core.stacked_index([(split, shard.read(tile_contract.INDEX)) for split, shard in shards])
    keys = classify_core.image_keys(index)
    fold_of = core.assign_folds(keys, folds, classify.classify().seed)
    held_out = np.flatnonzero(np.array([fold_of[key] for key in keys], dtype=np.int64) == fold)
    training = np.setdiff1d(np.arange(len(index)), held_out)
    targets = classify_core.weak_targets(index, {split: inputs.image_labels(split) for split in splits})
    with tile_contract.TILES.mapped([shard.folder for _, shard in shards]) as arrays, classify.released_after():
        bank = data.ArrayBank(arrays)
        model, outputs = classify.fit_outputs(ctx, spec, bank, targets, keys, training, extra={
            "labels": "weak (image labels)", "fold": fold, "held_out_tiles": int(len(held_out))})
        ctx.progress(f"predicting the {len(held_out)} tile(s) of fold {fold}")
        scores = predict_probabilities(model, data.RowView(bank, held_out), spec.channels,
                                       classify.classify().predict_batch_size, spec.test_time_augment)
    rows = index.iloc[held_out]
    table = data.score_table(rows["ID"], rows["cell_id"], scores)
    table.insert(2, "split", rows["split"].to_numpy())
    table.insert(3, "fold", fold)
    return {**outputs, contract.FOLD_SCORES: table}


def run_pseudo_label(ctx) -> dict:
    settings = rule()
    scores = pd.concat([ctx.input(f"fold_{fold}").read(contract.FOLD_SCORES) for fold in range(settings.folds)],
                       ignore_index=True)
    labels = core.pseudo_label_table(scores, settings.positive_threshold, settings.negative_threshold)
    return {contract.OOF_SCORES: scores, contract.PSEUDO_LABELS: labels,
            contract.SUMMARY: core.pseudo_label_summary(scores, labels, settings)}


TRAIN_FOLD_MODEL = TaskSpec(
    name="TrainFoldModel", doc="The fold model that never saw fold `fold`, and its probabilities on that fold.",
    needs=lambda task: classify.split_inputs("Tile", classify.pseudo_label_splits()),
    outputs=contract.FOLD_OUTPUTS,
    content=lambda task: {"fold": task.fold, "folds": rule().folds, **classify.training_content(fold_spec()),
                          **classify.prediction_content(fold_spec())},
    params={"fold": luigi.IntParameter(description="the held-out fold, 0..folds-1")},
    run=run_fold, splits=("train",), folder="fold-{fold}", gpu=True, operational=classify.OPERATIONAL,
    reads_labels=True,
)

PSEUDO_LABEL = TaskSpec(
    name="PseudoLabel", doc="Out-of-fold probabilities of every training tile through the threshold rule.",
    needs=lambda task: {f"fold_{fold}": single("TrainFoldModel", fold=fold) for fold in range(rule().folds)},
    outputs=(contract.OOF_SCORES, contract.PSEUDO_LABELS, contract.SUMMARY),
    content=lambda task: {"positive_threshold": rule().positive_threshold,
                          "negative_threshold": rule().negative_threshold},
    run=run_pseudo_label, splits=("train",),
)

STAGE = Stage(name="pseudolabel", doc="Two-fold pseudo labels for the cell models.",
              tasks=(TRAIN_FOLD_MODEL, PSEUDO_LABEL), whole="PseudoLabel")

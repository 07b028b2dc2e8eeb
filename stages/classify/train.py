"""Training a classifier on uint8 arrays: batches from an :class:`ArrayBank`, augmented on the host, fed to
Keras ``fit`` through a ``keras.utils.PyDataset`` (works on every Keras backend).

No files and no Luigi here: the task opens the shards, this module trains and returns the history.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from stages.classify import data, models
from stages.classify.settings import WARMUP_FRACTION, TrainSettings
from stages.zoo import MIXING_AUGMENTATIONS


class Batches(keras.utils.PyDataset):
    """A ``keras.utils.PyDataset`` over ``rows`` of ``bank``.

    Training: ``steps`` full batches per epoch from successive shuffles (one traced shape), augmented, reshuffled
    every epoch; deterministic from ``seed``. Evaluation (``training=False``): every row once, in order, the last
    batch possibly short.
    """

    def __init__(self, bank: data.ArrayBank, targets: np.ndarray, rows: np.ndarray, channels: str, batch_size: int,
                 steps: int | None = None, augment: tuple[str, ...] = (), seed: int = 0, training: bool = True,
                 workers: int = 1):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.bank, self.targets, self.rows, self.channels = bank, targets, np.asarray(rows), channels
        self.batch_size, self.steps, self.augment = batch_size, steps, tuple(augment)
        self.seed, self.training, self.epoch = seed, training, 0
        self.order = self._plan()

    def _plan(self) -> list[np.ndarray]:
        if self.training:
            rng = np.random.default_rng([self.seed, self.epoch])
            return list(self.rows[data.epoch_batches(len(self.rows), self.batch_size, self.steps, rng)])
        return [self.rows[start:start + self.batch_size] for start in range(0, len(self.rows), self.batch_size)]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int):
        picked = self.order[index]
        x = data.model_input(self.bank.take(picked), self.channels)
        y = self.targets[picked]
        if self.training and self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            x, y = data.augment_batch(x, y, self.augment, rng)
        return np.ascontiguousarray(x), y

    def on_epoch_end(self):
        if self.training:
            self.epoch += 1
            self.order = self._plan()


def batch_norm_momentum(total_steps: int) -> float:
    """The BatchNorm moving-average momentum for a run of ``total_steps``: EfficientNet's 0.99 (a horizon of
    ~100 steps) for long runs, shorter for short ones so that the statistics used at prediction time reflect
    the trained weights rather than their random start (a horizon of at most a tenth of the run)."""
    return float(min(0.99, max(0.5, 1.0 - 10.0 / max(1, total_steps))))


def set_batch_norm_momentum(model, momentum: float) -> int:
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def learning_rate(settings: TrainSettings, total_steps: int):
    """The optimiser's learning rate: a constant for the plateau schedule (the callback lowers it), else a
    warm-up then cosine-decay schedule over exactly ``total_steps``."""
    if settings.schedule == "plateau":
        return settings.learning_rate
    warmup = max(1, int(round(WARMUP_FRACTION * total_steps)))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, warmup_target=settings.learning_rate, warmup_steps=warmup,
        decay_steps=max(1, total_steps - warmup))


RECALIBRATION_BATCH = 64  # larger than a training batch: per-batch statistics of 16 tiles were measured too noisy


def recalibrate_batch_norm(model, batches, count: int) -> int:
    """Re-estimate every BatchNorm layer's moving statistics as the plain average over ``count`` clean
    (unaugmented) training batches, weights untouched; returns the number of batches used.

    Cutmix and mixup change the statistics of the batches the moving averages were collected on, so a short
    run predicts clean inputs with mismatched statistics (measured here: held-out ROC-AUC 0.99 in training
    mode but 0.79 through the moving averages after 75 steps); re-estimating them on clean inputs, as done
    after stochastic weight averaging, removes the mismatch at the cost of ``count`` forward passes.
    """
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    count = min(count, len(batches))
    if not layers or count == 0:
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        for index in range(count):
            for layer in layers:
                layer.momentum = index / (index + 1.0)  # running mean of the batch statistics
            x, _ = batches[index]
            model(x, training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return count


def train_classifier(model, spec, bank: data.ArrayBank, targets: np.ndarray, groups, settings: TrainSettings,
                     rows: np.ndarray | None = None, log=print) -> dict:
    """Compile and fit ``model`` (built from zoo entry ``spec``) on ``rows`` of ``bank`` (default: all).

    ``targets`` and ``groups`` hold one entry per bank row; ``groups`` (the image ID) decides the validation
    split, so whole images go to validation. Returns the history (one list per metric, one value per epoch)
    and the counts and seconds.
    """
    if len(bank) != len(targets) or len(groups) != len(targets):
        raise ValueError(f"{len(bank)} inputs, {len(targets)} targets, {len(groups)} group ids")
    rows = np.arange(len(bank)) if rows is None else np.asarray(rows, dtype=np.int64)
    train_part, validation_part = data.split_validation(np.asarray(groups)[rows], settings.validation_fraction,
                                                        settings.seed)
    train_rows, validation_rows = rows[train_part], rows[validation_part]
    if len(train_rows) == 0:
        raise ValueError(f"model {spec.name}: no training samples")
    train = Batches(bank, targets, train_rows, spec.channels, settings.batch_size, settings.steps_per_epoch,
                    settings.augment, settings.seed, training=True, workers=settings.workers)
    total_steps = settings.epochs * len(train)
    momentum = batch_norm_momentum(total_steps)
    set_batch_norm_momentum(model, momentum)
    models.compile_classifier(model, spec.loss, learning_rate(settings, total_steps), settings.run_eagerly,
                              settings.jit_compile)
    validation = None
    if len(validation_rows):
        validation = Batches(bank, targets, validation_rows, spec.channels, settings.batch_size, training=False,
                             workers=settings.workers)
    callbacks = []
    if validation is not None and settings.schedule == "plateau" and settings.steps_per_epoch is None:
        # The original's schedule, made for epochs that are whole passes over the data; with a few fixed
        # steps per "epoch" (the demo profile) its patience of 3 would cut the rate after a few dozen steps.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=3, min_lr=1e-6, mode="min"))
    log(f"training {spec.name}: {len(train_rows)} samples ({len(validation_rows)} held out for validation), "
        f"{settings.epochs} epoch(s) x {len(train)} step(s) of {settings.batch_size}")
    started = time.monotonic()
    history = model.fit(train, validation_data=validation, epochs=settings.epochs, callbacks=callbacks,
                        verbose=settings.verbose)
    recalibrated = 0
    if settings.recalibration_batches and set(settings.augment) & set(MIXING_AUGMENTATIONS):
        size = max(settings.batch_size, RECALIBRATION_BATCH)
        sample = np.random.default_rng([settings.seed, 2]).permutation(train_rows)
        clean = Batches(bank, targets, sample[:settings.recalibration_batches * size], spec.channels, size,
                        training=False)
        recalibrated = recalibrate_batch_norm(model, clean, settings.recalibration_batches)
    seconds = time.monotonic() - started
    values = {key: [float(value) for value in series] for key, series in history.history.items()}
    log(f"trained {spec.name} in {seconds:.1f} s: "
        + ", ".join(f"{key} {series[-1]:.4f}" for key, series in values.items()))
    return {"history": values, "train_samples": int(len(train_rows)), "validation_samples": int(len(validation_rows)),
            "steps_per_epoch": len(train), "batch_norm_momentum": momentum,
            "batch_norm_recalibration_batches": recalibrated, "seconds": round(seconds, 2)}


def fit_classifier(spec, settings: TrainSettings, bank: data.ArrayBank, targets: np.ndarray, groups,
                   rows: np.ndarray | None = None, weights: str | None = None, source: str = "efficientnet",
                   log=print):
    """Build zoo entry ``spec`` from seeded random (or ``weights``) and train it: ``(model, history, result)``,
    the history one row per epoch (``epoch`` first), the result the counts and seconds."""
    import pandas as pd

    keras.utils.set_random_seed(settings.seed)
    model = models.build_classifier(spec, weights=weights, source=source)
    result = train_classifier(model, spec, bank, targets, groups, settings, rows=rows, log=log)
    history = pd.DataFrame(result.pop("history"))
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return model, history, result

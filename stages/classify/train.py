"""Training a classifier on uint8 arrays: batches from an :class:`ArrayBank`, augmented on the host, fed to
Keras ``fit`` through a ``keras.utils.PyDataset`` (works on every Keras backend).

No files and no Luigi here: the task opens the shards, this module trains and returns the history. Every
epoch ends with one ``epoch E/N`` line (loss, validation loss, validation macro ROC-AUC) and a percentage
through ``progress``.
"""

from __future__ import annotations

import time

import numpy as np

from stages import quiet
from stages.classify import data, models
from stages.classify.predict import predict_probabilities
from stages.classify.settings import WARMUP_FRACTION, TrainSettings
from stages.zoo import MIXING_AUGMENTATIONS

keras = quiet.import_keras()


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


def macro_auc(truth: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """``(mean ROC-AUC, classes)`` over the classes with both positives and negatives in ``truth`` (NaN, 0
    when there is none). Keras' multi-label AUC counts a class without positives as 0 instead, which on a
    small validation set (most classes absent) makes its ``val_auc`` meaningless."""
    aucs = data.per_class_auc(truth, scores)
    return (float(np.mean(list(aucs.values()))) if aucs else float("nan")), len(aucs)


def epoch_line(epoch: int, epochs: int, logs: dict, validation_samples: int, seconds: float,
               validated: bool = True) -> str:
    """``epoch 2/10: loss 0.3215, val_loss 0.4852, val macro AUC 0.71 over 9 classes (12.3 s)``."""
    parts = [f"loss {logs.get('loss', float('nan')):.4f}"]
    if validation_samples == 0:
        parts.append("no validation samples")
    elif not validated:
        parts.append("not validated this epoch")
    else:
        if "val_loss" in logs:
            parts.append(f"val_loss {logs['val_loss']:.4f}")
        if logs.get("val_auc_classes"):
            classes = int(logs["val_auc_classes"])
            parts.append(f"val macro AUC {logs['val_macro_auc']:.2f} over {classes} class{'es' * (classes != 1)}")
        else:
            parts.append(f"val macro AUC n/a (no class has both positives and negatives among the "
                         f"{validation_samples} validation samples)")
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + f" ({seconds:.1f} s)"


MAX_VALIDATIONS = 20  # validation passes per run; each costs about 1 s in the demo's cell member


def validation_epochs(epochs: int, every_epoch: bool) -> frozenset[int]:
    """The (1-based) epochs that end with a validation pass: all of them when a callback needs each epoch's
    figure (the plateau schedule), else at most about :data:`MAX_VALIDATIONS` evenly spaced, always the last
    (the figure the training record keeps). Many short epochs would otherwise spend a minute of a 15-minute
    demo on passes that change nothing: validation never touches the weights."""
    every = 1 if every_epoch else -(-epochs // MAX_VALIDATIONS)
    return frozenset(range(every, epochs + 1, every)) | {epochs}


class EpochReport(keras.callbacks.Callback):
    """At each epoch's end: the validation loss (``val_loss``, the compiled loss over all validation samples)
    and macro ROC-AUC (:func:`macro_auc`) into the logs (so into the history and to the callbacks after
    this one) as ``val_loss``, ``val_macro_auc`` and ``val_auc_classes`` (NaN in the epochs outside
    ``validated``, 1-based), then one ``epoch E/N`` line and a percentage. One prediction pass gives both:
    Keras' own validation pass would trace a second function (seconds per model on a CPU) for the same
    numbers.

    The validation inputs are predicted in inference mode (no BatchNorm update, no dropout, no random draw),
    so training goes exactly as it would without this report."""

    def __init__(self, bank, targets, rows, channels: str, batch_size: int, epochs: int, progress,
                 validated: frozenset[int]):
        super().__init__()
        self.bank, self.truth, self.rows = bank, np.asarray(targets)[rows], np.asarray(rows)
        self.channels, self.batch_size, self.epochs, self.progress = channels, batch_size, epochs, progress
        self.validated = validated
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        validated = epoch + 1 in self.validated
        value, classes = float("nan"), 0
        if len(self.rows) and not validated:
            logs["val_loss"], classes = float("nan"), float("nan")
        elif len(self.rows):
            scores = predict_probabilities(self.model, data.RowView(self.bank, self.rows), self.channels,
                                           self.batch_size)
            value, classes = macro_auc(self.truth, scores)
            loss = self.model.loss(self.truth.astype("float32"), scores.astype("float32"))
            logs["val_loss"] = float(keras.ops.convert_to_numpy(loss))
        logs["val_macro_auc"], logs["val_auc_classes"] = value, classes
        self.progress(epoch_line(epoch + 1, self.epochs, logs, len(self.rows), time.monotonic() - self.started,
                                 validated), int(100 * (epoch + 1) / self.epochs))


def train_classifier(model, spec, bank: data.ArrayBank, targets: np.ndarray, groups, settings: TrainSettings,
                     rows: np.ndarray | None = None, log=print, progress=None) -> dict:
    """Compile and fit ``model`` (built from zoo entry ``spec``) on ``rows`` of ``bank`` (default: all).

    ``targets`` and ``groups`` hold one entry per bank row; ``groups`` (the image ID) decides the validation
    split, so whole images go to validation. ``log(message)`` hears the start; ``progress(message, percent)``
    (default: ``log``) one ``epoch E/N`` line per epoch. Returns the history (one list per metric, one value
    per epoch; ``val_macro_auc`` and ``val_auc_classes`` among them) and the counts and seconds.
    """
    if progress is None:
        def progress(message, percent=None):
            log(message)

    if len(bank) != len(targets) or len(groups) != len(targets):
        raise ValueError(f"{len(bank)} inputs, {len(targets)} targets, {len(groups)} group ids")
    rows = np.arange(len(bank)) if rows is None else np.asarray(rows, dtype=np.int64)
    train_part, validation_part = data.split_validation(np.asarray(groups)[rows], settings.validation_fraction,
                                                        settings.seed)
    train_rows, validation_rows = rows[train_part], rows[validation_part]
    if len(train_rows) == 0:
        raise ValueError(f"model {spec.name}: no training samples")
    passes = settings.accumulation
    epochs, steps = settings.schedule_shape(-(-len(train_rows) // settings.batch_size))
    train = Batches(bank, targets, train_rows, spec.channels, settings.batch_size // passes, steps * passes,
                    settings.augment, settings.seed, training=True, workers=settings.workers)
    total_steps = epochs * steps
    momentum = batch_norm_momentum(epochs * len(train))  # BatchNorm updates once per forward pass
    set_batch_norm_momentum(model, momentum)
    models.compile_classifier(model, spec.loss, learning_rate(settings, total_steps), settings.run_eagerly,
                              settings.jit_compile, accumulation=passes)
    forward = settings.batch_size // passes  # what memory holds at once, for validation too
    # The original's schedule, made for epochs that are whole passes over the data; with a few fixed steps
    # per "epoch" (the demo profile) its patience of 3 would cut the rate after a few dozen steps.
    plateau = bool(len(validation_rows)) and settings.schedule == "plateau" and settings.steps_per_epoch is None
    callbacks = [EpochReport(bank, targets, validation_rows, spec.channels, forward, epochs, progress,
                             validation_epochs(epochs, every_epoch=plateau))]
    if plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=3, min_lr=1e-6, mode="min"))
    log(f"training {spec.name}: {len(train_rows)} samples ({len(validation_rows)} held out for validation), "
        f"{epochs} epoch(s) x {steps} step(s) of {settings.batch_size}"
        + (f" ({passes} passes of {settings.batch_size // passes})" if passes > 1 else "")
        + (f", capped at {settings.max_steps} step(s): not the profile's model" if settings.max_steps else ""))
    started = time.monotonic()
    history = model.fit(train, epochs=epochs, callbacks=callbacks, verbose=settings.verbose)
    recalibrated = 0
    if settings.recalibration_batches and set(settings.augment) & set(MIXING_AUGMENTATIONS):
        samples = settings.recalibration_batches * max(settings.batch_size, RECALIBRATION_BATCH)
        # as many samples, in passes no larger than training's (a B7 pass of 64 tiles of 256 px took 20 GiB)
        size = forward if passes > 1 else max(settings.batch_size, RECALIBRATION_BATCH)
        sample = np.random.default_rng([settings.seed, 2]).permutation(train_rows)
        clean = Batches(bank, targets, sample[:samples], spec.channels, size, training=False)
        recalibrated = recalibrate_batch_norm(model, clean, samples // size)
    seconds = time.monotonic() - started
    values = {key: [float(value) for value in series] for key, series in history.history.items()}
    return {"history": values, "train_samples": int(len(train_rows)), "validation_samples": int(len(validation_rows)),
            "steps_per_epoch": steps, "forward_passes_per_step": passes, "max_steps": settings.max_steps,
            "batch_norm_momentum": momentum,
            "batch_norm_recalibration_batches": recalibrated, "seconds": round(seconds, 2)}


def fit_classifier(spec, settings: TrainSettings, bank: data.ArrayBank, targets: np.ndarray, groups,
                   rows: np.ndarray | None = None, weights: str | None = None, source: str = "efficientnet",
                   log=print, progress=None):
    """Build zoo entry ``spec`` from seeded random (or ``weights``) and train it: ``(model, history, result)``,
    the history one row per epoch (``epoch`` first), the result the counts and seconds."""
    import pandas as pd

    keras.utils.set_random_seed(settings.seed)
    model = models.build_classifier(spec, weights=weights, source=source)
    result = train_classifier(model, spec, bank, targets, groups, settings, rows=rows, log=log, progress=progress)
    history = pd.DataFrame(result.pop("history"))
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    if "val_auc_classes" in history:  # empty in the epochs without a validation pass
        history["val_auc_classes"] = history["val_auc_classes"].astype("Int64")
    return model, history, result


CHANCE_AUC = 0.55  # a validation macro ROC-AUC at or below this is reported as chance level


def final_values(history) -> dict:
    """The history's last row as plain JSON values (an int stays an int, NaN becomes None)."""
    values = {column: history[column].iloc[-1].item() for column in history.columns}
    return {key: None if isinstance(value, float) and value != value else value for key, value in values.items()}


def quality_warning(name: str, final: dict, validation_samples: int) -> str | None:
    """What a user should hear when the validation set cannot tell the model from a coin, or cannot judge it."""
    if validation_samples == 0:
        return f"model {name}: no validation samples, its quality is unmeasured"
    if not final.get("val_auc_classes"):
        return (f"model {name}: no class has both positives and negatives among the {validation_samples} validation "
                f"samples, so its validation macro ROC-AUC is undefined (more training images needed)")
    if final["val_macro_auc"] <= CHANCE_AUC:
        return (f"model {name}: validation macro ROC-AUC {final['val_macro_auc']:.2f} over {final['val_auc_classes']} "
                f"class(es) is at chance level (<= {CHANCE_AUC})")
    return None

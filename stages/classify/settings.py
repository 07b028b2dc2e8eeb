"""Training settings as a plain frozen dataclass: fingerprints read them while the graph is built, so this
module must not import Keras (that alone takes seconds)."""

from __future__ import annotations

import dataclasses
import zlib

from stages.zoo import AUGMENTATIONS, LR_SCHEDULES

WARMUP_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a training run besides the zoo entry (the ``content`` part is fingerprinted)."""

    epochs: int
    batch_size: int
    steps_per_epoch: int | None
    validation_fraction: float
    learning_rate: float
    augment: tuple[str, ...]
    seed: int = 0
    # plateau: the original's (ReduceLROnPlateau on the validation loss, for epochs that are whole passes);
    # cosine: a linear warm-up over the first WARMUP_FRACTION of the steps, then cosine decay to zero (short runs)
    schedule: str = "plateau"
    recalibration_batches: int = 10  # clean batches re-estimating BatchNorm statistics after mixing augmentations
    # operational: speed and memory, never the result's meaning (but max_steps, for smoke runs: see below)
    run_eagerly: bool = False
    jit_compile: bool = False
    workers: int = 1
    verbose: int = 0
    # Samples per forward pass when memory cannot hold a batch (a B7 at 600 px on a CPU): the optimiser then
    # accumulates batch_size / micro_batch passes into one step, the same update up to BatchNorm statistics.
    micro_batch: int = 0
    # A cap on optimiser steps (0: none), to try a profile at full size on a small machine in minutes. The
    # model it makes is not the profile's: training.json records the cap and the report says so.
    max_steps: int = 0

    def __post_init__(self):
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; known: {LR_SCHEDULES}")
        # a bare string would pass as a sequence of one-letter names
        if isinstance(self.augment, str) or set(self.augment) - set(AUGMENTATIONS):
            raise ValueError(f"augment {self.augment!r} is not a list of items from {AUGMENTATIONS}")
        if self.micro_batch and (self.micro_batch < 0 or self.batch_size % self.micro_batch):
            raise ValueError(f"micro_batch {self.micro_batch} must divide the batch size {self.batch_size}")

    @property
    def accumulation(self) -> int:
        """Forward passes per optimiser step."""
        return self.batch_size // self.micro_batch if 0 < self.micro_batch < self.batch_size else 1

    def schedule_shape(self, steps_per_pass: int) -> tuple[int, int]:
        """``(epochs, optimiser steps per epoch)`` to run, ``steps_per_pass`` being one pass over the data:
        the zoo's, or within ``max_steps`` in all (as many epochs of one step as the cap allows, at most the
        zoo's epochs, then the steps spread over them)."""
        steps = self.steps_per_epoch or steps_per_pass
        if not self.max_steps or self.epochs * steps <= self.max_steps:
            return self.epochs, steps
        epochs = min(self.epochs, self.max_steps)
        return epochs, max(1, self.max_steps // epochs)

    def content(self) -> dict:
        operational = {"run_eagerly", "jit_compile", "workers", "verbose", "micro_batch", "max_steps"}
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in operational}


def model_seed(base_seed: int, model_name: str) -> int:
    """A model's own seed, derived from the run's seed and its name: two zoo entries with the same settings
    and data (as in the demo profile) still start from different weights and see different batches, as the
    ensemble's members did. Stable across processes (unlike ``hash``)."""
    return zlib.crc32(f"{base_seed}:{model_name}".encode()) % (2 ** 31)

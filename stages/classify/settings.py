"""Training settings as a plain frozen dataclass: fingerprints read them while the graph is built, so this
module must not import Keras (that alone takes seconds)."""

from __future__ import annotations

import dataclasses


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
    recalibration_batches: int = 10  # clean batches re-estimating BatchNorm statistics after mixing augmentations
    # operational: speed only, never the result's meaning
    run_eagerly: bool = False
    jit_compile: bool = False
    workers: int = 1
    verbose: int = 0

    def content(self) -> dict:
        operational = {"run_eagerly", "jit_compile", "workers", "verbose"}
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in operational}

"""A Keras-on-JAX image runs the classify stage's prediction path on the CPU, with no network: the demo
profile's first cell model built from the keras_applications backbone source (the one JAX can build), then
``stages.classify.predict.predict_probabilities`` on uint8 tiles, as the PredictCells task calls it.
No TPU or GPU is here: jax reports the devices it found (CPU) and its runtime plugin must still import.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from engine import DOCKER

SCRIPT = """
import importlib, time
import jax, keras, numpy as np
from stages.classify.models import build_classifier
from stages.classify.predict import predict_probabilities
from stages.zoo import get_profile
importlib.import_module({runtime!r})
assert keras.backend.backend() == "jax", keras.backend.backend()
spec = get_profile("demo").role("cell")[0]
model = build_classifier(spec, source="keras_applications")
tiles = np.random.default_rng(0).integers(0, 256, (10, spec.input_size, spec.input_size, 3), dtype=np.uint8)
started = time.monotonic()
scores = predict_probabilities(model, tiles, spec.channels, batch_size=4)
assert scores.shape == (10, 19) and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
print(f"jax {{jax.__version__}} on {{[d.platform for d in jax.devices()]}}, {runtime} imported: {{spec.name}} "
      f"({{spec.backbone}}, {{spec.input_size}} px) predicted {{scores.shape}} in {{time.monotonic() - started:.1f}} s")
"""
RUNTIME = {"cuda": "jax_plugins.xla_cuda13", "tpu": "libtpu"}


def predict_in(image: str, log_dir: Path) -> str:
    accelerator = image.split(":")[0].rsplit("-", 1)[-1]
    command = [DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "python3", image,
               "-c", SCRIPT.format(runtime=RUNTIME[accelerator])]
    log_path = log_dir / f"jax-{accelerator}.log"
    with open(log_path, "w") as log:
        done = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=log)
    if done.returncode != 0:
        raise RuntimeError(f"{image}: the prediction failed ({done.returncode}), see {log_path}")
    return f"{image}: {done.stdout.strip()}"

"""GPU timing (not a test): the project's classifier prediction code on JAX beside the bare jit-compiled model.

    KERAS_BACKEND=jax python3 bench/classify_gpu.py            # one GPU, about 2-3 minutes, one call

The hpa2021 zoo's image model (EfficientNetB7, 600 px, green) is built by the project's own code
(``stages.classify.models.build_classifier``, backbone source ``keras_applications``, random weights: the
timing does not depend on them) and fed the same uint8 images two ways:

- ``project``: ``stages.classify.predict.predict_probabilities`` from host numpy arrays (what the
  prediction tasks run: uint8 batches, fixed batch shape, results back on the host);
- ``bare``: the same model's ``stateless_call`` under ``jax.jit`` on batches already on the device, results
  left there (the ceiling: no host transfer, no Python between steps).

Each is compiled and warmed up first; then rounds alternate and the best round of each counts. Prints one
JSON document: images per second of both, the ratio project / bare, the device and versions.

The GPU machines hold JAX (and numpy, pandas, scipy, pyyaml, h5py, ml-dtypes, rich, absl-py) but not Keras:
carry ``keras==3.15.1``, ``namex`` and ``optree`` as cp312 manylinux wheels. Once, here::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 namex optree

and on the GPU (carry ``.whl``)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
    PYTHONPATH=/tmp/site KERAS_BACKEND=jax python3 bench/classify_gpu.py

The ``stages`` package's
``__init__`` imports Luigi (absent there), so this script maps the package path without running it; only
the classify modules (numpy, pandas, scipy, pyyaml) are imported. ``--smoke`` runs a tiny B0 on any
backend (TensorFlow: ``tf.function`` instead of ``jax.jit``) to check the script on a laptop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def import_classify():
    """The classify modules without running ``stages/__init__`` (it registers Luigi tasks)."""
    if "stages" not in sys.modules:
        package = types.ModuleType("stages")
        package.__path__ = [str(REPO / "stages")]
        sys.modules["stages"] = package
    from stages.classify import models, predict
    from stages.zoo import get_profile

    return models, predict, get_profile


def bare_runner(model, batches):
    """A function running the model on device-resident batches with no host round trip, and a sync."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        @jax.jit
        def step(trainable, non_trainable, x):
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return outputs

        on_device = [jax.device_put(batch) for batch in batches]

        def run():
            # The weights are looked up at every run, never held: Keras's JAX predict() donates the arrays it
            # is given and puts new ones into the variables, so arrays taken before a project round are
            # deleted by it ("Array has been deleted") when rounds alternate.
            trainable = [variable.value for variable in model.trainable_variables]
            non_trainable = [variable.value for variable in model.non_trainable_variables]
            outputs = [step(trainable, non_trainable, x) for x in on_device]
            jax.block_until_ready(outputs)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda x: model(x, training=False), jit_compile=False)
        on_device = [tf.constant(batch) for batch in batches]

        def run():
            outputs = [step(x) for x in on_device]
            _ = [output.numpy() for output in outputs[-1:]]

        return run
    raise SystemExit(f"no bare runner for the {backend} backend")


def best_of(rounds: int, function) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="image.b7_600_noext", help="zoo image model (hpa2021 profile)")
    parser.add_argument("--images", type=int, default=1024, help="images per round")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny B0 at 64 px, 64 images (any backend, CPU)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    models, predict, get_profile = import_classify()
    import keras

    spec = get_profile("hpa2021").model(args.model)
    if args.smoke:
        spec = dataclasses.replace(spec, backbone="EfficientNetB0", input_size=64)
        args.images, args.batch, args.rounds = 64, 16, 2
    model = models.build_classifier(spec, source="keras_applications")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, spec.input_size, spec.input_size), dtype=np.uint8)
    batches = [images[start:start + args.batch, ..., None] for start in range(0, args.images, args.batch)]
    batches = [batch for batch in batches if len(batch) == args.batch]  # the bare runner gets full batches only
    timed = len(batches) * args.batch

    def project():
        predict.predict_probabilities(model, images[:timed], spec.channels, batch_size=args.batch)

    bare = bare_runner(model, batches)
    clock = time.perf_counter()
    predict.predict_probabilities(model, images[:args.batch], spec.channels, batch_size=args.batch)  # compile
    bare()  # compile
    compile_seconds = time.perf_counter() - clock
    project_seconds, bare_seconds = float("inf"), float("inf")
    for _ in range(args.rounds):  # alternate, keep the best of each: other load only ever adds time
        project_seconds = min(project_seconds, best_of(1, project))
        bare_seconds = min(bare_seconds, best_of(1, bare))
    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = str(jax.devices()[0].device_kind)
    result = {
        "model": spec.name, "backbone": spec.backbone, "input_size": spec.input_size, "channels": spec.channels,
        "backbone_source": "keras_applications", "keras_backend": keras.backend.backend(), "device": device,
        "images": timed, "batch": args.batch, "rounds": args.rounds,
        "project_images_per_s": round(timed / project_seconds, 1),
        "bare_jit_images_per_s": round(timed / bare_seconds, 1),
        "ratio_project_over_bare": round(bare_seconds / project_seconds, 3),
        "compile_and_warmup_s": round(compile_seconds, 1), "total_s": round(time.perf_counter() - started, 1),
        "keras": keras.__version__, "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

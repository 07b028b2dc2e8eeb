"""GPU timing (not a test): the whole ensemble's GPU stages for one batch of images, through the project's
prediction code, beside the bare models, in one run. Prints GPU-seconds per image.

    KERAS_BACKEND=jax python3 bench/ensemble_gpu.py                 # one GPU: one call, about 3-4 minutes
    .venv/bin/python bench/ensemble_gpu.py --allow-cpu --tiny       # the same code path on a CPU, < 1 minute

One batch is a shard: ``--images`` fields of view (default 32) of ``--cells`` cells each (default 25). Every
model use of the ``hpa2021`` profile whose fusion source has a weight is timed on the inputs its stage
predicts for that batch (random uint8 of the stage's shapes; random weights: the time depends on neither):

- ``cell``: the 5 cell models on every cell's 256-px RGB tile (the green model takes channel 1);
- ``image``: the 3 image models on the whole green image at 600, 600 and 720 px;
- ``image_on_cell``: image model #2 (600 px) on every cell's image-on-cell input;
- ``detector``: YOLO (yolov5su) at 512 px on the 2048-px green channels.

"project" is the code the prediction tasks run: ``stages.classify.predict.predict_probabilities`` from host
arrays (batch ``--batch``, the ``[classify] predict_batch_size`` setting), and for YOLO
``stages.detect.yolo.detect_greens`` (host resize to 512, ``model.predict`` at conf 0.001 / NMS IoU 0.5 /
300 boxes, box table). "bare" is, for a classifier, the model's ``stateless_call`` under ``jax.jit`` on
batches already on the device (``bench.classify_gpu.bare_runner``), and for YOLO ``model.predict`` with the
same settings on images already resized. The detector's class biases are set to 0, so every anchor passes
conf 0.001 and NMS sees the most boxes it can: an upper bound of the post-processing (random weights at
Ultralytics' initial bias would pass almost none; the box counts are printed).

Models of the same backbone, input size and channel set are built once (e.g. both B0 cell models); uses
with the same inputs share one timing (``timed_with``). For each model the project rounds run first, then
the bare ones (the bare runner reads the weights at every run: Keras's JAX predict donates them). Compilation and warm-up are untimed and reported apart.
Heavy models go first; a model whose turn comes after ``--budget-s`` (180 s) is skipped (listed in
``skipped``, ``complete: false``; time it in a second call with ``--sources``), so a call always ends with
what it measured. Not timed: hpacellseg segmentation.

The GPU machines hold JAX, torch, numpy, pandas, scipy, OpenCV and PyYAML, but not Keras, Ultralytics or
Luigi: carry cp312 manylinux wheels of ``keras==3.15.1 namex==0.1.0 optree==0.20.0
ultralytics-opencv-headless==8.4.190`` (see the device tool's README; install with ``--no-deps``: the rest
is there or, like polars, not needed to predict) and put them on PYTHONPATH. Like ``bench/classify_gpu.py``, the script maps the
``stages`` package without running its ``__init__`` (which imports Luigi). Exit status 2, with a message,
where the Keras backend (or torch, for YOLO) sees no GPU, unless ``--allow-cpu --tiny``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SOURCES = ("image_on_cell", "image", "cell", "detector")  # the fused sources, in the order of the rows


@dataclasses.dataclass(frozen=True)
class Use:
    source: str
    name: str  # unique: the zoo name, "(image-on-cell)" added for image model #2's second use
    spec: object  # stages.zoo.ModelSpec
    inputs: tuple  # key of the input arrays: (kind, size)
    per_image: int  # inputs per field of view


def ensemble_uses(profile, cells: int, sources, tiny: bool) -> list[Use]:
    """Every model use of the profile's fused sources (``tiny``: B0s at 1/8 of the sizes, yolov5nu at 64 px)."""
    def small(spec):
        if not tiny:
            return spec
        if spec.role == "detector":
            return dataclasses.replace(spec, architecture="yolov5nu.yaml", input_size=64)
        return dataclasses.replace(spec, backbone="EfficientNetB0", input_size=spec.input_size // 8)

    uses = []
    for source in SOURCES:
        if source not in sources or source not in profile.fusion.sources:
            continue
        if source == "image_on_cell":
            spec = small(profile.image_on_cell)
            uses.append(Use(source, f"{spec.name} (image-on-cell)", spec, ("on_cell", spec.input_size), cells))
        elif source == "detector":
            spec = small(profile.detector)
            uses.append(Use(source, spec.name, spec, ("green", 0), 1))
        else:
            for spec in map(small, profile.role(source)):
                kind = ("tiles", spec.input_size) if source == "cell" else ("whole", spec.input_size)
                uses.append(Use(source, spec.name, spec, kind, cells if source == "cell" else 1))
    return uses


def make_inputs(key, images: int, cells: int, field: int, rng) -> np.ndarray | list:
    kind, size = key
    if kind == "green":
        return [rng.integers(0, 256, (field, field), dtype=np.uint8) for _ in range(images)]
    count = images * cells if kind in ("tiles", "on_cell") else images
    shape = (count, size, size, 3) if kind == "tiles" else (count, size, size)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def time_classifier(model, uses: list[Use], inputs: dict, batch: int, rounds: int) -> dict:
    """Seconds per input of every use of one model, project and bare, and the untimed compile seconds."""
    from bench.classify_gpu import bare_runner, best_of
    from stages.classify import data, predict

    channels = uses[0].spec.channels
    out, project, compile_s = {}, {}, 0.0
    for use in uses:  # all project rounds first, then the bare ones
        images = inputs[use.inputs]
        if use.inputs not in project:
            def run(images=images):
                predict.predict_probabilities(model, images, channels, batch)
            compile_s += best_of(1, lambda first=images[:batch]: run(first))  # one batch: compiles the step
            best = best_of(rounds, run)
            project[use.inputs] = (best / len(images), use.name)
        per_input, first_use = project[use.inputs]
        out[use.name] = {"project_s_per_input": per_input, "timed_with": None if first_use == use.name else first_use}
    bare = {}
    for use in sorted(uses, key=lambda u: -len(inputs[u.inputs])):  # one bare runner per batch shape
        images = inputs[use.inputs]
        size = max(1, min(batch, len(images)))  # the batch predict_probabilities runs for this many inputs
        if size not in bare:
            full = max(1, len(images) // size)
            batches = [np.ascontiguousarray(data.model_input(images[i * size:(i + 1) * size], channels))
                       for i in range(full)]
            run = bare_runner(model, batches)
            first = best_of(1, run)  # compiles
            best = best_of(rounds, run)
            bare[size] = best / (full * size)
            compile_s += max(0.0, first - best)
        out[use.name].update(bare_s_per_input=bare[size], batch=size)
    return {"uses": out, "compile_s": compile_s}


def time_detector(use: Use, greens: list, batch: int, rounds: int, cuda: bool) -> dict:
    """The Detect stage's prediction (``detect_greens``) beside bare ``model.predict`` on resized images."""
    import torch

    from bench.classify_gpu import best_of
    from stages.detect import core, yolo

    spec, device = use.spec, ("0" if cuda else "cpu")
    model = yolo.build_model(spec.architecture)
    head = model.model.model[-1]
    for branch in head.cv3:  # class logits around 0: every anchor passes conf 0.001 (NMS upper bound)
        branch[-1].bias.data[:head.nc] = 0.0
    ids = [f"bench_{index:05d}" for index in range(len(greens))]
    resized = [core.detector_image(green, spec.input_size) for green in greens]
    settings = {"imgsz": spec.input_size, "conf": core.CONFIDENCE_THRESHOLD, "iou": core.NMS_IOU,
                "max_det": core.MAX_DETECTIONS, "device": device, "verbose": False, "save": False, "stream": False}
    boxes = {}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def project():
        boxes["project"] = len(yolo.detect_greens(model, greens, ids, spec.input_size, device, batch))
        sync()

    def bare():
        boxes["bare"] = sum(len(result.boxes) for start in range(0, len(resized), batch)
                            for result in model.predict(source=resized[start:start + batch], **settings))
        sync()

    first = best_of(1, project) + best_of(1, bare)  # warm-up: CUDA context, cuDNN, fusing the model
    project_s = bare_s = float("inf")
    for _ in range(rounds):  # alternate, keep the best of each
        project_s, bare_s = min(project_s, best_of(1, project)), min(bare_s, best_of(1, bare))
    count = len(greens)
    return {"uses": {use.name: {"project_s_per_input": project_s / count, "bare_s_per_input": bare_s / count,
                                "batch": batch, "timed_with": None,
                                "boxes_per_image": round(boxes["project"] / count, 1),
                                "boxes_per_image_bare": round(boxes["bare"] / count, 1)}},
            "compile_s": max(0.0, first - project_s - bare_s)}


def accelerators(backend: str, need_torch: bool) -> dict:
    found = {"keras_backend": backend, "keras_device": "cpu", "torch_device": None}
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        found["keras_device"] = device.device_kind if device.platform == "gpu" else "cpu"
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        found["keras_device"] = gpus[0].name if gpus else "cpu"
    if need_torch:
        import torch

        found["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return found


def report(rows: list[dict]) -> dict:
    """GPU-seconds per image: each source and the ensemble, project and bare, with the ratio."""
    def totals(selected):
        project = sum(row["project_s_per_image"] for row in selected)
        bare = sum(row["bare_s_per_image"] for row in selected)
        return {"project_s_per_image": round(project, 5), "bare_s_per_image": round(bare, 5),
                "project_over_bare": round(project / bare, 3) if bare else None}

    by_source = {source: totals([r for r in rows if r["source"] == source])
                 for source in SOURCES if any(r["source"] == source for r in rows)}
    return {"by_source": by_source, "ensemble": totals(rows)}


def table(rows: list[dict], summary: dict, whole: bool) -> str:
    def ratio(value):
        return "-" if value is None else f"{value:.2f}"

    lines = ["| model use | source | model | inputs/image | batch | project s/image | bare s/image | project/bare |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['source']} | {row['model']} | {row['inputs_per_image']} | "
                     f"{row['batch']} | {row['project_s_per_image']:.4f} | {row['bare_s_per_image']:.4f} | "
                     f"{ratio(row['project_over_bare'])} |")
    last = "ensemble" if whole else "sum of the uses timed (NOT the whole ensemble)"
    for name, total in [*summary["by_source"].items(), (last, summary["ensemble"])]:
        lines.append(f"| **{name}** | | | | | {total['project_s_per_image']:.4f} | "
                     f"{total['bare_s_per_image']:.4f} | {ratio(total['project_over_bare'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, help="fields of view in the batch (default 32; tiny 2)")
    parser.add_argument("--cells", type=int, help="cells per field of view (default 25; tiny 3)")
    parser.add_argument("--batch", type=int, help="classifier prediction batch (default 32; tiny 4)")
    parser.add_argument("--detector-batch", type=int, help="YOLO images per predict call (default 16; tiny 2)")
    parser.add_argument("--rounds", type=int, help="timed rounds, best kept (default 2; tiny 1)")
    parser.add_argument("--sources", default=",".join(SOURCES), help="comma-separated subset of " + ",".join(SOURCES))
    parser.add_argument("--budget-s", type=float, default=180.0, help="start no further model after this")
    parser.add_argument("--profile", default="hpa2021")
    parser.add_argument("--tiny", action="store_true", help="B0s at 1/8 of the sizes, yolov5nu at 64 px, 2 images")
    parser.add_argument("--allow-cpu", action="store_true", help="with --tiny: run without a GPU (a code-path check)")
    parser.add_argument("--json", help="also write the result document to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.allow_cpu and not args.tiny:
        parser.error("--allow-cpu goes only with --tiny: the full sizes would take hours on a CPU")
    tiny = {"images": 2, "cells": 3, "batch": 4, "detector_batch": 2, "rounds": 1, "field": 128}
    full = {"images": 32, "cells": 25, "batch": 32, "detector_batch": 16, "rounds": 2, "field": 2048}
    for key, value in (tiny if args.tiny else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    sources = [source.strip() for source in args.sources.split(",") if source.strip()]
    unknown = set(sources) - set(SOURCES)
    if unknown:
        parser.error(f"unknown source(s) {sorted(unknown)}; known: {SOURCES}")
    os.environ.setdefault("KERAS_BACKEND", "jax" if importlib.util.find_spec("jax") else "tensorflow")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share the GPU
    from bench.classify_gpu import import_classify

    models, _, get_profile = import_classify()
    import keras

    profile = get_profile(args.profile)
    uses = ensemble_uses(profile, args.cells, sources, args.tiny)
    found = accelerators(keras.backend.backend(), any(use.source == "detector" for use in uses))
    no_gpu = [f"{what} sees no GPU" for what, device in ((f"Keras (backend {found['keras_backend']})",
                                                          found["keras_device"]), ("torch", found["torch_device"]))
              if device == "cpu"]  # torch_device is None where YOLO is not timed
    if no_gpu and not (args.allow_cpu and args.tiny):
        print(f"ensemble_gpu: refusing to run: {'; '.join(no_gpu)}. This script times the GPU stages; run it on a "
              "GPU machine, or pass --allow-cpu --tiny to check the code path on a CPU.", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    inputs = {key: make_inputs(key, args.images, args.cells, args.field, rng) for key in {use.inputs for use in uses}}
    by_model: dict[tuple, list[Use]] = {}
    for use in uses:
        key = ("detector",) if use.source == "detector" else (use.spec.backbone, use.spec.input_size, use.spec.channels)
        by_model.setdefault(key, []).append(use)

    def weight(item):  # heaviest first: the budget, if it bites, leaves out the lightest models
        key, group = item
        return 0 if key == ("detector",) else -sum(use.per_image * use.spec.input_size ** 2 for use in group) * (
            8 if key[0] == "EfficientNetB7" else 1)

    measured, skipped, compile_s = {}, [], {}
    for key, group in sorted(by_model.items(), key=weight):
        elapsed = time.perf_counter() - started
        if elapsed > args.budget_s:
            skipped += [use.name for use in group]
            continue
        print(f"[{elapsed:6.1f} s] timing {' '.join(map(str, key))}: {', '.join(use.name for use in group)}",
              file=sys.stderr, flush=True)
        if key == ("detector",):
            result = time_detector(group[0], inputs[group[0].inputs], args.detector_batch, args.rounds,
                                   found["torch_device"] not in (None, "cpu"))
        else:
            model = models.build_classifier(group[0].spec, source="keras_applications")
            result = time_classifier(model, group, inputs, args.batch, args.rounds)
            del model
        measured.update(result["uses"])
        compile_s[" ".join(map(str, key))] = round(result["compile_s"], 1)
        print(f"[{time.perf_counter() - started:6.1f} s] done, seconds per input: " + json.dumps(
            {name: [round(m["project_s_per_input"], 5), round(m["bare_s_per_input"], 5)]
             for name, m in result["uses"].items()}), file=sys.stderr, flush=True)  # kept if the call is cut off
    rows = []
    for use in uses:
        if use.name not in measured:
            continue
        m = measured[use.name]
        project, bare = m["project_s_per_input"] * use.per_image, m["bare_s_per_input"] * use.per_image
        spec = use.spec
        rows.append({"name": use.name, "source": use.source,
                     "model": spec.architecture if use.source == "detector" else
                     f"{spec.backbone} {spec.input_size}px {spec.channels}",
                     "inputs_per_image": use.per_image, "batch": m["batch"],
                     "project_s_per_image": round(project, 5), "bare_s_per_image": round(bare, 5),
                     "project_over_bare": round(project / bare, 3) if bare else None,
                     **{k: v for k, v in m.items() if k.startswith("boxes") or (k == "timed_with" and v)}})
    summary = report(rows)
    whole = not skipped and set(sources) >= set(profile.fusion.sources)
    document = {
        "profile": args.profile, "tiny": args.tiny, "images": args.images, "cells_per_image": args.cells,
        "batch": args.batch, "detector_batch": args.detector_batch, "rounds": args.rounds, **found,
        "sources": sources, "complete": whole, "skipped": skipped, "uses": rows, **summary,
        "compile_and_warmup_s": compile_s, "total_s": round(time.perf_counter() - started, 1),
        "keras": keras.__version__, "python": platform.python_version(),
    }
    print(f"## GPU-seconds per image: {found['keras_device']} (Keras {found['keras_backend']}), torch "
          f"{found['torch_device']}; {args.images} images x {args.cells} cells, batch {args.batch}, "
          f"YOLO batch {args.detector_batch}, best of {args.rounds}")
    print(table(rows, summary, whole))
    if skipped:
        print(f"INCOMPLETE: over --budget-s {args.budget_s:.0f}, skipped {', '.join(skipped)}; time them in a second "
              "call with --sources (the ensemble rows above leave them out)")
    print(json.dumps(document, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

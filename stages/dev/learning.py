"""Is the learning real? Train a zoo cell model and image model on synthetic images, score held-out images.

    python -m stages.dev.learning                          # demo models, 256 training + 96 held-out images
    python -m stages.dev.learning --roles cell --augment cutmix,mixup --train-images 48

The synthetic generator (stages.dev.synth) knows every cell's classes, which the real data never tells. Cells
are cut out with their true masks (the tile stage's own functions), so this measures the classifiers
alone, not the segmentation. The cell model learns from weak labels (each tile inherits its image's
labels, as in the pipeline) and is scored per class by ROC-AUC of its tile probabilities against the
cells' true classes; the image model is scored per class against the held-out images' labels. The figure
is the mean over the classes that occur (with positives and negatives) among the held-out cells / images.

Measured on 2 shared CPU cores (seed 0; randomly initialised B0s, 800 steps of 16, the demo profile's
cosine schedule peaking at 3e-3; 256 training images, 96 held out; `python bench/classify_learning.py`):

- cell model (green x3, 64-px tiles, flips + quarter turns): 0.849 on the 991 cells of the held-out images
  (19 classes), 5.5 min. The same with the original's cutmix + mixup: 0.741 (why the demo profile uses
  flips and turns). Fewer images or smaller inputs learn less: 0.743 with 48 training images (32 held
  out); with the earlier constant rate of 2e-3, 0.772 (128 images) and 0.59-0.60 on 32-px tiles.
- image model (green x3, 128-px whole images, flips + quarter turns, focal loss): 0.818 on 96 held-out
  images (19 classes), 7 min; at 64 px (a synthetic cell's pattern then a few pixels wide) 0.58-0.70.
- with ``--seed 1`` (other images, weights, batches): cell 0.840, image 0.853.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from stages.classify import data

DEFAULT_CELL_MODEL = "cell.b7_ext_green_e1"  # B0 on green x3 in the demo profile
DEFAULT_EPOCHS = 40
DEFAULT_IMAGE_MODEL = "image.b7_600_noext"
DEFAULT_BATCH = 16  # the batch the figures above were measured with


@dataclasses.dataclass
class SyntheticSet:
    tiles: np.ndarray  # (cells, S, S, 3) uint8 RGB
    tile_image: np.ndarray  # (cells,) image ID of each tile
    cell_truth: np.ndarray  # (cells, 19) the cell's true classes
    weak: np.ndarray  # (cells, 19) its image's classes
    images: np.ndarray  # (images, I, I) uint8 green
    image_ids: np.ndarray
    image_truth: np.ndarray  # (images, 19)


def synthetic_set(split: str, count: int, seed: int, size: int, tile_size: int, image_size: int) -> SyntheticSet:
    """``count`` synthetic fields of view as the classifiers see them: tiles cut with the true cell masks,
    and the whole green images (the same image stream as ``python -m stages.dev.synth``)."""
    from stages.dev.synth import core as synth
    from stages.tile.core import cell_tiles, square_pad_resize
    from stages.classes import CHANNELS

    tiles, tile_image, cell_truth, weak, images, ids, image_truth = [], [], [], [], [], [], []
    for index in range(count):
        rng = synth.image_rng(seed, split, index)
        classes = synth.draw_image_classes(rng, synth.scheduled_class(seed, split, index))
        image = synth.generate_image(rng, size, size, image_classes=classes)
        image_id = synth.image_id(seed, split, index)
        field = np.stack([image.channels[channel] for channel in CHANNELS], axis=-1)
        cell_ids = list(range(1, len(image.cell_classes) + 1))
        tiles.append(cell_tiles(field, image.cell_labels, cell_ids, tile_size))
        tile_image.extend([image_id] * len(cell_ids))
        cell_truth.append(data.label_matrix(image.cell_classes))
        weak.append(np.repeat(data.label_matrix([image.image_classes]), len(cell_ids), axis=0))
        images.append(square_pad_resize(image.channels["green"], image_size))
        ids.append(image_id)
        image_truth.append(data.label_matrix([image.image_classes])[0])
    return SyntheticSet(np.concatenate(tiles), np.array(tile_image), np.concatenate(cell_truth),
                        np.concatenate(weak), np.stack(images), np.array(ids), np.stack(image_truth))


def mean_auc(truth: np.ndarray, scores: np.ndarray) -> tuple[float, dict[int, float]]:
    per_class = data.per_class_auc(truth, scores)
    return (float(np.mean(list(per_class.values()))) if per_class else float("nan")), per_class


def run_check(profile_name: str = "demo", train_images: int = 256, test_images: int = 96, image_px: int = 512,
              seed: int = 0, cell_model: str = DEFAULT_CELL_MODEL, image_model: str = DEFAULT_IMAGE_MODEL,
              learning_rate: float | None = None, epochs: int | None = DEFAULT_EPOCHS, tile_size: int | None = None,
              image_size: int | None = None, augment: tuple[str, ...] | None = None, schedule: str | None = None,
              roles: tuple[str, ...] = ("cell", "image"), batch_size: int = DEFAULT_BATCH, log=print) -> dict:
    """Train both models on ``train_images`` and score ``test_images`` held-out images; returns the figures
    (mean and per-class ROC-AUC, sample counts, seconds).

    The models are the profile's zoo entries (backbone, input size, channels, loss) with the profile's steps
    per epoch, validation fraction, learning rate and schedule, and batches of ``batch_size`` (16: the
    figures above; the demo profile now trains on 32). ``epochs`` (default 40, i.e. 800 steps in the demo
    profile) replaces the zoo's: the demo pipeline trains 20-80 steps per model for speed, far too few for a
    randomly initialised EfficientNet to learn 19 classes. ``tile_size``, ``image_size``,
    ``learning_rate``, ``schedule`` and ``augment`` replace the profile's / zoo's where given (``None``: theirs).
    """
    import keras

    from stages.classify import models
    from stages.classify.predict import predict_probabilities
    from stages.classify.settings import TrainSettings
    from stages.classify.train import train_classifier
    from stages.zoo import get_profile

    profile = get_profile(profile_name)
    learning_rate = learning_rate or profile.learning_rate
    cell_spec, image_spec = profile.model(cell_model), profile.model(image_model)
    tile_size = tile_size or profile.tile_size
    cell_spec = dataclasses.replace(cell_spec, input_size=tile_size)
    image_spec = dataclasses.replace(image_spec, input_size=image_size or image_spec.input_size)
    started = time.monotonic()
    train = synthetic_set("train", train_images, seed, image_px, tile_size, image_spec.input_size)
    test = synthetic_set("test", test_images, seed, image_px, tile_size, image_spec.input_size)
    log(f"synthetic data: {len(train.tiles)} training tiles of {train_images} images, {len(test.tiles)} held-out "
        f"tiles of {test_images} images ({time.monotonic() - started:.1f} s)")
    result = {"profile": profile_name, "train_images": train_images, "test_images": test_images,
              "image_px": image_px, "seed": seed, "learning_rate": learning_rate, "tile_size": tile_size}
    for role, spec, bank, targets, groups, inputs, truth in (
        ("cell", cell_spec, train.tiles, train.weak, train.tile_image, test.tiles, test.cell_truth),
        ("image", image_spec, train.images, train.image_truth, train.image_ids, test.images, test.image_truth),
    ):
        if role not in roles:
            continue
        settings = TrainSettings(epochs=epochs or spec.epochs, batch_size=batch_size,
                                 steps_per_epoch=profile.steps_per_epoch,
                                 validation_fraction=profile.validation_fraction, learning_rate=learning_rate,
                                 augment=spec.augment if augment is None else tuple(augment), seed=seed,
                                 schedule=schedule or profile.lr_schedule)
        keras.utils.set_random_seed(seed)
        model = models.build_classifier(spec, weights=None)
        clock = time.monotonic()
        record = train_classifier(model, spec, data.ArrayBank([bank]), targets, groups, settings, log=log)
        scores = predict_probabilities(model, inputs, spec.channels)
        mean, per_class = mean_auc(truth, scores)
        result[role] = {"model": spec.name, "backbone": spec.backbone, "input_size": spec.input_size,
                        "channels": spec.channels, "augment": list(settings.augment), "epochs": settings.epochs,
                        "steps": settings.epochs * record["steps_per_epoch"], "mean_auc": round(mean, 4),
                        "per_class_auc": {str(k): round(v, 4) for k, v in per_class.items()},
                        "classes_scored": len(per_class), "train_samples": record["train_samples"],
                        "held_out_samples": int(len(inputs)), "seconds": round(time.monotonic() - clock, 1)}
        log(f"{role} model {spec.name}: mean ROC-AUC {mean:.3f} over {len(per_class)} classes "
            f"({len(inputs)} held-out {'cells' if role == 'cell' else 'images'}), {time.monotonic() - clock:.0f} s")
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.dev.learning", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--train-images", type=int, default=256)
    parser.add_argument("--test-images", type=int, default=96)
    parser.add_argument("--size", type=int, default=512, help="synthetic image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell-model", default=DEFAULT_CELL_MODEL)
    parser.add_argument("--image-model", default=DEFAULT_IMAGE_MODEL)
    parser.add_argument("--learning-rate", type=float, default=0.0, help="0: the profile's")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs of the profile's steps; 0: the zoo's")
    parser.add_argument("--tile-size", type=int, default=0, help="cell tile side; 0: the profile's")
    parser.add_argument("--image-size", type=int, default=0, help="image model input side; 0: the zoo's")
    parser.add_argument("--augment", default="", help="comma-separated augmentations replacing the zoo's, e.g. flip,rotate90")
    parser.add_argument("--schedule", default="", help="learning-rate schedule plateau | cosine; default: the profile's")
    parser.add_argument("--roles", default="cell,image", help="which models to train: cell,image")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--threshold", type=float, default=0.80, help="fail (exit 1) below this mean ROC-AUC")
    args = parser.parse_args(argv)
    result = run_check(args.profile, args.train_images, args.test_images, args.size, args.seed, args.cell_model,
                       args.image_model, args.learning_rate or None, args.epochs or None, args.tile_size or None,
                       args.image_size or None,
                       tuple(args.augment.split(",")) if args.augment else None, args.schedule or None,
                       tuple(args.roles.split(",")), args.batch_size,
                       log=lambda message: print(message, flush=True))
    print(json.dumps(result, indent=2))
    roles = [role for role in ("cell", "image") if role in result]
    ok = all(result[role]["mean_auc"] >= args.threshold for role in roles)
    print(", ".join(f"{role} {result[role]['mean_auc']:.3f}" for role in roles)
          + f": {'PASS' if ok else 'FAIL'} (threshold {args.threshold})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

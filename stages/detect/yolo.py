"""Ultralytics YOLO, strictly offline (SPEC 5): the only module that imports ``ultralytics``.

Ultralytics decides at import time whether it is online (a DNS lookup unless ``YOLO_OFFLINE=true``;
the value "1" does nothing) and where its config dir is (``YOLO_CONFIG_DIR``), so :func:`prepare_offline`
must run before the first import; it then turns settings sync and every logger integration off and puts
a local TTF font where Ultralytics looks for ``Arial.ttf`` (it downloads one otherwise). Training passes
``amp=False`` (the AMP check downloads a model) and ``plots=False`` (see ``core.training_phases``); models
are built from an architecture YAML shipped inside the package, or loaded from a local checkpoint, so
nothing is ever fetched.

Paths in, paths out: the task moves artifacts between storage and local files.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import pandas as pd

from stages.detect import core
from stages.detect.core import TrainingPhase

log = logging.getLogger(__name__)

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")  # the names Ultralytics' check_font asks for
OFFLINE_SETTINGS = {
    "sync": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}


class OfflineSetupError(RuntimeError):
    """Something Ultralytics needs locally is missing; the message says what."""


def default_config_dir() -> Path:
    """``YOLO_CONFIG_DIR`` when set (the detect image sets one holding the font), else a per-user folder
    in the temp dir: never Ultralytics' own default in the home folder."""
    if os.environ.get("YOLO_CONFIG_DIR"):
        return Path(os.environ["YOLO_CONFIG_DIR"])
    return Path(tempfile.gettempdir()) / f"hpa-stages-ultralytics-{os.getuid()}"


def find_font() -> Path:
    """A TrueType font on this machine (matplotlib always ships DejaVuSans)."""
    candidates = []
    try:
        import matplotlib

        candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    except ImportError:  # pragma: no cover - matplotlib is an Ultralytics dependency
        pass
    candidates += [Path(path) for path in sorted(glob.glob("/usr/share/fonts/**/*.ttf", recursive=True))]
    for path in candidates:
        if path.is_file():
            return path
    raise OfflineSetupError(
        "no TrueType font found (looked for matplotlib's DejaVuSans.ttf and /usr/share/fonts/**/*.ttf): "
        "Ultralytics would try to download Arial.ttf"
    )


def _copy_if_missing(source: Path, target: Path) -> None:
    if target.is_file() and target.stat().st_size > 0:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)  # atomic: parallel workers sharing the dir never see half a font


def prepare_offline(config_dir: str | Path | None = None):
    """Set Ultralytics up to never touch the network, import it, and return the module.

    ``config_dir`` (default: :func:`default_config_dir`) becomes ``YOLO_CONFIG_DIR``; its
    ``Ultralytics/`` sub-folder receives the font and ``settings.json``.
    """
    config_dir = Path(config_dir or default_config_dir()).expanduser().resolve()
    user_dir = config_dir / "Ultralytics"
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_OFFLINE"] = "true"
        os.environ["YOLO_AUTOINSTALL"] = "false"
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        os.environ.pop("ULTRALYTICS_API_KEY", None)  # the platform callback would upload with a key
    font = find_font()
    for name in FONT_NAMES:
        _copy_if_missing(font, user_dir / name)

    import ultralytics
    import ultralytics.utils as uutils

    if Path(uutils.USER_CONFIG_DIR).resolve() != user_dir:
        # Imported earlier by someone else: we can still give it the font, not undo an online check.
        for name in FONT_NAMES:
            _copy_if_missing(font, Path(uutils.USER_CONFIG_DIR) / name)
        log.warning("ultralytics is already imported with config dir %s (not %s): using that one",
                    uutils.USER_CONFIG_DIR, user_dir)
    if uutils.ONLINE:
        log.warning("ultralytics was imported without YOLO_OFFLINE=true and believes it is online")
    wanted = {
        **OFFLINE_SETTINGS,
        "datasets_dir": str(config_dir / "datasets"),
        "weights_dir": str(config_dir / "weights"),
        "runs_dir": str(config_dir / "runs"),
    }
    if any(uutils.SETTINGS.get(key) != value for key, value in wanted.items()):
        uutils.SETTINGS.update(wanted)
    return ultralytics


def build_model(architecture: str, initial_weights: str | Path | None = None, config_dir=None):
    """A YOLO model from an architecture YAML (``yolov5nu.yaml``: random initialisation, no download),
    optionally initialised from a local checkpoint."""
    ultralytics = prepare_offline(config_dir)
    if not str(architecture).endswith((".yaml", ".yml")):
        raise ValueError(f"a detector architecture is a model YAML such as yolov5su.yaml, not {architecture!r}")
    model = ultralytics.YOLO(str(architecture), task="detect")
    if initial_weights:
        path = Path(initial_weights)
        if not path.is_file():
            raise FileNotFoundError(f"initial detector weights not found: {path} (nothing is downloaded)")
        model.load(str(path))
    return model


def load_model(weights: str | Path, config_dir=None):
    """A trained checkpoint (a local ``.pt`` file) for prediction."""
    ultralytics = prepare_offline(config_dir)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"detector weights not found: {path}")
    return ultralytics.YOLO(str(path), task="detect")


@dataclasses.dataclass
class TrainingResult:
    weights: Path  # the last phase's best weights
    phase_weights: dict[str, Path]
    metrics: list[dict]  # per phase: {"phase", "epochs", "metrics": {name: value}}
    results: dict[str, Path]  # per phase: Ultralytics' results.csv


def _as_floats(values: dict) -> dict:
    out = {}
    for key, value in (values or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


MAP50 = "metrics/mAP50(B)"
MAP50_95 = "metrics/mAP50-95(B)"


def epoch_line(epoch: int, epochs: int, phase: str, phase_epoch: int, phase_epochs: int, losses: dict,
               metrics: dict) -> str:
    """``epoch 3/4 (finetune 1/2): loss 14.9 (box 5.58, cls 5.03, dfl 4.30), val mAP50 0.012, mAP50-95 0.003``."""
    parts = ", ".join(f"{name.rsplit('/', 1)[-1].removesuffix('_loss')} {value:.3g}" for name, value in losses.items())
    line = f"epoch {epoch}/{epochs} ({phase} {phase_epoch}/{phase_epochs}): loss {sum(losses.values()):.4g}"
    line += f" ({parts})" if parts else ""
    if MAP50 in metrics:
        line += f", val mAP50 {metrics[MAP50]:.3f}"
    if MAP50_95 in metrics:
        line += f", mAP50-95 {metrics[MAP50_95]:.3f}"
    return line


def epoch_reporter(progress, phase: TrainingPhase, done_before: int, total: int):
    """An Ultralytics ``on_fit_epoch_end`` callback: one :func:`epoch_line` and a percentage of all phases'
    epochs through ``progress(message, percent)``."""

    def on_fit_epoch_end(trainer):
        phase_epoch = int(trainer.epoch) + 1
        if phase_epoch > int(trainer.epochs):  # Ultralytics' final validation of the best weights, not an epoch
            return
        losses = {} if trainer.tloss is None else _as_floats(trainer.label_loss_items(trainer.tloss, prefix="train"))
        epoch = done_before + phase_epoch
        progress(epoch_line(epoch, total, phase.name, phase_epoch, int(trainer.epochs), losses,
                            _as_floats(trainer.metrics)), int(100 * epoch / max(1, total)))

    return on_fit_epoch_end


def train(
    dataset_yaml: str | Path,
    architecture: str,
    phases: list[TrainingPhase],
    work_dir: str | Path,
    initial_weights: str | Path | None = None,
    config_dir=None,
    progress=None,
) -> TrainingResult:
    """Run the training phases in order, each starting from the previous phase's best weights;
    ``progress(message, percent)``, if given, hears one line per epoch (:func:`epoch_line`)."""
    work_dir = Path(work_dir)
    weights: Path | None = None
    phase_weights, metrics, results = {}, [], {}
    total, done = sum(phase.epochs for phase in phases), 0
    for phase in phases:
        if weights is None:
            model = build_model(architecture, initial_weights, config_dir)
        else:
            model = load_model(weights, config_dir)
        if progress is not None:
            model.add_callback("on_fit_epoch_end", epoch_reporter(progress, phase, done, total))
        done += phase.epochs
        model.train(data=str(dataset_yaml), project=str(work_dir), name=phase.name, **phase.overrides)
        trainer = model.trainer
        best, last = Path(trainer.best), Path(trainer.last)
        weights = best if best.is_file() else last
        if not weights.is_file():
            raise RuntimeError(f"training phase {phase.name} wrote no weights under {trainer.save_dir}")
        phase_weights[phase.name] = weights
        metrics.append({"phase": phase.name, "epochs": phase.epochs, "metrics": _as_floats(trainer.metrics)})
        csv = Path(trainer.save_dir) / "results.csv"
        if csv.is_file():
            results[phase.name] = csv
    if weights is None:
        raise ValueError("no training phase given")
    return TrainingResult(weights=weights, phase_weights=phase_weights, metrics=metrics, results=results)


def predict(
    model,
    images: list[np.ndarray],
    imgsz: int,
    conf: float,
    iou: float,
    max_det: int,
    device: str,
    batch: int = 16,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image ``(xyxy, classes, confidences)`` in the given image's own pixel frame."""
    out = []
    for start in range(0, len(images), max(1, batch)):
        chunk = images[start:start + max(1, batch)]
        results = model.predict(source=chunk, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det, device=device,
                                verbose=False, save=False, stream=False)
        for result in results:
            boxes = result.boxes
            out.append((
                boxes.xyxy.cpu().numpy().astype(np.float64).reshape(-1, 4),
                boxes.cls.cpu().numpy().astype(np.int64).reshape(-1),
                boxes.conf.cpu().numpy().astype(np.float64).reshape(-1),
            ))
    return out


def metrics_document(result: TrainingResult) -> dict:
    return {"phases": result.metrics, "final": result.metrics[-1]["metrics"] if result.metrics else {}}


def detect_greens(model, greens: list[np.ndarray], image_ids: list[str], size: int, device: str,
                  batch: int = 16) -> pd.DataFrame:
    """The Detect stage's work without I/O: green channels in, the box table out, boxes in each
    original image's pixels (conf 0.001, NMS IoU 0.5, at most 300 boxes per image)."""
    images = [core.detector_image(green, size) for green in greens]
    predictions = predict(model, images, size, core.CONFIDENCE_THRESHOLD, core.NMS_IOU, core.MAX_DETECTIONS,
                          device, batch)
    tables = []
    for image_id, green, image, (xyxy, classes, confidences) in zip(image_ids, greens, images, predictions):
        boxes = core.boxes_to_original(xyxy, image.shape[:2], green.shape)
        tables.append(core.boxes_table(image_id, boxes, classes, confidences))
    return core.concat_boxes(tables)

"""GPU timing (not a test): the project's Detect task beside bare ``model.predict`` on the same images.

    .venv/bin/python bench/detect_gpu.py            # one call, about 2-3 minutes on one GPU

Synthetic 512-px fields of view; the hpa2021 profile's detector (yolov5su.yaml, 512 px) trained briefly
on synthetic truth boxes (so that conf 0.001 yields box counts for NMS to chew on); then, after a warm-up
of the GPU, on the same test images at the same input size, conf, IoU, max_det and batch:

- ``detect_cold``: ``DetectAll`` through Luigi (manifest done before), loading the weights from storage,
  reading each green PNG, writing the box tables;
- ``detect_warm``: the same again after deleting its outputs (the model stays loaded in the process);
- ``bare``: ``model.predict`` on the green PNG files with the same conf / IoU / max_det / batch.

Prints one JSON document with seconds, images per second and the ratio detect_warm / bare.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import luigi
import luigi.configuration

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from detect_recall import export  # noqa: E402

from stages import storage  # noqa: E402
from stages.detect import contract, core, yolo  # noqa: E402
from stages.dev.synth.core import write_dataset  # noqa: E402


def configure(**sections) -> None:
    config = luigi.configuration.get_config()
    for section, values in sections.items():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, str(value))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="test images to time")
    parser.add_argument("--train-images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (only to get real boxes)")
    parser.add_argument("--size", type=int, default=512, help="synthetic image side")
    parser.add_argument("--profile", default="hpa2021", help="zoo profile: its detector architecture and size")
    parser.add_argument("--device", default="0")
    parser.add_argument("--batch", type=int, default=16, help="prediction batch (Detect and bare)")
    parser.add_argument("--work", default="")
    args = parser.parse_args(argv)
    import torch

    from stages.zoo import get_profile

    spec = get_profile(args.profile).detector
    imgsz = spec.input_size
    with tempfile.TemporaryDirectory(prefix="detect-gpu-") as scratch:
        work = Path(args.work or scratch)
        times = {}
        start = time.perf_counter()
        data = work / "data"
        write_dataset(str(data), args.train_images, args.images, args.size, args.size, seed=1)
        times["synth"] = time.perf_counter() - start

        start = time.perf_counter()
        export(data, work / "dataset", imgsz, 0.15, "truth")
        phases = core.training_phases(imgsz, args.epochs, 0, 8, args.device, 4)
        result = yolo.train(work / "dataset" / contract.DATASET.name, spec.architecture, phases, work / "runs",
                            config_dir=work / "ultralytics")
        times["train"] = time.perf_counter() - start

        configure(pipeline={"input": data, "work": work / "pipeline", "profile": args.profile, "shard_size": 16},
                  detector={"device": args.device, "predict_batch": args.batch, "config_dir": work / "ultralytics"})
        from stages import Detect, DetectAll, Manifest, TrainYolo
        from stages.inputs import load_manifest

        trained = TrainYolo()  # its artifacts, put in place by hand (the zoo's 30+10 epochs are not the point)
        contract.WEIGHTS.write(trained.folder(), result.weights.read_bytes())
        storage.mark_done(trained.folder())
        assert luigi.build([Manifest(split="test")], local_scheduler=True, log_level="WARNING")
        manifest = load_manifest("test")
        files = [str(data / "test" / name) for name in manifest["green"]]

        model = yolo.load_model(result.weights, work / "ultralytics")
        settings = dict(imgsz=imgsz, conf=core.CONFIDENCE_THRESHOLD, iou=core.NMS_IOU,
                        max_det=core.MAX_DETECTIONS, device=args.device, verbose=False, batch=args.batch)
        for _ in range(2):  # warm-up: CUDA context, cuDNN autotune
            list(model.predict(source=files[: args.batch], stream=True, **settings))

        def sync():
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def timed(label, function):
            sync()
            begin = time.perf_counter()
            value = function()
            sync()
            times[label] = time.perf_counter() - begin
            return value

        def run_detect():
            assert luigi.build([DetectAll(split="test")], local_scheduler=True, log_level="WARNING")

        timed("detect_cold", run_detect)
        for shard in sorted(manifest["shard"].unique()):
            storage.remove(Detect(split="test", shard=int(shard)).folder())
        timed("detect_warm", run_detect)
        boxes = sum(len(contract.BOXES.read(Detect(split="test", shard=int(s)).folder()))
                    for s in manifest["shard"].unique())
        bare = timed("bare", lambda: [len(r.boxes) for r in model.predict(source=files, stream=True, **settings)])

        report = {
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "images": len(files),
            "image_size": args.size,
            "imgsz": imgsz,
            "architecture": spec.architecture,
            "boxes_detect": int(boxes),
            "boxes_bare": int(sum(bare)),
            "seconds": {key: round(value, 3) for key, value in times.items()},
            "images_per_second": {key: round(len(files) / times[key], 1)
                                  for key in ("detect_cold", "detect_warm", "bare")},
            "ratio_detect_warm_over_bare": round(times["detect_warm"] / times["bare"], 3),
            "ratio_detect_cold_over_bare": round(times["detect_cold"] / times["bare"], 3),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

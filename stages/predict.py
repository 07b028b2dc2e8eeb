"""One field of view through a trained run: segment, predict every fused source, fuse, print, draw.

    python -m stages.predict --run WORK_URI IMAGE_PREFIX [--input DATA_URI] [--profile demo]
                             [--out overlay.png] [--top 3] [--max-side 0] [--scores cells.csv]

``IMAGE_PREFIX`` is a path or URI such as ``data/test/abc_1`` (or ``s3://bucket/data/test/abc_1``) for which
``<prefix>_red``, ``_green``, ``_blue`` and ``_yellow`` exist as PNG, JPEG or TIFF; the name of one of the
channel files is accepted too. The image need not belong to the run's data.

The trained models are found the way the pipeline finds them: their folders derive from the run's
settings (``[pipeline] work``, ``input``, ``profile``, ``shard_size`` and the stage sections of luigi.cfg),
so run this with the same luigi.cfg (``LUIGI_CONFIG_PATH``) as the run. ``--run`` sets the work root;
``--input`` the data the run was trained on and ``--profile`` the zoo profile (default: what the run recorded
in ``<work>/published.json``, with its external data and shard size; else luigi.cfg's ``[pipeline]``).
A missing model is an error that says which one and where it was looked for.

The image is segmented with the configured ``[segment]`` backend, every source with a positive fusion
weight (``[fuse]`` / the profile's ``fusion``) is predicted with the run's models, exactly as the
pipeline's stages do (cell tiles, whole-image green inputs, image-on-cell inputs, YOLO boxes matched to
cells), and the sources are fused. Printed: one line per cell with its id, centroid (x = column, y = row)
and top classes; written: ``--out`` (default ``<ID>_overlay.png``), the HPA composite with cell outlines
and each cell's top classes, at full resolution unless ``--max-side`` shrinks it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import luigi.configuration
import numpy as np
import pandas as pd

from stages import inputs, storage
from stages.classes import CHANNELS, CLASS_NAMES, SCORE_COLUMNS
from stages.config import PROFILES, pipeline
from stages.manifest.core import channel_files

from stages.submit.contract import PUBLISHED, RECORDED_SETTINGS


class PredictError(RuntimeError):
    """A problem the user fixes (a missing file, a missing model): printed without a traceback."""


class ModelMissing(PredictError):
    """A model the fusion needs is not in the run."""


# ----------------------------------------------------------------------------------------------- inputs


def locate_image(prefix: str) -> tuple[str, str, dict[str, str]]:
    """``(folder URI, image ID, {channel: file name})`` of an image prefix (or of one of its channel files),
    found by listing the folder; an absent channel is an error naming the file that was expected."""
    folder, slash, name = prefix.rstrip("/").rpartition("/")
    if not slash:
        folder = "."
    listing = storage.listdir(folder)
    images = channel_files(listing)
    image_id = name
    if image_id not in images:
        from_file = channel_files([name])  # a channel file's own name: take its image ID
        if from_file:
            image_id = next(iter(from_file))
    files = images.get(image_id)
    if not files:
        raise PredictError(f"no channel files {storage.join(folder, image_id)}_<red|green|blue|yellow>.<png|jpg|tif> "
                           f"in {folder} ({len(listing)} entries there)")
    missing = [channel for channel in CHANNELS if channel not in files]
    if missing:
        raise PredictError(f"image {image_id} in {folder}: no {', '.join(missing)} channel file(s) "
                           f"(expected e.g. {storage.join(folder, f'{image_id}_{missing[0]}.png')})")
    return folder, image_id, files


def published_record(work: str) -> dict:
    """The run's record (``<work>/published.json``), or {} where the run has published nothing readable."""
    try:
        record = storage.read_json(storage.join(work, PUBLISHED))
    except (storage.ArtifactNotFound, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def recorded_settings(record: dict) -> dict[str, str]:
    """The pipeline settings a run's record holds: input, external data, profile and shard size."""
    return {key: str(value) for key, value in (record.get("pipeline") or {}).items()
            if key in RECORDED_SETTINGS and value is not None}


def configure(work: str, input_uri: str | None = None, profile: str | None = None) -> dict[str, str]:
    """Point ``[pipeline]`` at the run, as ``luigi --pipeline-work ...`` would: the run's recorded settings,
    then what the command line gives; returns the settings used."""
    config = luigi.configuration.get_config()
    if not config.has_section("pipeline"):
        config.add_section("pipeline")
    record = published_record(work)
    recorded = recorded_settings(record)
    given = {"work": work, "input": input_uri, "profile": profile}
    values = {**recorded, **{key: value for key, value in given.items() if value is not None}}
    for key, value in values.items():
        config.set("pipeline", key, str(value))
    same_input = input_uri in (None, recorded.get("input"))
    inputs.pin_listings(dict(record.get("inputs") or {}) if same_input else {})  # the input as the models saw it
    settings = pipeline()
    return {"work": settings.work, "input": settings.input, "profile": settings.profile}


# ----------------------------------------------------------------------------------------------- models


def shard_task(name: str):
    """A per-shard task of the one-image shard the command runs (the fusion's declaration names every source,
    model and input it needs)."""
    from stages.tasking import task_class

    return task_class(name)(split="test", shard=0)


def other_versions(task) -> list[str]:
    """The same model under other settings or inputs: the run trained it with another input, profile or
    luigi.cfg, on a training set that has changed since, or with a code version whose training settings
    differ."""
    folder = task.folder()
    stage_folder, _, relative = folder.partition(f"/{task.fingerprint()}/")
    split, _, leaf = relative.rpartition("/")
    model = leaf.rsplit(".", 1)[0]
    found = []
    for fingerprint in storage.listdir(stage_folder):
        parent = storage.join(stage_folder, fingerprint, split)
        for other in storage.listdir(parent):
            uri = storage.join(parent, other)
            if uri != folder and other.rsplit(".", 1)[0] == model and storage.is_done(uri):
                found.append(uri)
    return found


def check_models(models: Sequence, settings: Mapping[str, str]) -> None:
    """Every model trained and complete (its done marker written last), or one error listing what is not."""
    missing = [task for task in models if not task.complete()]
    if not missing:
        return
    lines = []
    for task in missing:
        name = task.param_kwargs.get("model", task.get_task_family())
        lines.append(f"  {task.get_task_family()} {name}: not found at {task.output().uri}")
        others = other_versions(task)
        if others:
            lines.append(f"    (the run holds it under other settings: {', '.join(others)})")
    lines = "\n".join(lines)
    raise ModelMissing(
        f"the run {settings['work']} has no trained model for {len(missing)} of the {len(models)} model(s) the "
        f"fusion needs (profile {settings['profile']}, input {settings['input']}):\n{lines}\n"
        f"run the pipeline first (python -m stages.demo, or luigi --module stages Submission --pipeline-work "
        f"{settings['work']} --pipeline-input DATA). Model folders derive from the run's settings: pass the "
        f"--input and --profile the run used, with its luigi.cfg (LUIGI_CONFIG_PATH)."
    )


# ----------------------------------------------------------------------------------------------- prediction


def predict_image(image_id: str, field: np.ndarray, segmented=None) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """``(cell labels, cell table, fused scores)`` of one field: the pipeline's own per-shard tasks (segment,
    tile, image inputs, every classifier, detect, match, fuse) run in memory on a shard of this one image.
    ``segmented(cell table)``, if given, hears of the cells before any model is loaded."""
    from stages.inmemory import Memory
    from stages.scores import SCORES
    from stages.segment.contract import CELLS, LABELS

    memory = Memory(image_id, field)
    segment = shard_task("Segment")
    cells, _ = memory.read(segment, LABELS, image_id=image_id)
    table = memory.read(segment, CELLS)
    if segmented is not None:
        segmented(table)
    if table.empty:
        return cells, table, pd.DataFrame(columns=["ID", "cell_id", *SCORE_COLUMNS])
    fused = memory.read(shard_task("Fuse"), SCORES)
    return cells, table, table[["ID", "cell_id"]].merge(fused, on=["ID", "cell_id"], how="left", validate="one_to_one")


def cell_lines(table: pd.DataFrame, fused: pd.DataFrame, k: int) -> list[str]:
    """One printable line per cell: ``cell <id> at x=<column> y=<row>: <class> <score>, ...`` best first."""
    from stages.submit.report import top_classes

    top = top_classes(fused, k)
    lines = []
    for row in table.itertuples(index=False):
        best = ", ".join(f"{CLASS_NAMES[klass]} ({klass}) {score:.3f}" for klass, score in top[int(row.cell_id)])
        lines.append(f"cell {int(row.cell_id):4d} at x={row.centroid_x:7.1f} y={row.centroid_y:7.1f}: {best}")
    return lines


def overlay_png(field: np.ndarray, cells: np.ndarray, fused: pd.DataFrame, k: int, max_side: int = 0) -> bytes:
    """The report's drawing (stages.submit.report.annotate): composite, outlines, each cell's top ``k``
    classes; full resolution unless ``max_side`` > 0 caps the longest side."""
    from stages.submit.report import annotate, png_bytes, top_classes

    top = top_classes(fused, k) if len(fused) else {}
    side = max_side if max_side > 0 else max(cells.shape)
    return png_bytes(annotate(field, cells, top, side))


# ----------------------------------------------------------------------------------------------- command


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stages.predict", description=__doc__.split("\n")[0],
                                     epilog="See the module documentation (python -m pydoc stages.predict).")
    parser.add_argument("--run", required=True, metavar="WORK_URI", help="the trained run's work root")
    parser.add_argument("image", metavar="IMAGE_PREFIX",
                        help="path or URI prefix of the four channel files, e.g. data/test/abc_1")
    parser.add_argument("--input", help="the data URI the run was trained on (default: the run's record, "
                                        "else [pipeline] input)")
    parser.add_argument("--profile", choices=PROFILES, help="zoo profile (default: [pipeline] profile)")
    parser.add_argument("--out", help="overlay PNG path or URI (default: <ID>_overlay.png)")
    parser.add_argument("--top", type=int, default=3, help="classes printed and drawn per cell")
    parser.add_argument("--max-side", type=int, default=0, help="shrink the overlay to this longest side (0: full)")
    parser.add_argument("--scores", help="also write every cell's fused scores (and centroid) to this CSV")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return predict_command(args)
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def predict_command(args: argparse.Namespace) -> int:
    from stages.fields import read_field
    from stages.fuse.stage import fusion_settings
    from stages.inmemory import trained_models

    settings = configure(args.run, args.input, args.profile)
    fusion = fusion_settings()
    check_models(trained_models(shard_task("Fuse")), settings)  # before any image is read or model loaded
    folder, image_id, files = locate_image(args.image)
    try:
        field = read_field(folder, image_id, files)
    except ValueError as error:  # BadImageError names the image and the file
        raise PredictError(str(error)) from None

    def header(table: pd.DataFrame) -> None:
        print(f"image {image_id}: {field.shape[1]}x{field.shape[0]} px, {len(table)} cell(s); run "
              f"{settings['work']} (profile {settings['profile']}); fusion {fusion.mode} of "
              + ", ".join(f"{source} {fusion.weights[source]:g}" for source in fusion.sources), flush=True)

    cells, table, fused = predict_image(image_id, field, header)
    for line in cell_lines(table, fused, args.top):
        print(line)
    if table.empty:
        print("no cells found: nothing to classify")
    out = args.out or f"{image_id}_overlay.png"
    storage.write_bytes(out, overlay_png(field, cells, fused, args.top, args.max_side))
    print(f"overlay: {out}")
    if args.scores:
        columns = ["ID", "cell_id", "centroid_x", "centroid_y", "area"]
        storage.write_table(args.scores, table[columns].merge(fused, on=["ID", "cell_id"], how="left"))
        print(f"scores: {args.scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

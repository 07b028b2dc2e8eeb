"""One field of view through a trained run: segment, predict every fused source, fuse, print, draw.

    python -m stages.predict --run WORK_URI IMAGE_PREFIX [--input DATA_URI] [--profile demo]
                             [--out overlay.png] [--top 3] [--max-side 0] [--scores cells.csv]

``IMAGE_PREFIX`` is a path or URI such as ``data/test/abc_1`` (or ``s3://bucket/data/test/abc_1``) for which
``<prefix>_red``, ``_green``, ``_blue`` and ``_yellow`` exist as PNG, JPEG or TIFF; the name of one of the
channel files is accepted too. The image need not belong to the run's data.

The trained models are found the way the pipeline finds them: their folders derive from the run's
settings (``[pipeline] work``, ``input``, ``profile``, ``shard_size`` and the stage sections of luigi.cfg),
so run this with the same luigi.cfg (``LUIGI_CONFIG_PATH``) as the run. ``--run`` sets the work root;
``--input`` the data the run was trained on (default: the run's record in ``<work>/published.json`` where
it names one, else ``[pipeline] input`` of luigi.cfg); ``--profile`` the zoo profile (default: luigi.cfg's).
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
import dataclasses
import sys
from collections.abc import Mapping, Sequence

import luigi.configuration
import numpy as np
import pandas as pd

from stages import storage
from stages.classes import CHANNELS, CLASS_NAMES, SCORE_COLUMNS
from stages.config import PROFILES, pipeline
from stages.manifest.core import channel_files
from stages.zoo import FUSION_SOURCES, FusionSettings, ModelSpec, Profile, get_profile

GREEN = CHANNELS.index("green")
RUN_RECORD = "published.json"


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


def recorded_input(work: str) -> str | None:
    """The input URI the run's record names, if ``<work>/published.json`` records one."""
    uri = storage.join(work, RUN_RECORD)
    if not storage.exists(uri):
        return None
    try:
        record = storage.read_json(uri)
    except ValueError:
        return None
    value = record.get("input") or (record.get("pipeline") or {}).get("input")
    return str(value) if value else None


def configure(work: str, input_uri: str | None = None, profile: str | None = None) -> dict[str, str]:
    """Point ``[pipeline]`` at the run, as ``luigi --pipeline-work ...`` would; returns the settings used."""
    config = luigi.configuration.get_config()
    if not config.has_section("pipeline"):
        config.add_section("pipeline")
    values = {"work": work, "input": input_uri or recorded_input(work), "profile": profile}
    for key, value in values.items():
        if value:
            config.set("pipeline", key, str(value))
    settings = pipeline()
    return {"work": settings.work, "input": settings.input, "profile": settings.profile}


# ----------------------------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """Where a trained model of the run lies: the task that makes it, its done marker and its model file."""

    source: str
    name: str
    task: object
    marker: str
    uri: str


def model_refs(sources: Sequence[str], profile: Profile) -> list[ModelRef]:
    """The trained models the sources need, in fusion order (a model two sources share is listed twice)."""
    from stages.classify import contract as classify_contract
    from stages.classify.task import TrainCellModel, TrainImageModel
    from stages.detect.task import TrainYolo

    refs = []

    def classifier(source, task):
        refs.append(ModelRef(source, task.model, task, task.output().uri,
                             storage.join(task.folder(), classify_contract.MODEL_FILE)))

    for source in sources:
        if source == "cell":
            for spec in profile.role("cell"):
                classifier(source, TrainCellModel(model=spec.name))
        elif source == "image":
            for spec in profile.role("image"):
                classifier(source, TrainImageModel(model=spec.name))
        elif source == "image_on_cell":
            classifier(source, TrainImageModel(model=profile.image_on_cell.name))
        elif source == "detector":
            task = TrainYolo()
            refs.append(ModelRef(source, profile.detector.name, task, task.output().uri, task.weights_uri()))
        else:
            raise ValueError(f"unknown fusion source {source!r}; known: {FUSION_SOURCES}")
    return refs


def other_versions(ref: ModelRef) -> list[str]:
    """The same model file under the stage's other fingerprints: the run trained this model with other
    settings (another input, profile or luigi.cfg, or a code version whose training settings differ)."""
    stage_folder = storage.join(pipeline().work, ref.task.stage)
    fingerprint = ref.task.fingerprint()
    prefix = f"{stage_folder}/{fingerprint}/"
    if not ref.uri.startswith(prefix):
        return []
    relative = ref.uri[len(prefix):]
    found = []
    for other in storage.listdir(stage_folder):
        uri = storage.join(stage_folder, other, relative)
        if other != fingerprint and storage.exists(uri):
            found.append(uri)
    return found


def check_models(refs: Sequence[ModelRef], settings: Mapping[str, str]) -> None:
    """Every model trained and complete (its done marker written last), or one error listing what is not."""
    missing = [ref for ref in refs if not storage.exists(ref.marker)]
    if not missing:
        return
    lines = []
    for ref in missing:
        lines.append(f"  {ref.source} model {ref.name} ({type(ref.task).__name__}): not found at {ref.marker}")
        others = other_versions(ref)
        if others:
            lines.append(f"    (the run holds it under other settings: {', '.join(others)})")
    lines = "\n".join(lines)
    raise ModelMissing(
        f"the run {settings['work']} has no trained model for {len(missing)} of the {len(refs)} model(s) the "
        f"fusion needs (profile {settings['profile']}, input {settings['input']}):\n{lines}\n"
        f"run the pipeline first (python -m stages.demo, or luigi --module stages Submission --pipeline-work "
        f"{settings['work']} --pipeline-input DATA). Model folders derive from the run's settings: pass the "
        f"--input and --profile the run used, with its luigi.cfg (LUIGI_CONFIG_PATH)."
    )


@dataclasses.dataclass
class Predictors:
    """The loaded models of every fused source (models are anything with Keras' ``predict_on_batch`` and
    ``input_shape``, and an Ultralytics YOLO for the detector), plus the input sizes they read."""

    tile_size: int
    cell: list[tuple[ModelSpec, object]] = dataclasses.field(default_factory=list)
    image: list[tuple[ModelSpec, object]] = dataclasses.field(default_factory=list)
    image_on_cell: tuple[ModelSpec, object] | None = None
    detector: tuple[ModelSpec, object] | None = None
    detector_device: str = "cpu"
    batch_size: int = 64


def load_predictors(refs: Sequence[ModelRef], profile: Profile) -> Predictors:
    """Load each model once (image model #2 serves the image and the image-on-cell source alike)."""
    from stages.classify.task import classify

    loaded: dict[str, object] = {}
    predictors = Predictors(tile_size=profile.tile_size, batch_size=classify().predict_batch_size)
    for ref in refs:
        if ref.source == "detector":
            from stages.detect import yolo
            from stages.detect.task import config_dir, resolved_device

            if ref.uri not in loaded:
                with storage.local_copy(ref.uri, ".pt") as path:
                    loaded[ref.uri] = yolo.load_model(path, config_dir())
            predictors.detector = (profile.detector, loaded[ref.uri])
            predictors.detector_device = resolved_device()
            continue
        from stages.classify import models

        if ref.uri not in loaded:
            with storage.local_copy(ref.uri, ".keras") as path:
                loaded[ref.uri] = models.load_classifier(path)
        entry = (profile.model(ref.name), loaded[ref.uri])
        if ref.source == "cell":
            predictors.cell.append(entry)
        elif ref.source == "image":
            predictors.image.append(entry)
        else:
            predictors.image_on_cell = entry
    return predictors


# ----------------------------------------------------------------------------------------------- prediction


def segment_field(field: np.ndarray) -> np.ndarray:
    """The cell label image with the run's ``[segment]`` settings (weights on S3 are copied locally)."""
    from stages.segment.core import make_segmenter
    from stages.segment.task import local_models, segment

    with local_models(segment().settings()) as settings:
        cells, _ = make_segmenter(settings)(field)
    return cells


def cell_rows(image_id: str, cells: np.ndarray) -> pd.DataFrame:
    """The segment table of one image (``ID`` first, then ``stages.segment.labels.cell_table``'s columns)."""
    from stages.segment.core import cell_table

    table = cell_table(cells)
    table.insert(0, "ID", str(image_id))
    return table


def _probabilities(spec: ModelSpec, model, inputs: np.ndarray, channels: str, batch_size: int) -> np.ndarray:
    from stages.classify.predict import predict_probabilities

    expected = tuple(model.input_shape[1:3])
    if len(inputs) and tuple(inputs.shape[1:3]) != expected:
        raise ValueError(f"model {spec.name}: inputs of {inputs.shape[1:3]} px, but the model reads {expected}")
    return predict_probabilities(model, inputs, channels, batch_size)


def source_tables(image_id: str, field: np.ndarray, cells: np.ndarray, table: pd.DataFrame,
                  predictors: Predictors) -> dict[str, list[pd.DataFrame]]:
    """Per fused source, one score table per model (``ID, cell_id, class_0 .. class_18``, one row per cell of
    ``table``), made from the same inputs the pipeline's stages make: cell tiles (tile stage), the
    square-padded green image (ImageInputs), image-on-cell inputs (tile stage), boxes matched to centroids."""
    from stages.classify import data
    from stages.tile.core import cell_tiles, image_on_cell, square_pad_resize

    ids = table["cell_id"].astype(int).tolist()
    keys = table[["ID", "cell_id"]]
    green = np.ascontiguousarray(field[..., GREEN])
    out: dict[str, list[pd.DataFrame]] = {}
    if predictors.cell:
        tiles = cell_tiles(field, cells, ids, predictors.tile_size)
        out["cell"] = [data.score_table(keys["ID"], keys["cell_id"],
                                        _probabilities(spec, model, tiles, spec.channels, predictors.batch_size))
                       for spec, model in predictors.cell]
    if predictors.image:
        out["image"] = []
        for spec, model in predictors.image:
            inputs = square_pad_resize(green, spec.input_size)[None]
            scores = _probabilities(spec, model, inputs, "green", predictors.batch_size)
            out["image"].append(data.broadcast_to_cells(data.image_score_table([image_id], scores), keys))
    if predictors.image_on_cell is not None:
        spec, model = predictors.image_on_cell
        inputs = image_on_cell(green, cells, ids, spec.input_size)
        out["image_on_cell"] = [data.score_table(keys["ID"], keys["cell_id"],
                                                 _probabilities(spec, model, inputs, "green", predictors.batch_size))]
    if predictors.detector is not None:
        from stages.detect import yolo
        from stages.match.core import match_scores

        spec, model = predictors.detector
        boxes = yolo.detect_greens(model, [green], [image_id], spec.input_size, predictors.detector_device)
        out["detector"] = [match_scores(table, boxes)]
    return out


def predict_cells(image_id: str, field: np.ndarray, cells: np.ndarray, predictors: Predictors,
                  fusion: FusionSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cell table, fused scores)`` of one segmented field; the fused table follows the cell table's order."""
    from stages.fuse import core as fuse_core

    table = cell_rows(image_id, cells)
    if table.empty:
        return table, pd.DataFrame(columns=["ID", "cell_id", *SCORE_COLUMNS])
    fused = fuse_core.fuse(source_tables(image_id, field, cells, table, predictors), fusion.weights, fusion.mode)
    fused = table[["ID", "cell_id"]].merge(fused, on=["ID", "cell_id"], how="left", validate="one_to_one")
    return table, fused


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
    from stages.fuse.task import fusion_settings

    settings = configure(args.run, args.input, args.profile)
    profile = get_profile(settings["profile"])
    fusion = fusion_settings()
    refs = model_refs(fusion.sources, profile)
    check_models(refs, settings)  # before any image is read or model loaded
    folder, image_id, files = locate_image(args.image)
    try:
        field = read_field(folder, image_id, files)
    except ValueError as error:  # BadImageError names the image and the file
        raise PredictError(str(error)) from None
    cells = segment_field(field)
    count = len(np.unique(cells[cells > 0]))
    print(f"image {image_id}: {field.shape[1]}x{field.shape[0]} px, {count} cell(s); run {settings['work']} "
          f"(profile {settings['profile']}); fusion {fusion.mode} of "
          + ", ".join(f"{source} {fusion.weights[source]:g}" for source in fusion.sources), flush=True)
    if count:
        predictors = load_predictors(refs, profile)
        table, fused = predict_cells(image_id, field, cells, predictors, fusion)
        for line in cell_lines(table, fused, args.top):
            print(line)
    else:
        table, fused = cell_rows(image_id, cells), pd.DataFrame(columns=["ID", "cell_id", *SCORE_COLUMNS])
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

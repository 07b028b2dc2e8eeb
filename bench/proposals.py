"""Measured evidence for the fixes bench/RESULTS.md recommends, each beside the current code in the same run.

    .venv/bin/python -m bench.proposals               # both parts, about 2 minutes
    .venv/bin/python -m bench.proposals --part cpu    # tiling and decoding only

The proposals are written here only to be measured; the stage code is not changed by this module (the
scheduling part swaps ``stages.tasking``'s fingerprint memo for the length of one measurement and puts it back).

cpu:
- ``cell_tiles`` with the masking done by OpenCV on a view of the field (no fancy-indexed copy, no
  ``np.where``, no ``np.pad``) and the boxes taken from the segment stage's cell table instead of a
  ``find_objects`` pass per call; output checked identical.
- ``image_on_cell`` given those boxes (its own ``find_objects`` pass skipped); output checked identical.
- decoding only the channels a stage reads (tile: red, green, blue; classic segment: red, blue, yellow),
  and decoding the four PNGs in threads (``cv2.imdecode`` releases the GIL).

scheduling (over a populated store of N images, see bench/scheduling.py):
- ``FuseAll(...).complete()`` with ``StageTask.fingerprint`` remembered per (task, luigi configuration),
  as ``stages.tasking`` now does (adopted), against the same code with that memo disabled, which recomputes
  the whole upstream chain for every shard;
- on S3, one listing of the stage's prefix against one HEAD per shard marker.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from stages.classes import CHANNELS
from stages.fields import decode_channel
from stages.segment.core import SegmentSettings, segment_classic
from stages.segment.labels import cell_table
from stages.tile import core as tile_core

GREEN = CHANNELS.index("green")


# ------------------------------------------------------------------------------------------------ cpu


def proposed_cell_tiles(field: np.ndarray, cells: np.ndarray, cell_ids, tile_size: int, boxes) -> np.ndarray:
    """stages.tile.core.cell_tiles, with OpenCV doing the per-cell masking and padding on a view."""
    tiles = np.empty((len(boxes), tile_size, tile_size, 3), np.uint8)
    for index, (cell_id, (rows, cols)) in enumerate(zip(cell_ids, boxes)):
        inside = (cells[rows, cols] == cell_id).view(np.uint8)
        crop = field[rows, cols]  # (h, w, 4) view; OpenCV reads its row stride, nothing is copied
        masked = cv2.cvtColor(cv2.bitwise_and(crop, crop, mask=inside), cv2.COLOR_RGBA2RGB)  # drops yellow
        height, width = inside.shape
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(masked, top, side - height - top, left, side - width - left,
                                    cv2.BORDER_CONSTANT, value=0)
        tiles[index] = cv2.resize(square, (tile_size, tile_size), interpolation=cv2.INTER_AREA)
    return tiles


def boxes_from_table(table) -> list[tuple[slice, slice]]:
    """The segment stage's cells.csv bounding boxes as slices (what the Tile task already reads)."""
    return [(slice(y0, y1), slice(x0, x1)) for y0, x0, y1, x1 in
            table[["bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]].itertuples(index=False)]


def cpu_part(images: int, rounds: int) -> str:
    fields = common.synthetic_fields(images)
    settings = SegmentSettings()
    data = []
    for item in fields:
        cells = segment_classic(item.field, settings)[0]
        table = cell_table(cells)
        data.append((item, cells, table["cell_id"].tolist(), boxes_from_table(table)))
    size, on_cell = 256, 600
    identical = all(np.array_equal(tile_core.cell_tiles(f.field, c, ids, size),
                                   proposed_cell_tiles(f.field, c, ids, size, boxes)) for f, c, ids, boxes in data)
    same_on_cell = all(np.array_equal(tile_core.image_on_cell(f.field[..., GREEN], c, ids, on_cell),
                                      on_cell_with_boxes(f.field[..., GREEN], c, ids, on_cell, boxes))
                       for f, c, ids, boxes in data)
    t_on_cell = common.interleaved(
        {"current": lambda: [tile_core.image_on_cell(f.field[..., GREEN], c, ids, on_cell) for f, c, ids, _ in data],
         "proposed": lambda: [on_cell_with_boxes(f.field[..., GREEN], c, ids, on_cell, boxes)
                              for f, c, ids, boxes in data]},
        {"current": rounds, "proposed": rounds})
    t_tiles = common.interleaved(
        {"current": lambda: [tile_core.cell_tiles(f.field, c, ids, size) for f, c, ids, _ in data],
         "proposed": lambda: [proposed_cell_tiles(f.field, c, ids, size, boxes) for f, c, ids, boxes in data]},
        {"current": rounds, "proposed": rounds})
    t_boxes = common.best_time(lambda: [tile_core.cell_boxes(c, ids) for _, c, ids, _ in data], rounds)

    def decode(channels):
        return lambda: [[decode_channel(f.pngs[ch], f.image_id, ch) for ch in channels] for f, *_ in data]

    with ThreadPoolExecutor(4) as pool:
        def threaded():
            for item, *_ in data:
                list(pool.map(lambda ch, item=item: decode_channel(item.pngs[ch], item.image_id, ch), CHANNELS))

        t_decode = common.interleaved(
            {"4 channels": decode(CHANNELS), "3 channels (tile: R, G, B)": decode(("red", "green", "blue")),
             "4 channels, 4 threads": threaded},
            {"4 channels": rounds, "3 channels (tile: R, G, B)": rounds, "4 channels, 4 threads": rounds})
    n = len(data)
    rows = [
        ("cell_tiles at 256", f"{1000 * t_tiles['current'] / n:.1f}", f"{1000 * t_tiles['proposed'] / n:.1f}",
         f"{t_tiles['current'] / t_tiles['proposed']:.1f}x", f"identical: {identical}"),
        ("image_on_cell at 600, boxes given", f"{1000 * t_on_cell['current'] / n:.1f}",
         f"{1000 * t_on_cell['proposed'] / n:.1f}", f"{t_on_cell['current'] / t_on_cell['proposed']:.1f}x",
         f"identical: {same_on_cell}"),
        ("(of which find_objects, per call)", f"{1000 * t_boxes / n:.1f}", "0", "", "boxes from cells.csv"),
    ]
    base = t_decode["4 channels"]
    for name, seconds in t_decode.items():
        if name != "4 channels":
            rows.append((f"decoding: {name}", f"{1000 * base / n:.1f}", f"{1000 * seconds / n:.1f}",
                         f"{base / seconds:.1f}x", "same pixels"))
    return ("## Proposals, CPU (ms per 2048-px image, best of rounds)\n"
            + common.table(["step", "current ms", "proposed ms", "speed-up", "check"], rows))


def on_cell_with_boxes(green, cells, ids, size, boxes):
    """stages.tile.core.image_on_cell as it is, but handed the boxes instead of finding them."""
    with mock.patch.object(tile_core, "cell_boxes", lambda *_: boxes):
        return tile_core.image_on_cell(green, cells, ids, size)


# ------------------------------------------------------------------------------------------------ scheduling


class Forgetful(dict):
    """A memo that remembers nothing: ``stages.tasking``'s fingerprint memo disabled."""

    def __setitem__(self, key, value) -> None:
        pass


def exist_by_listing(root: str, uris: list[str]) -> list[bool]:
    """Whether each s3:// URI under ``root`` exists, from one paginated listing of ``root``."""
    from stages import storage

    bucket, _, prefix = root[len("s3://"):].partition("/")
    pages = storage.s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    keys = {item["Key"] for page in pages for item in page.get("Contents", [])}
    return [uri[len(f"s3://{bucket}/"):] in keys for uri in uris]


def scheduling_part(images: int, rounds: int) -> str:
    import boto3
    import luigi

    from bench import scheduling
    from stages import FuseAll, storage, tasking

    rows = []
    with tempfile.TemporaryDirectory(prefix="hpa-bench-proposals-") as scratch, scheduling.moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=scheduling.BUCKET)
        for store, input_uri, work_uri in (("local", f"{scratch}/input", f"{scratch}/work"),
                                           ("s3", f"s3://{scheduling.BUCKET}/input", f"s3://{scheduling.BUCKET}/work")):
            scheduling.apply_config(scheduling.config_text(input_uri, work_uri, 32, endpoint if store == "s3" else None))
            scheduling.populate(images, 32)

            def check(memo):
                """FuseAll's check as a fresh process makes it: no task instances, nothing remembered yet."""
                luigi.task_register.Register.clear_instance_cache()
                memo.clear()
                with mock.patch.object(tasking, "_fingerprints", memo):
                    assert FuseAll(split="test").complete()

            without = common.best_time(lambda: check(Forgetful()), rounds)
            remembered = common.best_time(lambda: check({}), rounds)
            rows.append((f"FuseAll.complete(), {store}", f"{without:.2f}", f"{remembered:.2f}",
                         f"{without / remembered:.1f}x", "fingerprint remembered (adopted: stages.tasking)"))
            if store == "s3":
                shards = FuseAll(split="test").shard_tasks()
                uris = [task.output().uri for task in shards]
                root = shards[0].folder().rsplit("/", 1)[0]  # the split's folder above every shard-NNNNN
                assert all(exist_by_listing(root, uris))
                heads = common.best_time(lambda uris=uris: [storage.exists(uri) for uri in uris], rounds)
                listed = common.best_time(lambda root=root, uris=uris: exist_by_listing(root, uris), rounds)
                rows.append((f"{len(uris)} shard markers on S3", f"{heads:.2f}", f"{listed:.2f}",
                             f"{heads / listed:.1f}x", f"{len(uris)} HEAD vs {-(-len(uris) // 1000)} LIST (proposed)"))
    return (f"## Proposals, scheduling ({images} images, {-(-images // 32)} shards; seconds, best of rounds)\n"
            + common.table(["check", "without s", "with s", "speed-up", "how"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("cpu", "scheduling", "all"), default="all")
    parser.add_argument("--images", type=int, default=4, help="cpu: distinct synthetic fields")
    parser.add_argument("--scheduling-images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    common.print_machine("Proposals", "python -m bench.proposals " + " ".join(sys.argv[1:]))
    if args.part in ("cpu", "all"):
        print(cpu_part(args.images, args.rounds), flush=True)
    if args.part in ("scheduling", "all"):
        print(scheduling_part(args.scheduling_images, args.rounds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Draw classic segmentation outlines over the images of a split, to see what the segmenter does.

    python -m stages.dev.overlay --input DATA_URI --split test --out DIR [--ids ID ...] [--max-side 1024]

writes ``DIR/<ID>_overlay.png``: an RGB composite (red + yellow as red, green, blue) with cell outlines in
white and nucleus outlines in cyan.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.segmentation import find_boundaries

from stages import storage
from stages.fields import composite, read_field
from stages.manifest.core import channel_files
from stages.segment.core import SegmentSettings, segment_classic

CELL_COLOUR = (255, 255, 255)
NUCLEUS_COLOUR = (0, 255, 255)


def draw_overlay(field: np.ndarray, cells: np.ndarray, nuclei: np.ndarray, max_side: int) -> np.ndarray:
    """The composite with outlines, shrunk to at most ``max_side`` pixels a side; labels are resized by
    nearest neighbour before their boundaries are found, so outlines stay one pixel wide."""
    rows, cols = cells.shape
    scale = min(1.0, max_side / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    image = cv2.resize(composite(field), size, interpolation=cv2.INTER_AREA)
    for labels, colour in ((nuclei, NUCLEUS_COLOUR), (cells, CELL_COLOUR)):
        small = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT)
        image[find_boundaries(small, mode="inner")] = colour
    return image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="data URI in the Kaggle layout (folder or s3://)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, help="local folder for the PNGs")
    parser.add_argument("--ids", nargs="*", help="image IDs (default: every image of the split)")
    parser.add_argument("--max-side", type=int, default=1024)
    args = parser.parse_args(argv)

    folder = storage.join(args.input, args.split)
    images = channel_files(storage.listdir(folder))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = SegmentSettings()
    for image_id in args.ids or sorted(images):
        if image_id not in images:
            raise SystemExit(f"no channel files for image {image_id} under {folder}")
        field = read_field(folder, image_id, images[image_id])
        start = time.perf_counter()
        cells, nuclei = segment_classic(field, settings)
        seconds = time.perf_counter() - start
        overlay = draw_overlay(field, cells, nuclei, args.max_side)
        png = cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out / f"{image_id}_overlay.png"), png, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"{image_id}: {field.shape[1]}x{field.shape[0]}, {int(cells.max())} cells, {seconds:.2f} s")


if __name__ == "__main__":
    main()

"""``python -m stages.dev.synth --out DIR|s3://bucket/prefix --images N --test-images M --size PX --seed S``."""

from __future__ import annotations

import argparse
import sys
import time

from .core import write_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.dev.synth", description=__doc__)
    parser.add_argument("--out", required=True, help="output folder or s3:// prefix")
    parser.add_argument("--images", type=int, default=16, help="training images (default 16)")
    parser.add_argument("--test-images", type=int, default=4, help="test images (default 4)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--height", type=int, help="image height, overrides --size")
    parser.add_argument("--width", type=int, help="image width, overrides --size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells-per-image", type=float,
                        help="mean cell count per image (default ~25 at 2048 px, ~10 at 512 px)")
    args = parser.parse_args(argv)
    height, width = args.height or args.size, args.width or args.size
    if min(height, width) < 64 or min(args.images, args.test_images) < 0 or args.seed < 0:
        parser.error("sizes must be >= 64 px, counts and seed >= 0")
    if args.cells_per_image is not None and args.cells_per_image <= 0:
        parser.error("--cells-per-image must be positive")
    start = time.perf_counter()
    table = write_dataset(args.out, args.images, args.test_images, height, width, args.seed, args.cells_per_image)
    print(f"wrote {len(table)} images ({args.images} train, {args.test_images} test, {height}x{width}) "
          f"to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

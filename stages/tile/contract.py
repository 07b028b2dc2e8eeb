"""What the tile stage writes: the one place its files, arrays and columns are declared.

``Tile`` (per shard folder ``<work>/tile/<fingerprint>/<split>/shard-NNNNN/``): row i of the tiles, the
image-on-cell inputs and the index belong together. ``ImageInputs`` (per shard, per input size): the image
models' whole-image inputs. Plain ``.npy``, readable by TensorFlow, JAX and torch code alike.
"""

import numpy as np

from stages.artifacts import Artifact, table

TILE_CHANNELS = ("red", "green", "blue")  # green x3 is channel 1 repeated at batch time: not stored
ARRAY_DTYPE = np.dtype(np.uint8)

TILES = Artifact("tiles.npy", "array", f"(N, S, S, {len(TILE_CHANNELS)}) uint8, channels "
                 f"{', '.join(TILE_CHANNELS)}; S = the profile's tile_size", dtype="uint8")
IMAGE_ON_CELL = Artifact("image_on_cell.npy", "array", "(N, I, I) uint8 green, every non-cell pixel zeroed; I = "
                         "input size of the profile's image-on-cell model", dtype="uint8")
INDEX = table("index.csv", "row i describes tile i and image-on-cell input i", {"ID": str, "cell_id": "int64"})
INDEX_COLUMNS = INDEX.columns
INDEX_DTYPES = dict(INDEX.dtypes)

IMAGE_INPUTS = Artifact("green.npy", "array", "(N, S, S) uint8: each image's green channel square-padded and "
                        "area-resized to the image model's input size S", dtype="uint8")
IMAGE_INDEX = table("index.csv", "row i = image i of green.npy",
                    {"ID": str, "width": "int64", "height": "int64", "Label": str})

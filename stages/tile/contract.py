"""What the tile stage reads and writes: the one place that names its files, arrays and columns.

The task writes, and downstream stages (classify, pseudolabel) read through ``stages.tile.task.load_tiles``,
by these names; the tests check the artifacts against them.
"""

import numpy as np

from stages.segment import contract as segment

INPUTS = {
    "manifest": "the split's manifest (stages.manifest): image ID and its four channel files per shard",
    "images": "<input>/<split>/<ID>_<red|green|blue|yellow>.<png|jpg|tif> (read by stages.fields)",
    "segment": f"the shard's {segment.LABELS_FILE} (the '{segment.LABEL_ARRAYS[0]}' label image; nuclei are not "
               f"tiled) and {segment.CELLS_FILE} (which cells to tile, in that order)",
}

# Per shard folder <work>/tile/<fingerprint>/<split>/shard-NNNNN/
TILES_FILE = "tiles.npy"
IMAGE_ON_CELL_FILE = "image_on_cell.npy"
INDEX_FILE = "index.csv"
INDEX_DTYPES = {"ID": str, "cell_id": "int64"}
INDEX_COLUMNS = tuple(INDEX_DTYPES)
TILE_CHANNELS = ("red", "green", "blue")  # green x3 is channel 1 repeated at batch time: not stored
ARRAY_DTYPE = np.dtype(np.uint8)

OUTPUTS = {
    TILES_FILE: f"(N, S, S, {len(TILE_CHANNELS)}) uint8, channels {', '.join(TILE_CHANNELS)}; S = profile tile_size",
    IMAGE_ON_CELL_FILE: "(N, I, I) uint8 green; I = input size of the profile's image-on-cell model",
    INDEX_FILE: f"columns {', '.join(INDEX_COLUMNS)}; row i describes tile i and image-on-cell input i",
}

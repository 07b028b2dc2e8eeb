"""What the segment stage reads and writes: the one place that names its files and table columns.

The task writes, and downstream stages (tile, match, submit) read, through these names; the tests check
the artifacts against them.
"""

INPUTS = {
    "manifest": "the split's manifest (stages.manifest): image ID and its four channel files per shard",
    "images": "<input>/<split>/<ID>_<red|green|blue|yellow>.<png|jpg|tif> (read by stages.fields)",
}

# Per shard folder <work>/segment/<fingerprint>/<split>/shard-NNNNN/
LABELS_FILE = "{image_id}.npz"  # arrays "cells" and "nuclei": uint16 (H, W), 0 = background, ids 1..N match
LABEL_ARRAYS = ("cells", "nuclei")
CELLS_FILE = "cells.csv"  # one row per cell of every image in the shard
IMAGES_FILE = "images.csv"  # one row per image, including images without a cell

BBOX_COLUMNS = ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")  # y1/x1 exclusive
CELL_TABLE_COLUMNS = ("cell_id", *BBOX_COLUMNS, "centroid_y", "centroid_x", "area")
CELLS_COLUMNS = ("ID", *CELL_TABLE_COLUMNS)
IMAGES_COLUMNS = ("ID", "width", "height", "cells")

OUTPUTS = {
    LABELS_FILE: f"per image: {', '.join(LABEL_ARRAYS)} label images (uint16; cell k contains nucleus k)",
    CELLS_FILE: f"columns {', '.join(CELLS_COLUMNS)}; bbox y1/x1 exclusive; centroid in pixels (y = row, x = column)",
    IMAGES_FILE: f"columns {', '.join(IMAGES_COLUMNS)}; cells = number of cells found (0 allowed)",
}


def labels_file(image_id: str) -> str:
    return LABELS_FILE.format(image_id=image_id)

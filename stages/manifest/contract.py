"""What the manifest stage writes: the one place its files and columns are declared."""

from stages.artifacts import table
from stages.classes import CHANNELS

# <work>/manifest/<fingerprint>/<split>/
MANIFEST = table(
    "manifest.csv",
    "one row per image of the split: ID, its shard, the file name of each channel (empty where missing), Label, "
    "and identity: a hash of its channel files' names, sizes and mtimes (ETags on S3), so a changed file changes "
    "the folders of exactly the tasks that read it",
    {"ID": str, "shard": "int64", **{channel: str for channel in CHANNELS}, "Label": str, "identity": str},
)
REJECTED = table(
    "rejected.csv",
    "the images left out of the manifest ([pipeline] bad_images = skip), one row per problem: the image's ID, "
    "the file and why (empty when every image is usable or bad images fail the run)",
    {"ID": str, "file": str, "reason": str},
)

"""Pipeline-wide settings as Luigi config sections, so they come from luigi.cfg or the command line.

``luigi --module stages Tile --pipeline-input DATA --pipeline-work WORK --pipeline-profile demo`` sets
the ``[pipeline]`` section from the command line exactly as luigi.cfg would.
"""

import luigi

PROFILES = ("demo", "hpa2021")


class pipeline(luigi.Config):  # noqa: N801 -- Luigi derives the [pipeline] section name from the class name
    input = luigi.Parameter(
        default="data/synthetic",
        description="URI of the input data in the Kaggle layout (train/, test/, train.csv): a folder or s3://",
    )
    external = luigi.Parameter(
        default="",
        description="optional URI of external training data in the same layout (train/, train.csv), read as the "
                    "'external' split by the models whose zoo entry sets external_data; empty: none",
    )
    work = luigi.Parameter(default="work", description="artifact root URI: a folder or s3://bucket/prefix")
    profile = luigi.ChoiceParameter(choices=PROFILES, default="demo", description="model zoo profile")
    shard_size = luigi.IntParameter(default=32, description="images per micro-batch (per-shard task)")
    tasks_per_stage = luigi.IntParameter(
        default=64, description="most Luigi tasks a per-shard stage makes per split: consecutive shards are grouped "
        "into that many (operational: shards, folders and fingerprints stay as they are)")

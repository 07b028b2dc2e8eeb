"""Pipeline-wide settings as Luigi config sections, so they come from luigi.cfg or the command line.

``luigi --module stages Tile --pipeline-input DATA --pipeline-work WORK --pipeline-profile demo`` sets
the ``[pipeline]`` section from the command line exactly as luigi.cfg would.
"""

import configparser
from pathlib import Path

import luigi
from luigi.configuration import LuigiConfigParser

PROFILES = ("demo", "hpa2021")
BAD_IMAGES = ("fail", "skip")
# The embedded defaults (local scheduler, [retcode], the demo settings) travel with the package, so they
# apply from any working directory; the repository's top-level luigi.cfg is a link to this file.
EMBEDDED_CONFIG = Path(__file__).with_name("luigi.cfg")


def install_embedded_defaults() -> None:
    """Put the package's luigi.cfg under every other config file Luigi reads (/etc/luigi, ./luigi.cfg,
    LUIGI_CONFIG_PATH) and under whatever was set before ``stages`` was imported: a key found anywhere
    else wins, every other key takes the embedded value."""
    paths = LuigiConfigParser._config_paths
    if str(EMBEDDED_CONFIG) in paths:
        return
    paths.insert(0, str(EMBEDDED_CONFIG))  # a later reload() reads it first, so every other file wins
    config = LuigiConfigParser.instance()
    defaults = configparser.ConfigParser(interpolation=None)
    defaults.read(EMBEDDED_CONFIG)
    for section in defaults.sections():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in defaults.items(section, raw=True):
            if not config.has_option(section, key):
                config.set(section, key, value)


install_embedded_defaults()


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
    max_pixels = luigi.IntParameter(
        default=6144 * 6144, description="the largest field of view (width x height, per channel) an input image may "
        "declare in its header: the manifest refuses larger ones and nothing decodes them (default: four times a "
        "3072 px HPA field)")
    bad_images = luigi.ChoiceParameter(
        choices=BAD_IMAGES, default="fail", description="an input image with a missing, unreadable, mismatched or "
        "oversized channel: fail (the manifest lists every problem and nothing runs) or skip (it is left out of the "
        "manifest and listed in the Manifest task's rejected.csv)")

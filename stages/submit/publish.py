"""The pipeline's goal: the submission, the evaluation (where truth is known) and the report, published as
plain copies at the work root beside the fingerprinted artifacts.

``<work>/published.json`` names the artifacts the copies came from, each copy's sha256, and the run's
pipeline settings (input, external data, profile, shard size) and the digest of each split's input as
listed (its files' identities and its table), so commands that come later
(``stages.predict``) find what the run used. It is removed before the first copy and written after the
last; ``Submission`` is complete when it matches the current settings' artifacts and every copy still has
its recorded digest, so a rerun with nothing to do costs a few reads. It is not a declared stage task: it
writes outside any fingerprinted folder.
"""

from __future__ import annotations

import hashlib
import logging

import luigi

from stages import inputs, storage
from stages.config import pipeline
from stages.manifest.core import SPLITS
from stages.submit import contract, summary
from stages.submit.contract import RECORDED_SETTINGS
from stages.submit.stage import truth_known
from stages.tasking import task_class

logger = logging.getLogger("luigi-interface")


def top_level_name(name: str, split: str) -> str:
    """``submission.csv`` for the test split, ``submission_<split>.csv`` for another."""
    if split == "test":
        return name
    stem, dot, extension = name.rpartition(".")
    return f"{stem}_{split}{dot}{extension}"


def record_uri(split: str = "test") -> str:
    return storage.join(pipeline().work, top_level_name(contract.PUBLISHED, split))


def sha256_of(uri: str) -> str:
    return hashlib.sha256(storage.read_bytes(uri)).hexdigest()


class PublishedTarget(luigi.Target):
    """Exists when the record names exactly the expected artifacts and settings, and every copy is there with
    the content the record's sha256 says: a copy overwritten or cut short by anything else does not pass."""

    def __init__(self, uri: str, expected: dict):
        self.uri = uri
        self.expected = expected

    def exists(self) -> bool:
        if not storage.exists(self.uri):
            return False
        try:
            recorded = storage.read_json(self.uri)
            digests = recorded.pop("sha256")
            return recorded == self.expected and set(digests) == set(recorded["copies"]) and all(
                sha256_of(copy) == digest for copy, digest in digests.items())
        except (ValueError, KeyError, TypeError, storage.ArtifactNotFound):
            return False


class Submission(luigi.Task):
    """The whole pipeline: submission, evaluation where truth is known, report; published at the work root."""

    split = luigi.ChoiceParameter(choices=SPLITS, default="test")

    def artifacts(self) -> dict[str, tuple]:
        """Published name -> (task, artifact)."""
        found = {"submission": ("WriteSubmission", contract.SUBMISSION), "report": ("Report", contract.REPORT)}
        if truth_known():
            found["evaluation"] = ("Evaluate", contract.EVALUATION)
        return {key: (task_class(name)(split=self.split), artifact) for key, (name, artifact) in found.items()}

    def requires(self):
        inputs.validate_inputs()  # every split at once, before Luigi schedules any work on a good one
        return [task for task, _ in self.artifacts().values()]

    def record(self) -> dict:
        work = pipeline().work
        copies = {storage.join(work, top_level_name(artifact.name, self.split)): artifact.uri(task.folder())
                  for task, artifact in self.artifacts().values()}
        settings = {key: getattr(pipeline(), key) for key in ("work", *RECORDED_SETTINGS)}
        listed = {split: inputs.listing_digest(split) for split in inputs.needed_splits()}
        return {"split": self.split, "copies": copies, "pipeline": settings, "inputs": listed}

    def output(self):
        return PublishedTarget(record_uri(self.split), self.record())

    def run(self):
        record = self.record()
        storage.remove(self.output().uri)  # first: a half-published set must never pass for the old one
        digests = {}
        for copy, source in record["copies"].items():
            data = storage.read_bytes(source)
            storage.write_bytes(copy, data)
            digests[copy] = hashlib.sha256(data).hexdigest()
        # last: its presence means the copies are complete, and their digests say with what
        storage.write_json(self.output().uri, {**record, "sha256": digests})
        for copy in record["copies"]:
            logger.info("published %s", copy)


def published_text(split: str = "test") -> str:
    """Where the last published run's results are, and its mAP: for the end of a command."""
    uri = record_uri(split)
    if not storage.exists(uri):
        return f"nothing published yet under {pipeline().work}"
    copies = list(storage.read_json(uri)["copies"])
    lines = [f"{name.rsplit('/', 1)[-1]}: {name}" for name in copies]
    evaluation = [name for name in copies if name.endswith(".json")]
    if evaluation:
        lines.append(summary.evaluation_text(storage.read_json(evaluation[0])))
    return "\n".join(lines)

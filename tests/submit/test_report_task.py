"""run_report against a stand-in context: synthetic images, their truth label images standing in for the
segment stage's, score tables written here (a detector that found nothing), no Luigi graph. The whole
pipeline's report is built in test_tasks.py."""

from __future__ import annotations

import html
import json
import re
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest

from stages import storage
from stages.classes import CHANNELS, CLASS_NAMES, NUM_CLASSES, SCORE_COLUMNS, parse_labels
from stages.dev.synth.core import write_dataset
from stages.fuse import contract as fuse_contract
from stages.segment import contract as segment_contract
from stages.submit import contract, report_draw
from stages.submit import stage as submit_stage

SUBMISSION_ARTIFACT = "/w/write_submission/f00d/test/submission.csv"


class Upstream:
    """An upstream folder read through artifacts, as :class:`stages.context.Upstream`, from memory."""

    def __init__(self, artifacts: dict, fingerprint: str = "fp"):
        self.artifacts = artifacts
        self.task = SimpleNamespace(fingerprint=lambda: fingerprint)

    def read(self, artifact, **fields):
        value = self.artifacts[artifact]
        return value(**fields) if callable(value) else value

    def uri(self, artifact, **fields):
        return SUBMISSION_ARTIFACT


class Context:
    def __init__(self, inputs: dict, evaluated: bool):
        self.inputs = inputs
        self.split = "test"
        self.written = {}
        self.task = SimpleNamespace(needs=lambda: {"evaluation": None} if evaluated else {})

    def input(self, name):
        return self.inputs[name]

    def progress(self, message, percent=None):
        pass

    def write(self, artifact, value, **fields):
        self.written[artifact.name.format(**fields)] = value


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("data"))
    write_dataset(folder, 0, 3, 112, 144, 5)
    return folder


def read_png(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def context(data, evaluated=True):
    truth = pd.read_csv(f"{data}/truth/cells.csv", dtype={"ID": str, "Label": str}, keep_default_na=False)
    ids = sorted(truth["ID"].unique())
    manifest = pd.DataFrame({"ID": ids, "shard": [0, 0, 1], **{c: [f"{i}_{c}.png" for i in ids] for c in CHANNELS},
                             "Label": ""})
    labels = {i: (read_png(f"{data}/truth/{i}_cells.png"), read_png(f"{data}/truth/{i}_nuclei.png")) for i in ids}
    rng = np.random.default_rng(0)

    def table(images, values):
        rows = [(i, cell_id) for i in images for cell_id in range(1, int(labels[i][0].max()) + 1)]
        frame = pd.DataFrame(rows, columns=["ID", "cell_id"])
        frame[list(SCORE_COLUMNS)] = values(len(rows))
        return frame

    shards = []
    for shard in (0, 1):
        images = manifest.loc[manifest["shard"] == shard, "ID"].tolist()
        fused = table(images, lambda n: rng.uniform(0, 1, (n, NUM_CLASSES)))
        sources = {"cell": fused, "detector": table(images, lambda n: np.zeros((n, NUM_CLASSES)))}
        segment = Upstream({segment_contract.LABELS: lambda image_id: labels[image_id]})
        shards.append((segment, Upstream({fuse_contract.SCORES: fused,
                                          fuse_contract.SOURCE: lambda source, s=sources: s[source]})))
    result = {"mAP": 0.7, "classes_evaluated": 2, "images": 3, "iou_threshold": 0.6,
              "per_class": {str(k): {"name": CLASS_NAMES[k], "AP": 0.7 if k < 2 else None, "truth_cells": 4,
                                     "predictions": 8, "true_positives": 4} for k in range(NUM_CLASSES)}}
    evaluation = {"split": "test", "truth": f"{data}/truth", "images": 3, "mAP": 0.7, "fused": result,
                  "sources": {"cell": result, "detector": {**result, "mAP": 0.6}}, "submission_file": result}
    inputs = {"segment": [s for s, _ in shards], "fused": [f for _, f in shards],
              "submission": Upstream({}, "f00d"), "evaluation": Upstream({contract.EVALUATION: evaluation})}
    return Context(inputs, evaluated), manifest, truth


@pytest.fixture
def settings(data, tmp_path, pipeline_settings, config_section, monkeypatch):
    pipeline_settings(input=data, work=str(tmp_path / "work"), profile="demo", shard_size=2)
    config_section("fuse", weights=json.dumps({"cell": 0.5, "detector": 0.5}))

    def run(evaluated=True):
        ctx, manifest, truth = context(data, evaluated)
        monkeypatch.setattr(submit_stage.inputs, "load_manifest", lambda split: manifest)
        page = submit_stage.run_report(ctx)[contract.REPORT].decode("utf-8")
        return page, ctx.written, manifest, truth

    return run


def test_the_report_of_a_run_draws_every_image_with_truth_beside_it(settings, data, tmp_path):
    page, written, manifest, truth = settings()
    assert sorted(written) == sorted(f"images/{i}.png" for i in manifest["ID"])  # each drawn image, also a file
    assert page.count("data:image/png;base64,") == len(manifest)
    for image_id in manifest["ID"]:
        assert f"id='image-{image_id}'" in page
        drawn = cv2.imdecode(np.frombuffer(written[f"images/{image_id}.png"], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        assert drawn.shape == (112, 144, 3)
        assert (drawn == report_draw.NUCLEUS_OUTLINE).all(axis=2).sum() > 30  # nucleus outlines drawn
        # the image's truth labels by name, beside the predictions
        labels = sorted({k for label in truth.loc[truth.ID == image_id, "Label"] for k in parse_labels(label)})
        section = page.split(f"id='image-{image_id}'")[1].split("</section>")[0]
        image_row = re.search(r"<tr class='image-row'>.*?</tr>", section).group(0)
        assert ", ".join(f"{k} {CLASS_NAMES[k]}" for k in labels) in html.unescape(image_row)
        assert "(truth cell 1)" in section  # per-cell truth: the truth labels stand in for the segmentation
    assert "Demo-sized models" in page and "The detector source contributed nothing" in page
    assert re.search(r"<tr><th>detector alone</th>.*?found no boxes.*?</tr>", page)
    # the summary links the published copy; the settings name the fingerprinted artifact
    published = storage.join(str(tmp_path / "work"), "submission.csv")
    assert f"<a href='submission.csv'>{published}</a>" in page
    assert f"<th>artifacts.submission</th><td class='text'>{SUBMISSION_ARTIFACT}</td>" in page
    assert "<th>submit.report_images</th><td class='text'>24</td>" in page


def test_the_cap_and_a_run_without_truth(settings, config_section):
    config_section("submit", report_images=2)
    page, written, manifest, _ = settings(evaluated=False)
    assert len(written) == 2 and page.count("data:image/png;base64,") == 2
    assert manifest["ID"].iloc[2] not in page.split("<h2>Settings")[0]
    assert "No per-cell truth" in page and "<th>truth</th>" not in page.split("<h2>Settings")[0]
    assert "The detector source contributed nothing" in page  # known from the scores alone
    config_section("pipeline", profile="hpa2021")
    assert "Demo-sized" not in settings(evaluated=False)[0]

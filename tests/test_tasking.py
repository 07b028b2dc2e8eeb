"""The generic task machinery, checked against the declarations it reads."""

from __future__ import annotations

import luigi
import pytest

import stages
from stages import storage
from stages.artifacts import Artifact
from stages.declare import Stage, TaskSpec
from stages.dev.synth.core import write_dataset
from stages.registry import STAGES
from stages.shards import AllShards, ShardGroup
from stages.tasking import StageTask, make_task_class

EXAMPLES = {"model": {"TrainImageModel": "image.b7_600_noext", "PredictImages": "image.b7_600_ext"},
            "fold": 1, "size": 128}
# Operational knobs: each changes how fast a task runs (or, the step caps, how long: smoke runs only), never
# which folder it writes.
OPERATIONAL_CHANGES = {"classify": {"run_eagerly": "true", "jit_compile": "true", "predict_batch_size": "3",
                                    "loader_workers": "4", "verbose": "2", "micro_batch": "2", "max_steps": "1"},
                       "detector": {"device": "cpu", "workers": "3", "predict_batch": "2", "config_dir": "/x",
                                    "max_epochs": "1"},
                       "segment": {"device": "cuda:1"}}


def example(spec: TaskSpec) -> StageTask:
    values = {"split": spec.splits[0]} if spec.splits != ("test",) else {}
    if spec.per_shard:
        values["shard"] = 1
    for name in spec.params:
        example_value = EXAMPLES[name]
        values[name] = example_value.get(spec.name, "cell.b0_ext_pseudo_e10") if isinstance(example_value, dict) \
            else example_value
    return getattr(stages, spec.name)(**values)


@pytest.fixture
def small_run(tmp_path, pipeline_settings):
    write_dataset(str(tmp_path / "data"), 4, 3, 64, 64, 1)
    pipeline_settings(input=str(tmp_path / "data"), work=str(tmp_path / "work"), profile="demo", shard_size=2)
    return tmp_path


def every_task() -> list[StageTask]:
    return [example(spec) for stage in STAGES for spec in stage.tasks]


def test_requires_and_the_fingerprint_name_the_same_upstream(small_run):
    for task in every_task():
        required = []
        for dependency in luigi.task.flatten(task.requires()):
            if isinstance(dependency, AllShards):
                required += dependency.shard_tasks()
            elif isinstance(dependency, ShardGroup):
                required += dependency.members()
            else:
                required.append(dependency)
        assert bool(required) == bool(task.needs()), task
        assert all(isinstance(dependency, StageTask) for dependency in required)
        assert {dependency.fingerprint() for dependency in required} == {
            task.needed(need).fingerprint() for need in task.needs().values()}, task


def test_every_shard_of_a_stage_shares_its_fingerprint_and_owns_its_folder(small_run):
    shards = stages.SegmentAll(split="train").shard_tasks()
    assert len(shards) == 2
    assert len({shard.fingerprint() for shard in shards}) == 1
    assert len({shard.folder() for shard in shards}) == 2


def test_operational_knobs_leave_every_fingerprint_alone(small_run, config_section):
    before = {task.task_id: task.fingerprint() for task in every_task()}
    for section, values in OPERATIONAL_CHANGES.items():
        config_section(section, **values)
    declared = {key for stage in STAGES for spec in stage.tasks for key in spec.operational}
    assert declared == {f"{section}.{key}" for section, values in OPERATIONAL_CHANGES.items() for key in values}
    luigi.task_register.Register.clear_instance_cache()
    assert {task.task_id: task.fingerprint() for task in every_task()} == before


def test_a_content_setting_changes_the_task_and_everything_downstream(small_run, config_section):
    before = {task.task_id: task.fingerprint() for task in every_task()}
    config_section("classify", seed="7")
    luigi.task_register.Register.clear_instance_cache()
    after = {task.task_id: task.fingerprint() for task in every_task()}
    changed = {task_id.split("_")[0] for task_id in before if before[task_id] != after[task_id]}
    assert {"TrainCellModel", "TrainImageModel", "TrainFoldModel", "PseudoLabel", "PredictCells", "PredictImages",
            "PredictImageOnCell", "Fuse", "WriteSubmission", "Evaluate", "Report"} <= changed
    assert not changed & {"Manifest", "Segment", "Tile", "ImageInputs", "YoloExport", "TrainYolo", "Detect", "Match"}


OUTPUT = Artifact("out.json", "json", "the toy task's output")
STRAY = Artifact("stray.json", "json", "not declared by the toy task")


def toy_class(name: str, run) -> type[StageTask]:
    spec = TaskSpec(name=name, doc="a toy", outputs=(OUTPUT,), run=run, splits=("test",))
    return make_task_class(Stage(name="toy", doc="toy", tasks=(spec,), whole=name), spec)


def test_a_failed_run_leaves_no_folder_and_no_marker(tmp_path, pipeline_settings):
    pipeline_settings(work=str(tmp_path / "work"))

    def fails_half_way(ctx):
        ctx.write(OUTPUT, {"partial": True})
        raise RuntimeError("stopped half way")

    task = toy_class("ToyFailing", fails_half_way)()
    with pytest.raises(RuntimeError, match="half way"):
        task.run_here()
    assert not storage.exists(task.folder()) and not task.complete()

    task = toy_class("ToyWorking", lambda ctx: {OUTPUT: {"value": 1}})()
    task.run_here()
    assert task.complete() and OUTPUT.read(task.folder()) == {"value": 1}


def test_an_undeclared_output_is_refused(tmp_path, pipeline_settings):
    pipeline_settings(work=str(tmp_path / "work"))
    task = toy_class("ToyStray", lambda ctx: {STRAY: {}})()
    with pytest.raises(ValueError, match="stray.json is not a declared output"):
        task.run_here()
    assert not storage.exists(task.folder())


def test_outputs_that_cannot_be_stored_are_kept_locally_and_named(tmp_path, pipeline_settings, monkeypatch):
    work = tmp_path / "work"
    pipeline_settings(work=str(work))
    original = Artifact.write

    def unreachable_store(self, folder, value, **fields):
        if str(folder).startswith(str(work)):
            raise storage.StorageError(f"S3 write of {folder}/{self.name} failed: EndpointConnectionError")
        original(self, folder, value, **fields)

    monkeypatch.setattr(Artifact, "write", unreachable_store)
    task = toy_class("ToyTrained", lambda ctx: {OUTPUT: {"weights": [1, 2, 3]}})()
    with pytest.raises(storage.StorageError, match="outputs are kept in") as raised:
        task.run_here()
    kept = str(raised.value).rsplit("kept in ", 1)[1]
    assert OUTPUT.read(kept) == {"weights": [1, 2, 3]} and not task.complete()

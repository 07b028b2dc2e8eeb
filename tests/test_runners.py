"""The docker and Kubernetes runners, checked by the exact command and Job spec they would issue."""

from __future__ import annotations

from pathlib import Path

import luigi.configuration
import luigi.task
import pytest
from luigi.parameter import _no_value

import stages
from stages import inputs, runners
from stages.dev.synth.core import write_dataset
from stages.registry import STAGES, task_spec
from stages.tasking import StageTask

REPO = Path(__file__).resolve().parents[1]
REQUIRED_EXAMPLES = {"model": "cell.b0_ext_pseudo_e10", "fold": 0, "size": 64}
# Written out here, not read from the declarations: the tasks that train or run a network, which the
# docker and Kubernetes runners must give a GPU whatever the declarations say.
NETWORK_TASKS = {"TrainCellModel", "TrainImageModel", "PredictCells", "PredictImages", "PredictImageOnCell",
                 "TrainFoldModel", "TrainYolo", "Detect"}


def stage_tasks() -> list[StageTask]:
    """One instance of every declared task, with its required parameters filled in."""
    tasks = []
    for stage in STAGES:
        for spec in stage.tasks:
            task_class = getattr(stages, spec.name)
            values = {"shard": 3} if spec.per_shard else {}
            for parameter, declared in task_class.get_params():
                if parameter not in values and declared._default is _no_value:
                    values[parameter] = REQUIRED_EXAMPLES[parameter]
            if spec.name in ("TrainImageModel", "PredictImages"):
                values["model"] = "image.b7_600_ext"
            tasks.append(task_class(**values))
    return tasks


def option(command: list[str], flag: str) -> list[str]:
    return [command[index + 1] for index, value in enumerate(command) if value == flag]


def test_docker_command_for_every_stage(tmp_path, pipeline_settings, runner_settings, monkeypatch):
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    work.mkdir()
    pipeline_settings(input=str(data), work=str(work), profile="demo", shard_size=8)
    runner_settings(mode="docker", registry="registry.example/hpa", tag="1.2.3", gpus="device=0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    tasks = stage_tasks()
    assert {runners.image_name(task) for task in tasks} >= {"manifest", "segment", "tile"}
    for task in tasks:
        command = runners.docker_command(task)
        assert command[:3] == ["docker", "run", "--rm"]
        image = f"registry.example/hpa/{runners.image_name(task)}:1.2.3"
        assert (REPO / "images" / runners.image_name(task) / "Dockerfile").exists()
        assert image in command
        arguments = command[command.index(image) + 1:]
        assert arguments[0] == task.get_task_family()
        assert option(arguments, "--pipeline-work") == [str(work)]
        assert option(arguments, "--pipeline-input") == [str(data)]
        assert option(arguments, "--runner-mode") == ["inprocess"]  # the container runs the work itself
        if task.spec.per_shard:
            assert option(arguments, "--shard") == ["3"]
        assert f"{work}:{work}" in option(command, "-v") and f"{data}:{data}" in option(command, "-v")
        assert "AWS_SECRET_ACCESS_KEY" in option(command, "-e")
        assert "do-not-leak" not in " ".join(command)
        # the container names the manifests by the input as this process listed it
        assert f"{inputs.LISTINGS_VARIABLE}={inputs.listing_digests()}" in option(command, "-e")
        stage, spec = task_spec(task.get_task_family())
        assert runners.image_name(task) == stage.name  # the image is the declaring stage's
        assert (option(command, "--gpus") == ["device=0"]) == spec.needs_gpu()


@pytest.mark.parametrize("profile", ["demo", "hpa2021"])
def test_every_network_task_gets_a_gpu_from_both_runners(tmp_path, pipeline_settings, runner_settings, segment_config,
                                                         profile):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile=profile, shard_size=8)
    runner_settings(mode="docker", gpus="all")
    for task in stage_tasks():
        wants_gpu = task.get_task_family() in NETWORK_TASKS
        assert ("--gpus" in runners.docker_command(task)) == wants_gpu, task
        resources = runners.kubernetes_pod_spec(task)["containers"][0].get("resources", {})
        assert (resources.get("limits", {}).get("nvidia.com/gpu") == 1) == wants_gpu, task
    segment_task = stages.Segment(split="test", shard=0)
    assert "--gpus" not in runners.docker_command(segment_task)  # classic segmentation is CPU work
    segment_config(backend="hpacellseg", device="cuda:0")
    assert option(runners.docker_command(segment_task), "--gpus") == ["all"]
    assert runners.kubernetes_pod_spec(segment_task)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    segment_config(backend="hpacellseg", device="cpu")
    assert "--gpus" not in runners.docker_command(segment_task)


def test_every_stage_has_its_image_tests_and_ci_entry():
    for stage in STAGES:
        assert (REPO / "images" / stage.name / "Dockerfile").exists(), stage.name
        assert (REPO / "tests" / stage.name).is_dir(), stage.name
        assert stage.whole in stages.__all__, stage.name
        for spec in stage.tasks:
            assert getattr(stages, spec.name).stage_name == stage.name


def test_docker_command_on_s3_mounts_nothing(s3_root, pipeline_settings, runner_settings):
    pipeline_settings(input=f"{s3_root}/data", work=f"{s3_root}/work", profile="demo", shard_size=8)
    runner_settings(mode="docker")
    command = runners.docker_command(stages.Tile(split="test", shard=0))
    assert [mount for mount in option(command, "-v") if not mount.endswith(":ro")] == []
    assert option(command, "--pipeline-work") == [f"{s3_root}/work"]


def test_kubernetes_job_spec(s3_root, pipeline_settings, runner_settings, monkeypatch):
    pipeline_settings(input=f"{s3_root}/data", work=f"{s3_root}/work", profile="demo", shard_size=8)
    runner_settings(mode="kubernetes", registry="reg/hpa", tag="7", credentials_secret="s3-creds")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    task = stages.Segment(split="train", shard=2)
    spec = runners.kubernetes_pod_spec(task)
    (container,) = spec["containers"]
    assert container["image"] == "reg/hpa/segment:7"
    assert container["args"][:5] == ["Segment", "--split", "train", "--shard", "2"]
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert {"name": inputs.LISTINGS_VARIABLE, "value": inputs.listing_digests()} in container["env"]
    assert spec["restartPolicy"] == "Never" and spec["securityContext"]["runAsNonRoot"]
    name = runners.job_name(task)
    assert len(name) <= 31 and name.startswith("hpa-segment-") and name == name.lower()
    assert runners.job_name(stages.Segment(split="train", shard=3)) != name


def test_graph_building_contacts_no_docker(tmp_path, pipeline_settings, runner_settings, monkeypatch):
    write_dataset(str(tmp_path / "data"), 2, 2, 64, 64, 1)
    pipeline_settings(input=str(tmp_path / "data"), work=str(tmp_path / "work"), profile="demo", shard_size=1)
    runner_settings(mode="docker", docker="/nonexistent/docker")
    real_run = runners.subprocess.run

    def refuse_docker(command, *args, **kwargs):
        assert "/nonexistent/docker" not in command, "docker started at graph time"
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(runners.subprocess, "run", refuse_docker)
    task = stages.Submission(split="test")
    assert not task.complete()
    pending = [task]
    while pending:  # the whole graph, as the scheduler walks it
        pending += luigi.task.flatten(pending.pop().requires())
    for shard_task in stages.Tile(split="test", shard=0).requires():
        shard_task.output()


def test_docker_failure_names_the_command(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="docker", docker="false")
    with pytest.raises(RuntimeError, match=r"container exited with status 1: false run --rm"):
        runners.dispatch(stages.Manifest(split="test"))


KERAS_TASKS = {"TrainCellModel", "TrainImageModel", "PredictCells", "PredictImages", "PredictImageOnCell",
               "TrainFoldModel", "PseudoLabel"}


def test_keras_stages_run_in_their_jax_image_for_the_accelerator(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="docker", registry="reg", tag="7", keras_backend="jax", accelerator="cuda")
    images = {}
    for task in stage_tasks():
        images[task.get_task_family()] = runners.image_for(task)
        assert runners.kubernetes_pod_spec(task)["containers"][0]["image"] == images[task.get_task_family()]
    for family, image in images.items():
        stage = task_spec(family)[0].name
        expected = f"reg/{stage}-jax-cuda:7" if stage in ("classify", "pseudolabel") else f"reg/{stage}:7"
        assert image == expected, family
    assert {family for family, image in images.items() if "-jax-" in image} == KERAS_TASKS
    runner_settings(mode="docker", registry="reg", tag="7", keras_backend="jax", accelerator="tpu")
    assert runners.image_for(stages.PredictCells(split="test", shard=0, model="cell.b0_ext_pseudo_e10")) \
        == "reg/classify-jax-tpu:7"
    assert runners.image_for(stages.Tile(split="test", shard=0)) == "reg/tile:7"
    runner_settings(mode="docker", registry="reg", tag="7", keras_backend="tensorflow", accelerator="cuda")
    assert runners.image_for(stages.PredictCells(split="test", shard=0, model="cell.b0_ext_pseudo_e10")) \
        == "reg/classify:7"


def test_tpu_needs_the_jax_images(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="docker", accelerator="tpu")  # keras_backend left at tensorflow
    with pytest.raises(ValueError, match="keras_backend = jax"):
        runners.docker_command(stages.Tile(split="test", shard=0))


def test_accelerator_decides_devices_and_job_resources(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    gpu_task = stages.PredictCells(split="test", shard=0, model="cell.b0_ext_pseudo_e10")
    cpu_task = stages.Tile(split="test", shard=0)
    assert gpu_task.needs_gpu() and not cpu_task.needs_gpu()

    def limits(task):
        return runners.kubernetes_pod_spec(task)["containers"][0].get("resources", {}).get("limits", {})

    runner_settings(mode="docker", accelerator="tpu", keras_backend="jax", tpu_chips=8,
                    tpu_node_selector='{"cloud.google.com/gke-tpu-topology": "2x4"}')
    command = runners.docker_command(gpu_task)
    assert "--privileged" in command and "--gpus" not in command
    assert limits(gpu_task) == {"google.com/tpu": 8}
    assert runners.kubernetes_pod_spec(gpu_task)["nodeSelector"] == {"cloud.google.com/gke-tpu-topology": "2x4"}
    assert "--privileged" not in runners.docker_command(cpu_task) and limits(cpu_task) == {}
    assert "nodeSelector" not in runners.kubernetes_pod_spec(cpu_task)

    runner_settings(mode="docker", accelerator="cuda", gpus="device=1")
    assert option(runners.docker_command(gpu_task), "--gpus") == ["device=1"]
    assert "--privileged" not in runners.docker_command(gpu_task)
    assert limits(gpu_task) == {"nvidia.com/gpu": 1}

    runner_settings(mode="docker", accelerator="none")  # a CPU-only docker host: no device options at all
    command = runners.docker_command(gpu_task)
    assert "--gpus" not in command and "--privileged" not in command and limits(gpu_task) == {}


def test_docker_network_setting(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="docker")
    assert "--network" not in runners.docker_command(stages.Tile(split="test", shard=0))
    runner_settings(mode="docker", network="none")
    command = runners.docker_command(stages.Tile(split="test", shard=0))
    assert option(command, "--network") == ["none"]
    assert command.index("--network") < command.index(runners.image_for(stages.Tile(split="test", shard=0)))


def test_job_names_stay_short_for_jax_images(tmp_path, pipeline_settings, runner_settings):
    pipeline_settings(input=str(tmp_path), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="kubernetes", keras_backend="jax", accelerator="cuda")
    name = runners.job_name(stages.PseudoLabel())
    assert name.startswith("hpa-pseudolabel-") and len(name) <= 31


def test_a_fresh_container_process_accepts_the_arguments(tmp_path, pipeline_settings, runner_settings):
    """The first real docker run: the image's `python -m stages.runstage` rejected `--runner-mode` and every
    setting whose section its imports had not registered yet (exit 2, "unrecognized arguments"). Run the
    entry point in a new interpreter, as a container does, on a task whose inputs are missing: it must get
    past argument parsing to the check of its inputs."""
    import os
    import subprocess
    import sys

    write_dataset(str(tmp_path / "data"), 2, 2, 64, 64, 1)
    pipeline_settings(input=str(tmp_path / "data"), work=str(tmp_path / "work"), profile="demo", shard_size=8)
    runner_settings(mode="docker")
    environment = {**os.environ, inputs.LISTINGS_VARIABLE: inputs.listing_digests()}
    predict = stages.PredictCells(split="test", shard=0, model="cell.b0_ext_pseudo_e10")
    for task in (stages.Tile(split="test", shard=0), predict):
        done = subprocess.run([sys.executable, "-m", "stages.runstage", *runners.task_arguments(task)],
                              cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
        assert "unrecognized arguments" not in done.stderr, done.stderr[-2000:]
        assert "upstream artifacts missing" in done.stderr, done.stderr[-2000:]

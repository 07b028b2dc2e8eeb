"""Where a task's work runs: in this process (default), in its stage's Docker image, or as a Kubernetes Job.

All three run the same code: the container's entry point is ``python -m stages.runstage <Task> <params>``,
which calls the task's in-process work. The command or Job spec is built from the task's parameters and
the pipeline settings at run time only: nothing here contacts Docker or Kubernetes while Luigi builds the
graph (luigi.contrib.docker_runner.DockerTask would, in its constructor).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import luigi
import luigi.configuration
from luigi.task_register import Register

from stages import inputs, storage

# markers: for benchmarks of the task graph alone (bench/scale.py): nothing runs, each task's folder gets
# its marker, and a task that is not per shard its fixed-name files, empty.
RUNNERS = ("inprocess", "docker", "kubernetes", "markers")
# Credentials travel by name (`-e NAME`): docker copies the value from our environment, so secrets never
# appear on a command line or in a Job spec.
PASSED_ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)
CONTAINER_CONFIG = "/etc/hpa-stages/luigi.cfg"
# What a task that declares a GPU gets: an NVIDIA GPU, a TPU VM's chips, or nothing (a CPU-only host: the
# task runs on the CPU, slowly).
ACCELERATORS = ("cuda", "tpu", "none")
# The Keras stages, whose images come in a TensorFlow (CUDA) variant, <stage>, and Keras-3-on-JAX variants,
# <stage>-jax-cuda and <stage>-jax-tpu (docker-bake.hcl's "keras-jax" group).
KERAS_STAGES = ("classify", "pseudolabel")
KERAS_BACKENDS = ("tensorflow", "jax")


class runner(luigi.Config):  # noqa: N801 -- Luigi derives the [runner] section name from the class name
    mode = luigi.ChoiceParameter(choices=RUNNERS, default="inprocess", description="where stage work runs")
    registry = luigi.Parameter(default="hpa-stages", description="image registry/namespace")
    tag = luigi.Parameter(default="0.1.0", description="image tag (docker-bake.hcl TAG)")
    docker = luigi.Parameter(default="docker", description="docker client command")
    gpus = luigi.Parameter(default="all", description="docker --gpus value for GPU stages")
    accelerator = luigi.ChoiceParameter(
        choices=ACCELERATORS, default="cuda",
        description="what GPU tasks get: cuda (docker --gpus, nvidia.com/gpu) | tpu (docker --privileged, "
                    "google.com/tpu; Keras stages on JAX) | none (CPU-only host)")
    keras_backend = luigi.ChoiceParameter(
        choices=KERAS_BACKENDS, default="tensorflow",
        description="image variant of the Keras stages: tensorflow (<stage>) | jax (<stage>-jax-cuda, "
                    "<stage>-jax-tpu; needs [classify] backbone_source = keras_applications)")
    tpu_chips = luigi.IntParameter(default=4, description="google.com/tpu chips a TPU task's Job asks for")
    tpu_node_selector = luigi.DictParameter(
        default={},
        description='Kubernetes nodeSelector of TPU Jobs, e.g. {"cloud.google.com/gke-tpu-topology": "2x2"}')
    network = luigi.OptionalParameter(
        default=None, description="docker --network value (host: reach services on 127.0.0.1; none: no network)")
    namespace = luigi.OptionalParameter(default=None, description="Kubernetes namespace")
    credentials_secret = luigi.OptionalParameter(
        default=None, description="Kubernetes Secret whose keys become the Job's environment (S3 credentials)"
    )


def image_name(task) -> str:
    """The task's stage (its declaration in stages/<name>/stage.py) names its image and bake target; a Keras
    stage on JAX runs in the variant for the run's accelerator."""
    settings = runner()
    if settings.accelerator == "tpu" and settings.keras_backend != "jax":
        raise ValueError("[runner] accelerator = tpu needs keras_backend = jax: TensorFlow's images are CUDA's")
    if task.stage_name in KERAS_STAGES and settings.keras_backend == "jax":
        # with no accelerator the CUDA variant's jax runs on the CPU
        return f"{task.stage_name}-jax-{'tpu' if settings.accelerator == 'tpu' else 'cuda'}"
    return task.stage_name


def image_for(task) -> str:
    settings = runner()
    return f"{settings.registry}/{image_name(task)}:{settings.tag}"


def _stage_config_classes() -> list[type[luigi.Config]]:
    return sorted(
        (cls for cls in Register._get_reg().values()
         if isinstance(cls, type) and issubclass(cls, luigi.Config) and cls.__module__.startswith("stages.")
         and cls is not runner),
        key=lambda cls: cls.get_task_family(),
    )


def task_arguments(task) -> list[str]:
    """``<Task> --param value ...`` plus every stage setting in force here, so the container sees the same
    settings even when they came from this process's command line rather than a file."""
    arguments = [task.get_task_family()]
    for name, value in task.to_str_params().items():
        arguments += [f"--{name.replace('_', '-')}", value]
    for config_class in _stage_config_classes():
        section = config_class.get_task_family()
        for name, value in config_class().to_str_params().items():
            arguments += [f"--{section}-{name.replace('_', '-')}", value]
    return arguments + ["--runner-mode", "inprocess"]


def _local_folders(arguments: list[str]) -> list[str]:
    """Host folders the container must see at the same path: local URIs among the settings."""
    folders = set()
    for value in arguments:
        if value.startswith("/") and not storage.is_s3(value):
            path = Path(value)
            folders.add(str(path if path.is_dir() else path.parent))
    return sorted(folders)


def _config_files() -> list[str]:
    return [path for path in luigi.configuration.get_config()._config_paths if os.path.isfile(path)]


def docker_command(task) -> list[str]:
    settings = runner()
    arguments = [_absolute(value) for value in task_arguments(task)]
    name = re.sub(r"[^a-zA-Z0-9_.-]", "-", task.task_id)[:128]
    command = [settings.docker, "run", "--rm", "--name", name]
    if settings.network:
        command += ["--network", settings.network]
    if task.needs_gpu() and settings.accelerator == "cuda":
        command += ["--gpus", settings.gpus]
    elif task.needs_gpu() and settings.accelerator == "tpu":
        command += ["--privileged"]  # Cloud TPU's way to hand a container the TPU VM's chips (/dev/accel*, /dev/vfio)
    for variable in PASSED_ENVIRONMENT:
        command += ["-e", variable]
    command += ["-e", f"{inputs.LISTINGS_VARIABLE}={inputs.listing_digests()}"]  # the input as the driver saw it
    config_files = _config_files()
    if config_files:
        # Luigi reads the last file of its path list last, so the container keeps this process's precedence.
        command += ["-v", f"{config_files[-1]}:{CONTAINER_CONFIG}:ro", "-e", f"LUIGI_CONFIG_PATH={CONTAINER_CONFIG}"]
    for folder in _local_folders(arguments):
        command += ["-v", f"{folder}:{folder}"]
    return command + [image_for(task)] + arguments


def _absolute(value: str) -> str:
    """Relative local paths mean nothing inside a container: make the ones that exist absolute."""
    if value and not value.startswith(("-", "/", "s3://")) and os.path.exists(value):
        return os.path.abspath(value)
    return value


def kubernetes_pod_spec(task) -> dict:
    """The Pod spec of the Job that runs ``task``: its stage image, its arguments, S3 settings."""
    settings = runner()
    container = {
        "name": image_name(task),
        "image": image_for(task),
        "args": task_arguments(task),
        "env": [*({"name": name, "value": os.environ[name]} for name in ("AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
                  if os.environ.get(name)),
                {"name": inputs.LISTINGS_VARIABLE, "value": inputs.listing_digests()}],
    }
    if settings.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.credentials_secret}}]
    spec = {
        "containers": [container],
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True},
    }
    if task.needs_gpu() and settings.accelerator == "cuda":
        container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    elif task.needs_gpu() and settings.accelerator == "tpu":
        container["resources"] = {"limits": {"google.com/tpu": settings.tpu_chips}}
        if settings.tpu_node_selector:
            spec["nodeSelector"] = dict(settings.tpu_node_selector)
    return spec


def job_name(task) -> str:
    """A DNS-1123 name (Kubernetes rejects anything else); luigi appends a time stamp and a unique id."""
    # Luigi appends 32 characters and Kubernetes allows 63; the task id ends in a hash of the parameters.
    return re.sub(r"[^a-z0-9-]", "-", f"hpa-{task.stage_name}-{task.task_id.rsplit('_', 1)[-1][:10]}".lower())


def run_in_docker(task) -> None:
    command = docker_command(task)
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{task}: container exited with status {completed.returncode}: {' '.join(command)}")


def run_in_kubernetes(task) -> None:
    from luigi.contrib.kubernetes import KubernetesJobTask

    class StageJob(KubernetesJobTask):
        name = job_name(task)
        spec_schema = kubernetes_pod_spec(task)
        kubernetes_namespace = runner().namespace

    StageJob().run()


def write_markers(task) -> None:
    folder = task.folder()
    if not task.spec.per_shard:  # what later tasks copy or read whole (Submission publishes them)
        for artifact in task.spec.outputs:
            if "{" not in artifact.name:
                storage.write_bytes(artifact.uri(folder), b"")
    storage.mark_done(folder)


def dispatch(task) -> None:
    """Run ``task.run_here()`` where the [runner] section says."""
    mode = runner().mode
    if mode == "inprocess":
        task.run_here()
    elif mode == "docker":
        run_in_docker(task)
    elif mode == "kubernetes":
        run_in_kubernetes(task)
    else:
        write_markers(task)
    if not task.complete():
        raise RuntimeError(f"{task}: the {mode} run ended but its output is missing: {task.output()}")

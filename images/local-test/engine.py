"""The Docker engine of a local image test: installed from Debian packages if missing, started without a
bridge network (containers use --network host or none, so no traffic goes to private addresses), stopped
at the end, and the stand-in bases the stage images build on here.

The upstream bases (python slim, pytorch CUDA, tensorflow GPU) cannot be pulled where the project is
developed, so each is replaced by a local test base, named hpa-local-test/*, never pushed:
Debian 12's Python 3.11 from debootstrap, and on it the locked tensorflow-cpu, or the locked torch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Debian's docker.io client (20.10) runs `docker build` on the daemon's BuildKit with DOCKER_BUILDKIT=1.
# A newer client earlier on PATH hands BuildKit builds to buildx, which cannot be installed here, and
# its classic builder ignores <Dockerfile>.dockerignore and would send the whole repository (.venv too).
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
BUILD_ENV = {**os.environ, "DOCKER_BUILDKIT": "1"}
PYTHON_BASE = "hpa-local-test/python:3.11-bookworm"
# Stand-in for each upstream base variable of docker-bake.hcl: (image, Dockerfile under images/local-test)
STANDINS = {
    "CPU_BASE_IMAGE": (PYTHON_BASE, None),
    "TF_BASE_IMAGE": ("hpa-local-test/tf:2.21.0", "tf.Dockerfile"),
    "TORCH_BASE_IMAGE": ("hpa-local-test/torch:2.14.1", "torch.Dockerfile"),
}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def docker(*args: str, capture: bool = False, **kwargs) -> str:
    if capture:
        kwargs["stdout"] = subprocess.PIPE
    done = subprocess.run([DOCKER, *args], check=True, text=True, env=BUILD_ENV, **kwargs)
    return done.stdout.strip() if capture else ""


def image_exists(name: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def image_size(name: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", name, capture=True))


def install_tools() -> None:
    missing = [tool for tool, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"))
               if not shutil.which(tool) and not Path("/usr/sbin", tool).exists()]
    if missing or not Path(DOCKER).exists():
        print("installing docker.io and debootstrap from Debian ...", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "docker.io", "debootstrap"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _daemon_answers() -> bool:
    return subprocess.run([DOCKER, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@contextlib.contextmanager
def engine(log_dir: Path):
    """A running dockerd for the block; one that was already running is used and left running."""
    if _daemon_answers():
        yield
        return
    log = open(log_dir / "dockerd.log", "w")
    daemon = subprocess.Popen(["dockerd", "--bridge=none", "--iptables=false"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _daemon_answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start: see {log_dir / 'dockerd.log'}")
            time.sleep(0.5)
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def python_base() -> None:
    """Debian 12 minbase with python3 and pip, imported as an image. The host's CA bundle goes in: package
    installs reach the registries through a TLS proxy that only this bundle trusts."""
    if image_exists(PYTHON_BASE):
        return
    print(f"local test base {PYTHON_BASE}: debootstrap ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="hpa-standin-") as scratch:
        root = Path(scratch, "root")
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv",
                        "bookworm", str(root)], check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(CA_BUNDLE, root / CA_BUNDLE.lstrip("/"))
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", PYTHON_BASE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap root failed")


def framework_base(image: str, dockerfile: str, log_dir: Path) -> None:
    """A stand-in framework base: its Dockerfile with the lock as the only context (pip's constraints)."""
    with tempfile.TemporaryDirectory(prefix="hpa-standin-") as context, \
            open(log_dir / f"build-{dockerfile}.log", "w") as log:
        shutil.copyfile(REPO / "requirements.lock", Path(context, "requirements.lock"))
        shutil.copyfile(HERE / dockerfile, Path(context, "Dockerfile"))
        docker("build", "--network", "host", "--progress", "plain", "-t", image, context, stdout=log, stderr=log)


def standin_bases(log_dir: Path) -> dict[str, str]:
    """Build what is missing or stale (the layer cache answers for the rest); the bake variable overrides."""
    python_base()
    for image, dockerfile in STANDINS.values():
        if dockerfile:
            started = time.monotonic()
            framework_base(image, dockerfile, log_dir)
            print(f"local test base {image}: {image_size(image) / 1e9:.2f} GB, {time.monotonic() - started:.0f} s",
                  flush=True)
    return {variable: image for variable, (image, _) in STANDINS.items()}

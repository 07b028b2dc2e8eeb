# Stage images of the HPA single-cell pipeline: one target per stage, named like its folder
# (stages/<stage>/, images/<stage>/), all in the `default` group.
#
#   docker buildx bake -f docker-bake.hcl -f images/digests.hcl            # every stage image
#   docker buildx bake -f docker-bake.hcl -f images/digests.hcl segment    # one stage (and its base)
#   REGISTRY=ghcr.io/me TAG=0.1.0 docker buildx bake -f docker-bake.hcl -f images/digests.hcl --push
#
# images/digests.hcl is the digest lock: it sets the *_BASE_IMAGE variables below to "tag@sha256:..."
# once images/pin-digests has resolved them (see docs/containers.md). Without it, or while it holds tags
# only, the bases are pulled by their exact version tags.
#
# Layout: three base targets build images/base/Dockerfile on three pinned upstream images; every stage
# image starts FROM one of them through `contexts` ("target:..."), so the common layers are built once.
# Keep expressions here to plain strings, variable references and "${...}" interpolation: the static tests
# (tests/images/) evaluate this file themselves.

variable "REGISTRY" {
  default = "hpa-stages"
}

# Project version (pyproject.toml); the image tag defaults to it.
variable "VERSION" {
  default = "0.1.0"
}

variable "TAG" {
  default = VERSION
}

# Upstream bases, exact version tags (never latest). images/digests.hcl overrides them with tag@digest.
variable "CPU_BASE_IMAGE" {
  default = "python:3.11.16-slim-trixie"
}

variable "TORCH_BASE_IMAGE" {
  default = "pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime"
}

variable "TF_BASE_IMAGE" {
  default = "tensorflow/tensorflow:2.21.0-gpu"
}

group "default" {
  targets = ["manifest", "segment", "tile", "classify", "pseudolabel", "detect", "match", "fuse", "submit"]
}

group "bases" {
  targets = ["cpu-base", "torch-base", "tf-base"]
}

# Shared settings; not built itself (no Dockerfile of its own).
target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
  labels = {
    "org.opencontainers.image.version"     = VERSION
    "org.opencontainers.image.vendor"      = "hpa-stages"
    "org.opencontainers.image.description" = "HPA single-cell protein localisation pipeline (hpa-stages ${VERSION})"
  }
}

# ---------------------------------------------------------------- bases

target "cpu-base" {
  inherits   = ["_common"]
  dockerfile = "images/base/Dockerfile"
  args = {
    BASE_IMAGE = CPU_BASE_IMAGE
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages cpu-base"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/cpu-base:${TAG}"]
}

target "torch-base" {
  inherits   = ["_common"]
  dockerfile = "images/base/Dockerfile"
  args = {
    BASE_IMAGE = TORCH_BASE_IMAGE
    # The PyTorch image runs Python 3.12; pyproject.toml declares the tested ">=3.11,<3.12".
    PIP_IGNORE_REQUIRES_PYTHON = "1"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages torch-base"
    "org.opencontainers.image.base.name" = TORCH_BASE_IMAGE
  }
  tags = ["${REGISTRY}/torch-base:${TAG}"]
}

target "tf-base" {
  inherits   = ["_common"]
  dockerfile = "images/base/Dockerfile"
  args = {
    BASE_IMAGE = TF_BASE_IMAGE
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages tf-base"
    "org.opencontainers.image.base.name" = TF_BASE_IMAGE
  }
  tags = ["${REGISTRY}/tf-base:${TAG}"]
}

# ---------------------------------------------------------------- stages (CPU, on cpu-base)

target "manifest" {
  inherits   = ["_common"]
  dockerfile = "images/manifest/Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages manifest"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/manifest:${TAG}"]
}

target "tile" {
  inherits   = ["_common"]
  dockerfile = "images/tile/Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages tile"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/tile:${TAG}"]
}

target "match" {
  inherits   = ["_common"]
  dockerfile = "images/match/Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages match"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/match:${TAG}"]
}

target "fuse" {
  inherits   = ["_common"]
  dockerfile = "images/fuse/Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages fuse"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/fuse:${TAG}"]
}

target "submit" {
  inherits   = ["_common"]
  dockerfile = "images/submit/Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages submit"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/submit:${TAG}"]
}

# ---------------------------------------------------------------- stages (PyTorch CUDA, on torch-base)

target "segment" {
  inherits   = ["_common"]
  dockerfile = "images/segment/Dockerfile"
  contexts = {
    "torch-base" = "target:torch-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages segment"
    "org.opencontainers.image.base.name" = TORCH_BASE_IMAGE
  }
  tags = ["${REGISTRY}/segment:${TAG}"]
}

target "detect" {
  inherits   = ["_common"]
  dockerfile = "images/detect/Dockerfile"
  contexts = {
    "torch-base" = "target:torch-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages detect"
    "org.opencontainers.image.base.name" = TORCH_BASE_IMAGE
  }
  tags = ["${REGISTRY}/detect:${TAG}"]
}

# ---------------------------------------------------------------- stages (TensorFlow GPU, on tf-base)

target "classify" {
  inherits   = ["_common"]
  dockerfile = "images/classify/Dockerfile"
  contexts = {
    "tf-base" = "target:tf-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages classify"
    "org.opencontainers.image.base.name" = TF_BASE_IMAGE
  }
  tags = ["${REGISTRY}/classify:${TAG}"]
}

target "pseudolabel" {
  inherits   = ["_common"]
  dockerfile = "images/pseudolabel/Dockerfile"
  contexts = {
    "classify" = "target:classify"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages pseudolabel"
    "org.opencontainers.image.base.name" = TF_BASE_IMAGE
  }
  tags = ["${REGISTRY}/pseudolabel:${TAG}"]
}

# ---------------------------------------------------------------- Keras stages on JAX (SPEC 4: pinned CUDA/TPU runtimes)
# Chosen per run by [runner] keras_backend = jax (stages/runners.py): the -jax-cuda variant for NVIDIA GPUs
# (jax's CUDA 13 plugin wheels carry the CUDA libraries), the -jax-tpu one for Cloud TPU VMs (libtpu).
# Both start from cpu-base: no framework image is needed.

group "keras-jax" {
  targets = ["classify-jax-cuda", "pseudolabel-jax-cuda", "classify-jax-tpu", "pseudolabel-jax-tpu"]
}

target "classify-jax-cuda" {
  inherits   = ["_common"]
  dockerfile = "images/classify/jax-cuda.Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages classify-jax-cuda"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/classify-jax-cuda:${TAG}"]
}

target "pseudolabel-jax-cuda" {
  inherits   = ["_common"]
  dockerfile = "images/pseudolabel/jax-cuda.Dockerfile"
  contexts = {
    "classify-jax-cuda" = "target:classify-jax-cuda"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages pseudolabel-jax-cuda"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/pseudolabel-jax-cuda:${TAG}"]
}

target "classify-jax-tpu" {
  inherits   = ["_common"]
  dockerfile = "images/classify/jax-tpu.Dockerfile"
  contexts = {
    "cpu-base" = "target:cpu-base"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages classify-jax-tpu"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/classify-jax-tpu:${TAG}"]
}

target "pseudolabel-jax-tpu" {
  inherits   = ["_common"]
  dockerfile = "images/pseudolabel/jax-tpu.Dockerfile"
  contexts = {
    "classify-jax-tpu" = "target:classify-jax-tpu"
  }
  labels = {
    "org.opencontainers.image.title"     = "hpa-stages pseudolabel-jax-tpu"
    "org.opencontainers.image.base.name" = CPU_BASE_IMAGE
  }
  tags = ["${REGISTRY}/pseudolabel-jax-tpu:${TAG}"]
}

# Digest lock of the upstream base images, read by docker-bake.hcl:
#   docker buildx bake -f docker-bake.hcl -f images/digests.hcl
# Written by images/pin-digests (docker buildx imagetools inspect); do not edit by hand.
# Each value is the exact tag from docker-bake.hcl, followed by "@sha256:<digest>" once resolved.
# A value without "@sha256:" is not pinned yet: digests cannot be looked up where this file was
# written (no registry), and none is ever invented. Run images/pin-digests where a registry is reachable
# and commit the result.
CPU_BASE_IMAGE = "python:3.11.16-slim-trixie"
TORCH_BASE_IMAGE = "pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime"
TF_BASE_IMAGE = "tensorflow/tensorflow:2.21.0-gpu"

# Local test base standing in for pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime, which cannot be pulled
# where the project is developed: Debian 12's Python 3.11 (hpa-local-test/python, made by
# images/local-test/build) with the locked torch and torchvision and their dependencies at their locked
# versions. That torch is PyPI's build for CUDA 13 (the lock's nvidia-* wheels); it runs on the CPU here.
# triton goes, as in the project's environment (SPEC 5: TensorFlow then torchvision segfaults beside it).
# Named hpa-local-test/*, never pushed; only images/local-test/build uses it.
# hadolint ignore=DL3006
FROM hpa-local-test/python:3.11-bookworm

COPY requirements.lock /tmp/requirements.lock
RUN python3 -m pip install --no-cache-dir --break-system-packages -c /tmp/requirements.lock torch==2.14.1 torchvision==0.29.1 \
 && python3 -m pip uninstall --yes --break-system-packages triton \
 && rm /tmp/requirements.lock

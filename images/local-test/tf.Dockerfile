# Local test base standing in for tensorflow/tensorflow:2.21.0-gpu, which cannot be pulled where the
# project is developed: Debian 12's Python 3.11 (hpa-local-test/python, made by images/local-test/build)
# with the CPU build of the locked TensorFlow release and its dependencies at their locked versions.
# Named hpa-local-test/*, never pushed; only images/local-test/build uses it.
# hadolint ignore=DL3006
FROM hpa-local-test/python:3.11-bookworm

COPY requirements.lock /tmp/requirements.lock
RUN python3 -m pip install --no-cache-dir --break-system-packages -c /tmp/requirements.lock tensorflow-cpu==2.21.0 \
 && rm /tmp/requirements.lock

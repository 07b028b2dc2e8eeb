# Stage image: classify on Keras 3 with the JAX backend, for Cloud TPU VMs: jax with libtpu (docker run
# --privileged hands the container the VM's chips), on cpu-base (python slim).
# Chosen per run by [runner] keras_backend = jax (stages/runners.py); bake target classify-jax-tpu.
# No TensorFlow: the models are built from the keras_applications backbone source ([classify]
# backbone_source = keras_applications); efficientnet.tfkeras needs TensorFlow. The smoke test imports the
# runtime only: without the accelerator, jax runs on the CPU.
# hadolint ignore=DL3006
FROM cpu-base

USER 0
ENV KERAS_BACKEND=jax
COPY images/classify/requirements-jax-tpu.txt /tmp/requirements-classify.txt
RUN python3 -m pip install --no-cache-dir -r /tmp/requirements-classify.txt \
 && rm /tmp/requirements-classify.txt \
 && HOME=/tmp/smoke-home python3 -c "import jax, libtpu, keras; assert jax.__version__ == '0.10.2', jax.__version__; assert keras.backend.backend() == 'jax'" \
 && rm -rf /tmp/smoke-home

USER 10001:10001
WORKDIR /home/hpa
ENTRYPOINT ["python3", "-m", "stages.runstage"]
CMD ["PredictCells"]

# Stage image: pseudolabel on Keras 3 with the JAX backend, for NVIDIA GPUs: the same Keras models as
# classify-jax-cuda, so it is built FROM that image (bake supplies it as the named context
# "classify-jax-cuda") and adds no package of its own. Chosen per run by [runner] keras_backend = jax.
# hadolint ignore=DL3006
FROM classify-jax-cuda

USER 10001:10001
WORKDIR /home/hpa
ENTRYPOINT ["python3", "-m", "stages.runstage"]
CMD ["PseudoLabel"]

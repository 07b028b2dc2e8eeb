# Stage image: pseudolabel on Keras 3 with the JAX backend, for Cloud TPU VMs: the same Keras models as
# classify-jax-tpu, so it is built FROM that image (bake supplies it as the named context
# "classify-jax-tpu") and adds no package of its own. Chosen per run by [runner] keras_backend = jax.
# hadolint ignore=DL3006
FROM classify-jax-tpu

USER 10001:10001
WORKDIR /home/hpa
ENTRYPOINT ["python3", "-m", "stages.runstage"]
CMD ["PseudoLabel"]

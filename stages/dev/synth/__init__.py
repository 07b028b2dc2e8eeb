"""Synthetic HPA-like data with per-cell truth: ``python -m stages.dev.synth --out DIR`` (see :mod:`.core`)."""

from .core import SynthImage, generate_image, image_id, write_dataset

__all__ = ["SynthImage", "generate_image", "image_id", "write_dataset"]

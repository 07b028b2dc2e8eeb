"""Developer and user tools that are not pipeline stages: the synthetic HPA-like data generator with per-cell
truth (``python -m stages.dev.synth``), the check that the demo models really learn
(``python -m stages.dev.learning``) and the command that draws segmentation outlines over the images of a
split (``python -m stages.dev.overlay``). No Luigi task lives here.
"""

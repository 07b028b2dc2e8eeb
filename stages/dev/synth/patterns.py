"""The green channel's patterns, one per class (SPEC 6): each takes the scene and the ids of the cells that
show the class and returns a field; :func:`stages.dev.synth.render.green` masks it to those cells and scales
it by the cell's brightness. Object-like patterns are drawn only for those cells."""

from __future__ import annotations

import numpy as np

from ...classes import NUM_CLASSES
from .textures import blur, contour_lines, dots, fill_ellipse, lookup, periodic_profile

def _pixel_grid(scene) -> tuple[np.ndarray, np.ndarray]:
    height, width = scene.shape
    return np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]


# ---- green: one pattern per class -------------------------------------------------------------------------
# Each takes the scene and the ids of the cells that show the class and returns a field; the caller masks it
# to those cells and scales it by the cell's brightness. Object-like patterns are drawn only for those cells.

def _nucleoplasm(scene, cells):
    texture = 0.85 + 0.15 * scene.noise("nucleoplasm", 0.03)
    return scene.nucleus * 0.6 * texture * (1 - 0.8 * blur(scene.nucleoli, scene.px(0.01)))


def _nuclear_membrane(scene, cells):
    texture = 0.75 + 0.25 * scene.noise("membrane", 0.05)
    return 0.9 * np.exp(-np.square(scene.nucleus_edge / scene.px(0.018, 1.0))) * texture


def _nucleoli(scene, cells):
    return 1.3 * blur(scene.nucleoli, scene.px(0.008, 0.5))


def _fibrillar_center(scene, cells):
    sigma = scene.px(0.007, 0.6)
    # Bright dots clustered inside the nucleoli, apart enough to stay separate even in small images.
    return 1.4 * dots(scene.rng("fibrillar"), scene.nucleoli > 0.5, max(3.0 * sigma, 2.8), sigma)


def _speckles(scene, cells):
    sigma = scene.px(0.012)
    core = scene.nucleus & (scene.nucleus_edge > scene.px(0.03, 1.0))
    return dots(scene.rng("speckles"), core, 4.0 * sigma, sigma) + 0.08 * scene.nucleus


def _nuclear_bodies(scene, cells):
    rng = scene.rng("nuclear-bodies")
    canvas = np.zeros(scene.shape, np.float32)
    layout = scene.layout
    for cell in cells:
        (cy, cx), (major, minor), tilt = layout.centre[cell], layout.axes[cell], layout.angle[cell]
        for _ in range(int(rng.integers(1, 4))):
            r, phi = 0.7 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            along, across = r * major * np.cos(phi), r * minor * np.sin(phi)
            y = cy + along * np.sin(tilt) + across * np.cos(tilt)
            x = cx + along * np.cos(tilt) - across * np.sin(tilt)
            size = scene.px(0.05, 1.8) * rng.uniform(0.8, 1.2)
            fill_ellipse(canvas, (y, x), (size, size), 0, rng.uniform(1.2, 1.5))
    return blur(canvas, scene.px(0.008, 0.5)) * scene.nucleus


def _er(scene, cells):
    envelope = np.exp(-np.square(scene.nucleus_edge / scene.px(0.02)))
    mesh = scene.cytoplasm * scene.er_mesh * (0.5 + 0.7 * scene.perinuclear)
    return np.maximum(mesh, 0.6 * envelope * scene.inside) + 0.06 * scene.cytoplasm


def _golgi(scene, cells):
    rng = scene.rng("golgi")
    canvas = np.zeros(scene.shape, np.float32)
    for cell in cells:
        side, room = scene.side_angle(rng, cell)
        for _ in range(int(rng.integers(6, 11))):
            # Stacks hug the nucleus as a crescent: scattered along the outline more than away from it.
            size = min(scene.px(0.06, 1.3) * rng.uniform(0.7, 1.3), 0.5 * room)
            gap = min(scene.unit * rng.uniform(0.02, 0.1), room - size)
            y, x = scene.near_nucleus(cell, side + rng.normal(0, 0.3), max(gap, 0.0) + 0.5 * size)
            fill_ellipse(canvas, (y, x), (size, size * rng.uniform(0.4, 0.8)), rng.uniform(0, 180),
                         rng.uniform(0.5, 0.9))
    return blur(canvas, scene.px(0.01, 0.5)) * scene.cytoplasm


def _intermediate_filaments(scene, cells):
    rng = scene.rng("filaments")
    ys, xs = _pixel_grid(scene)
    heading = scene.per_cell(rng.uniform(0, np.pi, scene.layout.count + 1))
    # Contours of a tilted ramp plus strong smooth noise: long, wavy, roughly parallel filaments.
    ramp = (xs * np.cos(heading) + ys * np.sin(heading)) / scene.px(0.1, 3.0)
    strength = rng.uniform(0, 1, 64).astype(np.float32) ** 2
    lines = contour_lines(ramp + 3.0 * scene.noise("filaments-wave", 0.4), scene.px(0.009), strength)
    return scene.cytoplasm * lines * (0.5 + 0.6 * scene.perinuclear)


def _actin(scene, cells):
    rng = scene.rng("actin")
    tilt = scene.per_cell(rng.uniform(0, np.pi, scene.layout.count + 1))
    ys, xs = _pixel_grid(scene)
    across = (xs * np.sin(tilt) - ys * np.cos(tilt)) / scene.px(0.02, 0.5)
    fibres = lookup(periodic_profile(rng, 512), across)
    # Stress fibres end and restart along their length; the cell cortex is bright.
    broken = np.clip(0.5 + 0.6 * scene.noise("actin-breaks", 0.2), 0, 1)
    cortex = np.exp(-scene.border_depth / scene.px(0.025, 1.0))
    return scene.inside * np.maximum(fibres * broken * np.where(scene.nucleus, 0.5, 1.0), 0.9 * cortex)


def _microtubules(scene, cells):
    return scene.inside * np.where(scene.nucleus, 0.2, 0.8) * (0.1 + 0.9 * scene.microtubules)


def _spindle(scene, cells):
    layout = scene.layout
    along, across = scene.nucleus_frame
    # The spindle axis is perpendicular to the chromosome plate (the mitotic nucleus' major axis).
    length = scene.per_cell(layout.axes[:, 0]) * 1.15
    spine, lateral = across / length, along / (0.85 * length)
    profile = np.clip(1 - spine * spine, 0, None)
    body = np.abs(lateral) < profile
    fibres = lookup(periodic_profile(scene.rng("spindle"), 64), 24 * lateral / (profile + 0.05))
    poles = np.exp(-(np.square(np.abs(spine) - 1) * np.square(length) + np.square(lateral * 0.85 * length))
                   / (2 * scene.px(0.02, 0.8) ** 2))
    mitotic = scene.per_cell(layout.mitotic)
    return mitotic * np.maximum(body * (0.35 + 0.65 * fibres) * (0.6 + 0.4 * profile), poles)


def _centrosome(scene, cells):
    rng = scene.rng("centrosome")
    canvas = np.zeros(scene.shape, np.float32)
    size = scene.px(0.012, 1.2)
    for cell in cells:
        side, room = scene.side_angle(rng, cell)
        y, x = scene.near_nucleus(cell, side, min(scene.unit * rng.uniform(0.03, 0.08), 0.5 * room))
        fill_ellipse(canvas, (y, x), (size, size), 0, 1.0)
        if rng.uniform() < 0.6:  # a duplicated centrosome: two dots side by side
            turn = side + np.pi / 2
            fill_ellipse(canvas, (y + 2.5 * size * np.sin(turn), x + 2.5 * size * np.cos(turn)), (size, size), 0, 1.0)
    spots = blur(canvas, scene.px(0.006, 0.5))
    # Tiny but very bright: rescale so the blurred dots peak at full brightness whatever their pixel size.
    return 1.5 * spots / max(float(spots.max()), 1e-6) * scene.inside


def _plasma_membrane(scene, cells):
    texture = 0.8 + 0.2 * scene.noise("plasma-membrane", 0.05)
    return 0.9 * np.exp(-np.square(scene.border_depth / scene.px(0.018, 1.0))) * texture * scene.inside


def _mitochondria(scene, cells):
    worms = contour_lines(0.15 * scene.noise("mito", 0.05), scene.px(0.011))
    # A second field switches the contours on and off, cutting them into short rods and worms.
    gate = np.clip((scene.noise("mito-gate", 0.05) - 0.2) * 2.0, 0, 1)
    return scene.cytoplasm * worms * gate * (0.6 + 0.5 * scene.perinuclear)


def _aggresome(scene, cells):
    rng = scene.rng("aggresome")
    canvas = np.zeros(scene.shape, np.float32)
    for cell in cells:
        side, room = scene.side_angle(rng, cell)
        size = min(scene.px(0.11, 2.0) * rng.uniform(0.8, 1.2), 0.45 * room)
        y, x = scene.near_nucleus(cell, side, 1.1 * size)
        fill_ellipse(canvas, (y, x), (size, size * rng.uniform(0.7, 1.0)), rng.uniform(0, 180), 1.0)
    return blur(canvas, scene.px(0.015, 0.6)) * scene.cytoplasm + 0.05 * scene.cytoplasm


def _cytosol(scene, cells):
    texture = 0.88 + 0.12 * scene.noise("cytosol", 0.05)
    return 0.5 * texture * np.where(scene.nucleus, 0.15, 1.0) * scene.inside


def _vesicles(scene, cells):
    sigma = scene.px(0.014, 0.8)
    return dots(scene.rng("vesicles"), scene.cytoplasm, 5.0 * sigma, sigma)


PATTERNS = (
    _nucleoplasm, _nuclear_membrane, _nucleoli, _fibrillar_center, _speckles, _nuclear_bodies, _er, _golgi,
    _intermediate_filaments, _actin, _microtubules, _spindle, _centrosome, _plasma_membrane, _mitochondria,
    _aggresome, _cytosol, _vesicles,
)
assert len(PATTERNS) == NUM_CLASSES - 1  # Negative has no pattern



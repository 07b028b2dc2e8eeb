"""Paint the four stains of a layout: blue nuclei, red microtubules, yellow ER, green per the cells' classes.

Every renderer returns a float32 field, ~0..1 where the stain is bright; :func:`to_uint8` adds the camera
(offset, noise, gain). Lengths are fractions of ``layout.unit`` (the typical cell radius) with a floor in
pixels, so a 256 px and a 2048 px image show the same cells at different resolutions.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from ..classes import NEGATIVE, NUM_CLASSES
from .layout import Layout
from .textures import blur, contour_lines, dots, fill_ellipse, lookup, periodic_profile, smooth_noise


class Scene:
    """Per-pixel geometry of a layout plus the textures several stains share (red fibres, ER mesh)."""

    def __init__(self, layout: Layout, seed: int):
        self.layout = layout
        self.seed = seed
        self.unit = layout.unit
        self.shape = layout.cells.shape

    def rng(self, tag: str) -> np.random.Generator:
        """An independent stream per texture: drawing one class's pattern never shifts another's."""
        return np.random.default_rng([self.seed, *tag.encode()])

    def px(self, fraction: float, floor: float = 0.7) -> float:
        return max(floor, fraction * self.unit)

    def per_cell(self, values) -> np.ndarray:
        """Broadcast a per-cell array (row 0 = background) to the image."""
        values = np.asarray(values)
        if values.dtype == np.float64:  # float32 keeps every later full-image operation half the cost
            values = values.astype(np.float32)
        return values[self.layout.cells]

    def noise(self, tag: str, fraction: float) -> np.ndarray:
        return smooth_noise(self.rng(tag), *self.shape, self.px(fraction, 0.5))

    # ---- geometry -------------------------------------------------------------------------------------

    @cached_property
    def inside(self) -> np.ndarray:
        return self.layout.cells > 0

    @cached_property
    def nucleus(self) -> np.ndarray:
        return self.layout.nuclei > 0

    @cached_property
    def cytoplasm(self) -> np.ndarray:
        return self.inside & ~self.nucleus

    @cached_property
    def offset(self) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) of every pixel from its own cell's nucleus centre."""
        height, width = self.shape
        centre = self.layout.centre
        dy = np.arange(height, dtype=np.float32)[:, None] - self.per_cell(centre[:, 0])
        dx = np.arange(width, dtype=np.float32)[None, :] - self.per_cell(centre[:, 1])
        return dy, dx

    @cached_property
    def radial(self) -> tuple[np.ndarray, np.ndarray]:
        dy, dx = self.offset
        return np.hypot(dy, dx), np.arctan2(dy, dx)

    @cached_property
    def nucleus_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates along and across each nucleus's major axis."""
        dy, dx = self.offset
        cos, sin = self.per_cell(np.cos(self.layout.angle)), self.per_cell(np.sin(self.layout.angle))
        return dx * cos + dy * sin, -dx * sin + dy * cos

    @cached_property
    def border_depth(self) -> np.ndarray:
        """Distance to the nearest cell border (between two cells or a cell and background)."""
        return _distance_to_edges(self.layout.cells)

    @cached_property
    def nucleus_edge(self) -> np.ndarray:
        """Distance to the nearest nucleus outline, inside or outside it."""
        return _distance_to_edges((self.layout.nuclei > 0).astype(np.uint16))

    @cached_property
    def perinuclear(self) -> np.ndarray:
        """1 at the nucleus, decaying through the cytoplasm: organelles crowd around the nucleus."""
        outside = np.where(self.nucleus, 0, self.nucleus_edge)
        return np.exp(-outside / self.px(0.4)).astype(np.float32)

    @cached_property
    def nucleoli(self) -> np.ndarray:
        canvas = np.zeros(self.shape, np.float32)
        for _, y, x, ry, rx, angle in self.layout.nucleoli:
            fill_ellipse(canvas, (y, x), (ry, rx), angle, 1.0)
        return canvas * self.nucleus

    def nucleus_radius(self, cell: int, angle) -> np.ndarray:
        """Distance from the nucleus centre of ``cell`` to its outline in direction ``angle``."""
        (major, minor), tilt = self.layout.axes[cell], self.layout.angle[cell]
        beta = np.asarray(angle) - tilt
        return major * minor / np.hypot(minor * np.cos(beta), major * np.sin(beta))

    def near_nucleus(self, cell: int, angle: float, gap: float) -> tuple[float, float]:
        """The point ``gap`` pixels outside the nucleus outline of ``cell`` in direction ``angle``."""
        cy, cx = self.layout.centre[cell]
        reach = float(self.nucleus_radius(cell, angle)) + gap
        return cy + reach * np.sin(angle), cx + reach * np.cos(angle)

    def cytoplasm_room(self, cell: int, directions: int = 24) -> tuple[np.ndarray, np.ndarray]:
        """(angles, depth): how far the cell's own cytoplasm reaches beyond the nucleus in each direction."""
        angles = np.linspace(0, 2 * np.pi, directions, endpoint=False)
        steps = np.linspace(0, 1.5 * self.unit, 48)
        reach = self.nucleus_radius(cell, angles)[:, None] + steps[None, :]
        cy, cx = self.layout.centre[cell]
        ys = np.rint(cy + reach * np.sin(angles)[:, None]).astype(int)
        xs = np.rint(cx + reach * np.cos(angles)[:, None]).astype(int)
        height, width = self.shape
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        own = np.zeros(ys.shape, bool)
        own[inside] = self.layout.cells[ys[inside], xs[inside]] == cell
        # Depth = the run of own pixels from the nucleus outward (stops at the first foreign pixel).
        depth = np.argmin(np.c_[own, np.zeros(len(angles), bool)], axis=1) * (steps[1] - steps[0])
        return angles, depth

    def side_angle(self, rng: np.random.Generator, cell: int) -> tuple[float, float]:
        """A direction where the cytoplasm is wide, favouring the widest, and the room there in pixels."""
        angles, depth = self.cytoplasm_room(cell)
        weights = depth ** 3 + 1e-9
        pick = int(rng.choice(len(angles), p=weights / weights.sum()))
        return float(angles[pick] + rng.normal(0, 0.1)), float(depth[pick])

    # ---- shared textures ------------------------------------------------------------------------------

    @cached_property
    def microtubules(self) -> np.ndarray:
        """Fibres radiating from the nucleus, slightly curled and wavy."""
        rng = self.rng("microtubules")
        distance, theta = self.radial
        curl = self.per_cell(rng.normal(0, 0.15, self.layout.count + 1))
        phase = self.per_cell(rng.uniform(0, 840, self.layout.count + 1))
        bend = theta + curl * distance / self.unit + 0.12 * self.noise("microtubules-bend", 0.3)
        return lookup(periodic_profile(rng, 840), bend * (840 / (2 * np.pi)) + phase)

    @cached_property
    def er_mesh(self) -> np.ndarray:
        """Two families of iso-contours of fine noise cross into a reticular network."""
        width = self.px(0.007)
        first = contour_lines(0.15 * self.noise("er-a", 0.035), width)
        second = contour_lines(0.15 * self.noise("er-b", 0.05), width)
        return np.maximum(first, second)


def _pixel_grid(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    height, width = scene.shape
    return np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]


def _distance_to_edges(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)


# ---- reference stains -------------------------------------------------------------------------------------

def blue(scene: Scene) -> np.ndarray:
    rng = scene.rng("blue")
    layout = scene.layout
    level = rng.uniform(0.55, 1.0, layout.count + 1) * np.where(layout.mitotic, 1.5, 1.0)
    # Chromatin texture plus darker nucleoli (DAPI/Hoechst stains them weakly).
    texture = 0.85 + 0.15 * scene.noise("blue-texture", 0.04)
    field = scene.nucleus * scene.per_cell(level) * texture * (1 - 0.4 * blur(scene.nucleoli, scene.px(0.01)))
    return blur(field, scene.px(0.008, 0.5))


def red(scene: Scene) -> np.ndarray:
    rng = scene.rng("red")
    level = scene.per_cell(rng.uniform(0.45, 1.0, scene.layout.count + 1))
    # Dim cell borders help a watershed on red+yellow split touching cells, as in real cultures.
    rim = 1 - 0.35 * np.exp(-scene.border_depth / scene.px(0.03))
    body = np.where(scene.nucleus, 0.2, 1.0) * (0.4 + 0.6 * scene.microtubules)
    return blur(scene.inside * level * rim * body, scene.px(0.004, 0.4))


def yellow(scene: Scene) -> np.ndarray:
    rng = scene.rng("yellow")
    level = scene.per_cell(rng.uniform(0.45, 1.0, scene.layout.count + 1))
    rim = 1 - 0.35 * np.exp(-scene.border_depth / scene.px(0.03))
    envelope = np.exp(-np.square(scene.nucleus_edge / scene.px(0.02)))
    body = np.where(scene.nucleus, 0.12, (0.3 + 0.7 * scene.er_mesh) * (0.6 + 0.6 * scene.perinuclear))
    return blur(scene.inside * level * rim * np.maximum(body, 0.7 * envelope), scene.px(0.004, 0.4))


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


def green(scene: Scene, cell_classes: list[list[int]]) -> np.ndarray:
    """Sum of the class patterns, each masked to the cells showing it and scaled by a per-cell brightness."""
    rng = scene.rng("green")
    count = scene.layout.count
    field = np.zeros(scene.shape, np.float32)
    for cls in range(NEGATIVE):
        shows = np.zeros(count + 1, bool)
        shows[1:] = [cls in classes for classes in cell_classes]
        # Drawn for every class so a class's brightness does not depend on which other classes are present.
        level = rng.lognormal(0.0, 0.35, count + 1).astype(np.float32)
        if not shows.any():
            continue
        pattern = PATTERNS[cls](scene, np.flatnonzero(shows))
        field += scene.per_cell(np.where(shows, level, 0).astype(np.float32)) * pattern
    return blur(field, scene.px(0.004, 0.4))


def to_uint8(rng: np.random.Generator, field: np.ndarray, gain: float) -> np.ndarray:
    """The camera: dark offset, signal-dependent and read noise, 8-bit clipping."""
    signal = np.maximum(field, 0) * np.float32(gain * 255.0)  # textures are noise-modulated: no negative light
    offset = np.float32(rng.uniform(1.0, 6.0))
    read_noise = rng.uniform(1.0, 2.5)
    sigma = signal * np.float32(0.6)
    sigma += np.float32(read_noise ** 2)
    np.sqrt(sigma, out=sigma)
    noisy = rng.standard_normal(field.shape, dtype=np.float32)
    noisy *= sigma
    noisy += signal
    noisy += offset
    return np.clip(noisy, 0, 255, out=noisy).round().astype(np.uint8)

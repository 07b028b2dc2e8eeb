"""Paint the four stains of a layout: blue nuclei, red microtubules, yellow ER, green per the cells' classes.

Every renderer returns a float32 field, ~0..1 where the stain is bright; :func:`to_uint8` adds the camera
(offset, noise, gain). Lengths are fractions of ``layout.unit`` (the typical cell radius) with a floor in
pixels, so a 256 px and a 2048 px image show the same cells at different resolutions.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from ...classes import NEGATIVE
from .layout import Layout
from .patterns import PATTERNS
from .textures import blur, contour_lines, fill_ellipse, lookup, periodic_profile, smooth_noise


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

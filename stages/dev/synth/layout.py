"""Where the cells and nuclei are: a confluent culture of irregular blobs, one elliptical nucleus each."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from .textures import lookup, smooth_noise

SHAPE_SAMPLES = 720

# Per-cell arrays are indexed by cell id; row 0 stands for the background so that ``array[labels]`` works.


@dataclass
class Layout:
    cells: np.ndarray           # uint16 H x W, 0 background, 1..count
    nuclei: np.ndarray          # uint16 H x W, same id as the cell that holds the nucleus
    unit: float                 # typical cell radius in pixels: every length in the renderers scales with it
    centre: np.ndarray          # (count+1, 2) float32 nucleus centre (y, x)
    axes: np.ndarray            # (count+1, 2) float32 nucleus semi-axes (major, minor)
    angle: np.ndarray           # (count+1,) float32 nucleus major-axis angle, radians, image (x right, y down)
    radius: np.ndarray          # (count+1,) float32 nominal cell radius
    mitotic: np.ndarray         # (count+1,) bool: round cell, condensed chromatin plate for a nucleus
    nucleoli: np.ndarray        # (k, 6) float32 rows (cell, y, x, semi-axis 1, semi-axis 2, angle in degrees)

    @property
    def count(self) -> int:
        return len(self.radius) - 1


def default_cell_count(height: int, width: int) -> float:
    """~25 cells in a 2048 px field, ~10 in 512 px: cells shrink with the field, so small test images still
    hold several cells (count grows with the cube root of the area)."""
    return 25.0 * (height * width / 2048.0 ** 2) ** (1.0 / 3.0)


def make_layout(rng: np.random.Generator, height: int, width: int, mean_cells: float,
                min_mitotic: int = 0, mitotic_rate: float = 0.03) -> Layout:
    """Draw a layout holding at least one cell and ``min_mitotic`` mitotic cells (redrawn until it does)."""
    for _ in range(20):
        layout = _draw_layout(rng, height, width, mean_cells, min_mitotic, mitotic_rate)
        if layout.count >= 1 and int(layout.mitotic.sum()) >= min_mitotic:
            return layout
    raise RuntimeError(f"could not place {min_mitotic} mitotic cells in a {height}x{width} image")


def _seeds(rng, height, width, count, spacing):
    """Dart throwing: random points no closer than ``spacing``, so no cell swallows its neighbour."""
    candidates = rng.uniform((0, 0), (height, width), size=(60 * count, 2))
    accepted: list[np.ndarray] = []
    for point in candidates:
        if not accepted or np.min(np.hypot(*(np.asarray(accepted) - point).T)) >= spacing:
            accepted.append(point)
            if len(accepted) == count:
                break
    return np.asarray(accepted)


def _draw_layout(rng, height, width, mean_cells, min_mitotic, mitotic_rate) -> Layout:
    # Narrower than Poisson: a 6-cell image drawing 2 cells would be mostly background, not a culture.
    count = max(1, int(round(mean_cells * rng.lognormal(0.0, 0.2))), min_mitotic)
    seeds = _seeds(rng, height, width, count, 1.15 * np.sqrt(height * width / (np.pi * count)))
    count = len(seeds)
    # Cell size follows the cells actually placed, so the field stays confluent whatever the count.
    unit = float(np.sqrt(height * width / (np.pi * count)))
    mitotic = rng.random(count) < mitotic_rate
    mitotic[:min_mitotic] = True
    confluence = rng.uniform(1.0, 1.2)  # > 1: neighbouring blobs overlap and share borders, like a confluent culture

    labels = np.zeros((height, width), np.uint16)
    best = np.full((height, width), np.inf, np.float32)
    radius = np.where(mitotic, rng.uniform(0.55, 0.7, count), rng.uniform(0.85, 1.2, count)) * unit * confluence
    elongation = np.where(mitotic, 0.0, rng.uniform(0.0, 0.35, count))
    major_angle = rng.uniform(0, np.pi, count)
    harmonics = rng.normal(0, 0.06, (count, 3)) * (~mitotic)[:, None]
    phases = rng.uniform(0, 2 * np.pi, (count, 3))
    # The blob fields are smooth, so they are evaluated on a grid ~50 samples per cell radius and upsampled.
    step = max(1.0, unit / 50.0)
    for index in range(count):
        reach = radius[index] * (1 + elongation[index] + np.abs(harmonics[index]).sum() + 0.15)
        y0, y1, x0, x1 = _box(seeds[index], reach, height, width)
        if y1 <= y0 or x1 <= x0:
            continue
        rows, cols = max(2, int(np.ceil((y1 - y0) / step))), max(2, int(np.ceil((x1 - x0) / step)))
        dy = _resize_grid(y0, y1, rows)[:, None] - np.float32(seeds[index, 0])
        dx = _resize_grid(x0, x1, cols)[None, :] - np.float32(seeds[index, 1])
        # The outline radius depends on the angle only: tabulate it once per cell, then look it up per pixel.
        angles = np.linspace(0, 2 * np.pi, SHAPE_SAMPLES, endpoint=False)
        outline = 1 + elongation[index] * np.cos(2 * (angles - major_angle[index]))
        for k in range(3):
            outline += harmonics[index, k] * np.cos((k + 3) * angles + phases[index, k])
        shape = lookup(outline.astype(np.float32), np.arctan2(dy, dx) * np.float32(SHAPE_SAMPLES / (2 * np.pi)))
        wobble = 0.0 if mitotic[index] else 0.07 * smooth_noise(rng, rows, cols, 0.25 * unit / step)
        coarse = (np.hypot(dy, dx) / (radius[index] * shape) + wobble).astype(np.float32)
        distance = cv2.resize(coarse, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        # Mitotic cells round up: they win the pixels of their disc over neighbours instead of sharing a border.
        priority = distance * 0.5 if mitotic[index] else distance
        window = best[y0:y1, x0:x1]
        mine = (distance < 1.0) & (priority < window)
        window[mine] = priority[mine]
        labels[y0:y1, x0:x1][mine] = index + 1

    return _finish(rng, labels, seeds, radius, major_angle, mitotic, unit)


def _resize_grid(start: int, stop: int, samples: int) -> np.ndarray:
    """Pixel coordinates of ``samples`` grid points that cv2.resize maps onto pixels ``start..stop-1``."""
    scale = (stop - start) / samples
    return (start + (np.arange(samples) + 0.5) * scale - 0.5).astype(np.float32)


def _box(centre, reach, height, width):
    y0, x0 = (int(max(0, np.floor(c - reach))) for c in centre)
    y1 = int(min(height, np.ceil(centre[0] + reach) + 1))
    x1 = int(min(width, np.ceil(centre[1] + reach) + 1))
    return y0, y1, x0, x1


def _finish(rng, labels, seeds, radius, major_angle, mitotic, unit) -> Layout:
    """Keep each cell's largest piece, drop slivers, place one nucleus per cell and number cells 1..N."""
    height, width = labels.shape
    cells = np.zeros_like(labels)
    nuclei = np.zeros_like(labels)
    rows: list[tuple] = []
    nucleoli: list[tuple] = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        old = index + 1
        pieces, found = ndimage.label(labels[box] == old)
        if found == 0:
            continue
        sizes = np.bincount(pieces.ravel())[1:]
        mask = pieces == (np.argmax(sizes) + 1)
        min_area = (0.1 if mitotic[index] else 0.2) * np.pi * unit ** 2
        if mask.sum() < min_area:
            continue
        # Distance to the cell border, with everything outside the crop (image edge included) counted as border:
        # an ellipse centred on the deepest point and smaller than that depth lies wholly inside the cell.
        padded = np.pad(mask, 1).astype(np.uint8)
        depth = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        inner = float(depth.max())
        if inner < 3.0:
            continue
        cy, cx = np.unravel_index(int(np.argmax(depth)), depth.shape)
        if mitotic[index]:
            major = min(0.6 * radius[index], 0.8 * inner)
            minor = major * rng.uniform(0.25, 0.35)
            angle = rng.uniform(0, np.pi)
        else:
            major = min(rng.uniform(0.45, 0.6) * radius[index], 0.8 * inner)
            minor = major * rng.uniform(0.65, 0.9)
            angle = major_angle[index] + rng.normal(0, 0.2)
        nucleus = _nucleus_mask(rng, mask.shape, (cy, cx), major, minor, angle) & mask
        new = len(rows) + 1
        cells[box][mask] = new
        nuclei[box][nucleus] = new
        y_off, x_off = box[0].start, box[1].start
        rows.append((cy + y_off, cx + x_off, major, minor, angle, radius[index], mitotic[index]))
        if not mitotic[index]:
            for _ in range(int(rng.integers(1, 5))):
                nucleoli.append(_nucleolus(rng, new, (cy + y_off, cx + x_off), major, minor, angle))

    table = np.array([(0, 0, 1, 1, 0, 1, False)] + rows, dtype=np.float64).reshape(-1, 7)
    return Layout(
        cells=cells, nuclei=nuclei, unit=unit,
        centre=table[:, 0:2].astype(np.float32), axes=table[:, 2:4].astype(np.float32),
        angle=table[:, 4].astype(np.float32), radius=table[:, 5].astype(np.float32),
        mitotic=table[:, 6].astype(bool),
        nucleoli=np.asarray(nucleoli, np.float32).reshape(-1, 6),
    )


def _nucleus_mask(rng, shape, centre, major, minor, angle):
    dy = np.arange(shape[0], dtype=np.float32)[:, None] - np.float32(centre[0])
    dx = np.arange(shape[1], dtype=np.float32)[None, :] - np.float32(centre[1])
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    theta = np.arctan2(across, along)
    # A slight dent or bulge: real nuclei are not perfect ellipses. Amplitude <= 5% keeps it inside the cell.
    bumps = 1 + 0.04 * np.cos(3 * theta + rng.uniform(0, 6.3)) * rng.uniform(0, 1)
    return np.square(along / (major * bumps)) + np.square(across / (minor * bumps)) <= 1.0


def _nucleolus(rng, cell, centre, major, minor, angle):
    """A nucleolus well inside the nucleus: its centre in the inner half of the ellipse, its size ~1/6 of it."""
    r, phi = np.sqrt(rng.uniform(0, 1)) * 0.5, rng.uniform(0, 2 * np.pi)
    along, across = r * major * np.cos(phi), r * minor * np.sin(phi)
    y = centre[0] + along * np.sin(angle) + across * np.cos(angle)
    x = centre[1] + along * np.cos(angle) - across * np.sin(angle)
    size = minor * rng.uniform(0.18, 0.3)
    return (cell, y, x, size, size * rng.uniform(0.6, 1.0), rng.uniform(0, 180))

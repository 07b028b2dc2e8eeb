"""Noise fields and drawing helpers shared by the channel renderers (all vectorised: numpy, scipy, cv2)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def smooth_noise(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Gaussian random field with unit standard deviation and correlation length ``scale`` pixels."""
    if scale <= 4:
        field = rng.standard_normal((height, width), dtype=np.float32)
        field = cv2.GaussianBlur(field, (0, 0), max(scale, 0.3))
    else:
        # Coarse noise blurred then upsampled: the cost stays proportional to the coarse grid, not the image.
        step = scale / 2.0
        small_h, small_w = int(np.ceil(height / step)) + 4, int(np.ceil(width / step)) + 4
        small = rng.standard_normal((small_h, small_w), dtype=np.float32)
        small = cv2.GaussianBlur(small, (0, 0), 2.0)
        big = cv2.resize(small, (int(small_w * step), int(small_h * step)), interpolation=cv2.INTER_LINEAR)
        offset = int(2 * step)
        field = big[offset:offset + height, offset:offset + width]
    field = field - field.mean()
    return (field / (field.std() + 1e-6)).astype(np.float32)


def contour_lines(field: np.ndarray, width: float, strength: np.ndarray | None = None) -> np.ndarray:
    """Thin lines of roughly constant ``width`` pixels along the integer iso-contours of ``field``.

    The zero set of smooth noise is a labyrinth (a reticular mesh when two are overlaid); a ramp plus
    noise gives long wavy parallel fibres that never close into rings. ``strength`` (a cyclic table)
    gives contour k the brightness ``strength[k]``, so not every fibre is equally bright.
    """
    gy, gx = np.gradient(field)
    nearest = np.round(field)
    # Distance to the nearest contour ~ value offset / gradient norm, which keeps the line width constant.
    distance = np.abs(field - nearest) / (np.hypot(gx, gy) + 1e-3)
    lines = np.exp(-np.square(distance / width)).astype(np.float32)
    if strength is not None:
        lines *= strength[nearest.astype(np.int64) % len(strength)]
    return lines


def periodic_profile(rng: np.random.Generator, length: int, sharpness: float = 1.5) -> np.ndarray:
    """A 1-D cyclic table of random peaks (~one per 3 entries), indexed by angle or position to draw
    parallel or radial fibres. Most peaks reach 0.5-1 so fibres have similar, not one-in-a-hundred, contrast."""
    table = ndimage.gaussian_filter1d(rng.standard_normal(length), 0.8, mode="wrap")
    table = np.clip(table / np.percentile(np.abs(table), 90), 0, 1)
    return (table ** sharpness).astype(np.float32)


def lookup(table: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``table`` sampled cyclically at fractional ``position`` (linear interpolation)."""
    length = len(table)
    wrapped = np.mod(position, np.float32(length)).astype(np.float32)
    extended = np.append(table, table[0]).astype(np.float32).reshape(1, -1)
    # cv2.remap is a fast vectorised 1-D interpolation here (the table is a one-row image).
    return cv2.remap(extended, wrapped, np.zeros_like(wrapped), cv2.INTER_LINEAR)


def dots(rng: np.random.Generator, region: np.ndarray, spacing: float, sigma: float) -> np.ndarray:
    """Gaussian dots of random brightness scattered over ``region`` about ``spacing`` pixels apart, peak ~1."""
    probability = min(1.0, 1.0 / max(spacing, 1.0) ** 2)
    impulses = np.zeros(region.shape, np.float32)
    hits = region & (rng.random(region.shape, dtype=np.float32) < probability)
    impulses[hits] = rng.uniform(0.4, 1.0, int(hits.sum())).astype(np.float32)
    # A blurred impulse peaks at 1 / (2 pi sigma^2): undo that so the dot's peak is its drawn brightness.
    return blur(impulses, sigma) * np.float32(2 * np.pi * sigma * sigma)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.2:
        return image.astype(np.float32, copy=False)
    return cv2.GaussianBlur(image.astype(np.float32, copy=False), (0, 0), sigma)


def subpixel(value: float) -> int:
    """cv2 drawing coordinates with 4 fractional bits (see ``shift=4``), so small shapes are not snapped."""
    return int(round(value * 16))


def fill_ellipse(canvas: np.ndarray, centre_yx, axes, angle_deg: float, value: float) -> None:
    cy, cx = centre_yx
    cv2.ellipse(canvas, (subpixel(cx), subpixel(cy)), (subpixel(max(axes[0], 0.5)), subpixel(max(axes[1], 0.5))),
                angle_deg, 0, 360, float(value), thickness=-1, lineType=cv2.LINE_AA, shift=4)

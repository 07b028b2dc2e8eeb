"""Reading a field of view: four stain channels -> one ``(H, W, 4)`` uint8 array (red, green, blue, yellow).

Kaggle ships 8-bit grey PNGs; the public HPA "external" data comes as colourised JPEG (each stain in its
display colour) or 16-bit PNG/TIFF. Everything is normalised to 8-bit grey here, once, so no stage ever
sees another format. 16-bit and float data are scaled linearly by the type's full range (not per image),
so a dim image stays dim: a per-image stretch would turn the Negative class's noise into signal.
"""

from __future__ import annotations

import cv2
import numpy as np

from stages import storage
from stages.classes import CHANNELS

CHANNEL_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class BadImageError(ValueError):
    """An input image that cannot be used; the message names the image and the file."""

    def __init__(self, image_id: str, file_uri: str, problem: str):
        super().__init__(f"image {image_id}: {file_uri}: {problem}")
        self.image_id = image_id
        self.file_uri = file_uri


def to_uint8_grey(pixels: np.ndarray) -> np.ndarray:
    """Any decoded channel (grey or colourised, 8/16-bit or float) as 2-D uint8."""
    if pixels.ndim == 3:
        # A colourised stain lies in its display colour's planes (yellow = red + green): the maximum over
        # the colour planes is the stain's grey value whatever the colour. An alpha plane is not a stain.
        pixels = pixels[..., :3].max(axis=2)
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(pixels, initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(pixels) * scale + 0.5, 0, 255).astype(np.uint8)
    info = np.iinfo(pixels.dtype)
    return np.clip(pixels.astype(np.float64) * 255.0 / info.max + 0.5, 0, 255).astype(np.uint8)


def decode_channel(data: bytes, image_id: str, file_uri: str) -> np.ndarray:
    if not data:
        raise BadImageError(image_id, file_uri, "the file is empty")
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise BadImageError(image_id, file_uri, "not a readable PNG, JPEG or TIFF image")
    if pixels.ndim not in (2, 3):
        raise BadImageError(image_id, file_uri, f"unexpected pixel array of shape {pixels.shape}")
    return to_uint8_grey(pixels)


def channel_file_name(image_id: str, channel: str, extension: str) -> str:
    return f"{image_id}_{channel}{extension}"


def read_field(folder_uri: str, image_id: str, files: dict[str, str]) -> np.ndarray:
    """The image's four channels stacked as ``(H, W, 4)`` uint8 in CHANNELS order.

    ``files`` maps each channel to its file name inside ``folder_uri`` (from the manifest); a channel
    without a file is an error naming the file that was expected.
    """
    planes = []
    for channel in CHANNELS:
        name = files.get(channel) or ""
        if not name:
            expected = storage.join(folder_uri, channel_file_name(image_id, channel, ".png"))
            raise BadImageError(image_id, expected, f"the {channel} channel file is missing")
        uri = storage.join(folder_uri, name)
        try:
            data = storage.read_bytes(uri)
        except storage.ArtifactNotFound:
            raise BadImageError(image_id, uri, f"the {channel} channel file is missing") from None
        planes.append((uri, decode_channel(data, image_id, uri)))
    shapes = {plane.shape for _, plane in planes}
    if len(shapes) != 1:
        sizes = ", ".join(f"{uri} is {plane.shape[1]}x{plane.shape[0]}" for uri, plane in planes)
        raise BadImageError(image_id, planes[0][0], f"channels differ in size: {sizes}")
    return np.stack([plane for _, plane in planes], axis=-1)


def composite(field: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB as the HPA shows it: microtubules and ER in red, protein in green, nuclei in blue."""
    red, green, blue, yellow = (field[..., index] for index in range(4))
    return np.stack([np.maximum(red, yellow), green, blue], axis=-1)

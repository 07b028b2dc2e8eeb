"""Reading a field of view: four stain channels -> one ``(H, W, 4)`` uint8 array (red, green, blue, yellow).

Kaggle ships 8-bit grey PNGs; the public HPA "external" data comes as colourised JPEG (each stain in its
display colour) or 16-bit PNG/TIFF. Everything is normalised to 8-bit grey here, once, so no stage ever
sees another format. 16-bit and float data are scaled linearly by the type's full range (not per image),
so a dim image stays dim: a per-image stretch would turn the Negative class's noise into signal.

Before any pixel is decoded, the file's header says its size (PNG: the IHDR chunk; JPEG: the SOF segment;
TIFF: the first page's tags, through tifffile), and a size over ``[pipeline] max_pixels`` is refused: a
small compressed file can claim a field that would take gigabytes to decode. The manifest stage reads the
same headers (:func:`image_size`) to validate every input image before any work.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import NamedTuple

import cv2
import numpy as np

from stages import storage
from stages.classes import CHANNELS

CHANNEL_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 6144 * 6144  # four times a 3072 px field, the largest real HPA field of view
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
# JPEG start-of-frame markers: 0xC0-0xCF but DHT (C4), JPG (C8) and DAC (CC)
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class BadImageError(ValueError):
    """An input image that cannot be used; the message names the image and the file."""

    def __init__(self, image_id: str, file_uri: str, problem: str):
        super().__init__(f"image {image_id}: {file_uri}: {problem}")
        self.image_id = image_id
        self.file_uri = file_uri
        self.problem = problem


class HeaderTruncated(ValueError):
    """The bytes end before the header says the image's size (read more of the file, or it is cut short)."""


class ImageSize(NamedTuple):
    format: str  # "PNG", "JPEG" or "TIFF"
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _png_size(data: bytes) -> ImageSize:
    if len(data) < 33:
        raise HeaderTruncated("the PNG ends before its IHDR chunk")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("a PNG signature but no IHDR chunk after it")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise ValueError("the PNG IHDR chunk fails its CRC")
    if width == 0 or height == 0 or colour not in (0, 2, 3, 4, 6) or depth not in (1, 2, 4, 8, 16):
        raise ValueError(f"the PNG IHDR says {width}x{height}, bit depth {depth}, colour type {colour}")
    return ImageSize("PNG", width, height)


def _jpeg_size(data: bytes) -> ImageSize:
    at = 2
    while True:
        start = at
        while at < len(data) and data[at] == 0xFF:  # a marker: 0xFF (and fill bytes), then its code
            at += 1
        if at >= len(data):
            raise HeaderTruncated("the JPEG ends before its frame header (SOF)")
        marker = data[at]
        if at == start or marker == 0x00:
            raise ValueError(f"the JPEG has no marker where one belongs (byte {start})")
        at += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("the JPEG reaches its image data without a frame header (SOF)")
        if at + 2 > len(data):
            raise HeaderTruncated("the JPEG ends before its frame header (SOF)")
        length = struct.unpack(">H", data[at:at + 2])[0]
        if marker in JPEG_FRAME_MARKERS:
            if at + 7 > len(data):
                raise HeaderTruncated("the JPEG ends inside its frame header (SOF)")
            height, width = struct.unpack(">HH", data[at + 3:at + 7])
            if width == 0 or height == 0:
                raise ValueError(f"the JPEG frame header says {width}x{height}")
            return ImageSize("JPEG", width, height)
        if length < 2:
            raise ValueError(f"a JPEG segment of length {length} at byte {at}")
        at += length


def _tiff_size(data: bytes) -> ImageSize:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages.first
            width, height = int(page.imagewidth), int(page.imagelength)
    except Exception as error:  # tifffile raises many kinds on a broken file
        raise ValueError(f"the TIFF tags do not read: {error}") from None
    if width == 0 or height == 0:
        raise ValueError(f"the TIFF says {width}x{height}")
    return ImageSize("TIFF", width, height)


def image_size(data: bytes, complete: bool = True) -> ImageSize:
    """The format and size a PNG, JPEG or TIFF file's header declares, without decoding a pixel.

    ``data`` is the file or, with ``complete=False``, its first bytes: :class:`HeaderTruncated` then asks for
    more (a TIFF's tags may lie anywhere, so a TIFF always needs the whole file). Any other
    :class:`ValueError` says why the header is not one of these formats' or does not read.
    """
    if data.startswith(PNG_SIGNATURE):
        return _png_size(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_size(data)
    if data[:4] in TIFF_SIGNATURES:
        if not complete:
            raise HeaderTruncated("a TIFF's tags are read from the whole file")
        return _tiff_size(data)
    if len(data) < 8 and not complete:
        raise HeaderTruncated("too few bytes to tell the format")
    raise ValueError(f"neither a PNG, a JPEG nor a TIFF signature (it starts with {data[:8]!r})")


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


def configured_max_pixels() -> int:
    """``[pipeline] max_pixels``: the largest field (width x height) any input image may declare."""
    from stages.config import pipeline

    return int(pipeline().max_pixels)


def over_cap(size: ImageSize, max_pixels: int) -> str:
    """Why a size is refused ("" when it is within the cap)."""
    if size.pixels <= max_pixels:
        return ""
    return (f"{size.width}x{size.height} = {size.pixels:,} pixels is over the cap of {max_pixels:,} "
            f"([pipeline] max_pixels): refused before decoding")


def decode_channel(data: bytes, image_id: str, file_uri: str, max_pixels: int | None = None) -> np.ndarray:
    """One channel file as 2-D uint8. Its header is read first: a file that declares more than ``max_pixels``
    (default: ``[pipeline] max_pixels``) is refused before anything is allocated for its pixels."""
    if not data:
        raise BadImageError(image_id, file_uri, "the file is empty")
    try:
        size = image_size(data)
    except ValueError as error:
        raise BadImageError(image_id, file_uri, f"not a readable PNG, JPEG or TIFF image: {error}") from None
    refused = over_cap(size, configured_max_pixels() if max_pixels is None else max_pixels)
    if refused:
        raise BadImageError(image_id, file_uri, refused)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise BadImageError(image_id, file_uri, f"not a readable PNG, JPEG or TIFF image: the {size.format} "
                                                f"header reads but its pixels do not decode")
    if pixels.ndim not in (2, 3):
        raise BadImageError(image_id, file_uri, f"unexpected pixel array of shape {pixels.shape}")
    return to_uint8_grey(pixels)


def channel_file_name(image_id: str, channel: str, extension: str) -> str:
    return f"{image_id}_{channel}{extension}"


def read_field(folder_uri: str, image_id: str, files: dict[str, str], max_pixels: int | None = None) -> np.ndarray:
    """The image's four channels stacked as ``(H, W, 4)`` uint8 in CHANNELS order.

    ``files`` maps each channel to its file name inside ``folder_uri`` (from the manifest); a channel
    without a file is an error naming the file that was expected. ``max_pixels``: see :func:`decode_channel`.
    """
    limit = configured_max_pixels() if max_pixels is None else max_pixels
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
        planes.append((uri, decode_channel(data, image_id, uri, limit)))
    shapes = {plane.shape for _, plane in planes}
    if len(shapes) != 1:
        sizes = ", ".join(f"{uri} is {plane.shape[1]}x{plane.shape[0]}" for uri, plane in planes)
        raise BadImageError(image_id, planes[0][0], f"channels differ in size: {sizes}")
    return np.stack([plane for _, plane in planes], axis=-1)


def composite(field: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB as the HPA shows it: microtubules and ER in red, protein in green, nuclei in blue."""
    red, green, blue, yellow = (field[..., index] for index in range(4))
    return np.stack([np.maximum(red, yellow), green, blue], axis=-1)

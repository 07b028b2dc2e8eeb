"""Reading channels: every format HPA data comes in is normalised, every bad file is named."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile

from stages import storage
from stages.classes import CHANNELS
from stages.fields import (BadImageError, HeaderTruncated, ImageSize, configured_max_pixels, decode_channel, image_size,
                           over_cap, read_field, to_uint8_grey)


def encode(pixels: np.ndarray, extension: str = ".png") -> bytes:
    ok, data = cv2.imencode(extension, pixels)
    assert ok
    return data.tobytes()


def write_image(folder: str, image_id: str, planes: dict[str, np.ndarray], extension: str = ".png") -> dict:
    files = {}
    for channel, pixels in planes.items():
        files[channel] = f"{image_id}_{channel}{extension}"
        storage.write_bytes(storage.join(folder, files[channel]), encode(pixels, extension))
    return files


def grey_planes(height=20, width=30, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {channel: rng.integers(0, 255, (height, width), dtype=np.uint8) for channel in CHANNELS}


def test_png_field_in_channel_order(tmp_path):
    planes = grey_planes()
    files = write_image(str(tmp_path), "img_1", planes)
    field = read_field(str(tmp_path), "img_1", files)
    assert field.shape == (20, 30, 4) and field.dtype == np.uint8
    for index, channel in enumerate(CHANNELS):
        assert np.array_equal(field[..., index], planes[channel])


def test_sixteen_bit_scaled_by_full_range():
    pixels = np.array([[0, 257, 65535], [32896, 1000, 128]], dtype=np.uint16)
    decoded = decode_channel(encode(pixels), "img", "img_red.png")
    assert decoded.dtype == np.uint8
    assert decoded.tolist() == [[0, 1, 255], [128, 4, 0]]


def test_colourised_jpeg_is_max_over_planes():
    yellow = np.zeros((16, 16, 3), np.uint8)
    yellow[4:12, 4:12, 1:] = 200  # yellow shows in the green and red planes (BGR order)
    decoded = decode_channel(encode(yellow, ".jpg"), "img", "img_yellow.jpg")
    assert decoded.ndim == 2
    assert abs(int(decoded[8, 8]) - 200) <= 6 and int(decoded[0, 0]) <= 6


def test_float_images_scaled():
    assert to_uint8_grey(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]


def test_non_square_field(tmp_path):
    files = write_image(str(tmp_path), "wide_1", grey_planes(height=12, width=40))
    assert read_field(str(tmp_path), "wide_1", files).shape == (12, 40, 4)


def test_missing_channel_names_image_and_file(tmp_path):
    files = write_image(str(tmp_path), "img_2", grey_planes())
    files["yellow"] = ""
    with pytest.raises(BadImageError, match=r"image img_2: .*img_2_yellow\.png: the yellow channel file is missing"):
        read_field(str(tmp_path), "img_2", files)


def test_channel_file_deleted_after_listing(tmp_path):
    files = write_image(str(tmp_path), "img_3", grey_planes())
    (tmp_path / files["blue"]).unlink()
    with pytest.raises(BadImageError, match=r"img_3_blue\.png"):
        read_field(str(tmp_path), "img_3", files)


def test_unreadable_png_names_file(tmp_path):
    files = write_image(str(tmp_path), "img_4", grey_planes())
    (tmp_path / files["green"]).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(BadImageError, match=r"image img_4: .*img_4_green\.png: not a readable"):
        read_field(str(tmp_path), "img_4", files)


def test_empty_file_names_file(tmp_path):
    files = write_image(str(tmp_path), "img_5", grey_planes())
    (tmp_path / files["red"]).write_bytes(b"")
    with pytest.raises(BadImageError, match=r"img_5_red\.png: the file is empty"):
        read_field(str(tmp_path), "img_5", files)


def test_channels_of_different_sizes(tmp_path):
    planes = grey_planes()
    planes["blue"] = planes["blue"][:10]
    files = write_image(str(tmp_path), "img_6", planes)
    with pytest.raises(BadImageError, match=r"image img_6: .*channels differ in size: .*img_6_blue\.png is 30x10"):
        read_field(str(tmp_path), "img_6", files)


# ---------------------------------------------------------------------------------------------- headers and the cap

def png_claiming(width: int, height: int) -> bytes:
    """A small real PNG whose IHDR (with a valid CRC) claims another size: what a decompression bomb looks
    like from its header."""
    data = bytearray(encode(np.zeros((4, 4), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_headers_give_format_and_size_without_decoding():
    pixels = np.zeros((12, 40), np.uint8)
    assert image_size(encode(pixels)) == ImageSize("PNG", 40, 12)
    assert image_size(encode(pixels.astype(np.uint16) * 300)) == ImageSize("PNG", 40, 12)
    assert image_size(encode(np.zeros((12, 40, 3), np.uint8), ".jpg")) == ImageSize("JPEG", 40, 12)
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, np.zeros((12, 40), np.uint16))
    assert image_size(tiff.getvalue()) == ImageSize("TIFF", 40, 12)
    assert image_size(png_claiming(3072, 2048)) == ImageSize("PNG", 3072, 2048)


def test_a_jpeg_whose_frame_header_lies_beyond_the_first_bytes():
    jpeg = encode(np.zeros((12, 40), np.uint8), ".jpg")
    comment = b"\xff\xfe" + struct.pack(">H", 65535) + b"x" * 65533  # a COM segment before the frame header
    padded = jpeg[:2] + comment * 2 + jpeg[2:]
    with pytest.raises(HeaderTruncated):
        image_size(padded[:64 * 1024], complete=False)
    assert image_size(padded) == ImageSize("JPEG", 40, 12)
    assert decode_channel(padded, "img", "img_red.jpg").shape == (12, 40)


@pytest.mark.parametrize("data, reason", [
    (b"GIF89a\x01\x00\x01\x00", "neither a PNG, a JPEG nor a TIFF signature"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "the PNG ends before its IHDR chunk"),
    (b"\xff\xd8\xff\xd9", "without a frame header"),
    (b"II*\x00\x08\x00\x00\x00", "the TIFF tags do not read"),
])
def test_broken_headers_say_why(data, reason):
    with pytest.raises(ValueError, match=reason):
        image_size(data)
    with pytest.raises(BadImageError, match="not a readable PNG, JPEG or TIFF image: .*" + reason):
        decode_channel(data, "img", "img_red.png")


def test_a_png_header_with_a_bad_crc_is_unreadable():
    data = bytearray(encode(np.zeros((4, 4), np.uint8)))
    data[19] ^= 1  # the width changes, the CRC does not
    with pytest.raises(BadImageError, match="fails its CRC"):
        decode_channel(bytes(data), "img", "img_red.png")


def test_the_default_cap_takes_real_fields_and_refuses_absurd_ones():
    cap = configured_max_pixels()
    assert cap == 6144 * 6144
    assert over_cap(ImageSize("PNG", 3072, 3072), cap) == "" and over_cap(ImageSize("PNG", 6144, 6144), cap) == ""
    assert "12000x12000 = 144,000,000 pixels is over the cap" in over_cap(ImageSize("PNG", 12000, 12000), cap)


def test_decoding_refuses_a_bomb_before_allocating(monkeypatch):
    def no_decoding(*args):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(BadImageError, match=r"img_red\.png: 12000x12000 = 144,000,000 pixels is over the cap of "
                                            r"37,748,736 \(\[pipeline\] max_pixels\)"):
        decode_channel(png_claiming(12000, 12000), "img", "img_red.png")


def test_the_cap_is_the_configured_one_in_every_decoding_path(tmp_path, pipeline_settings):
    files = write_image(str(tmp_path), "img_7", grey_planes(height=20, width=30))
    pipeline_settings(max_pixels=600)
    assert read_field(str(tmp_path), "img_7", files).shape == (20, 30, 4)  # 600 pixels: at the cap
    pipeline_settings(max_pixels=599)
    with pytest.raises(BadImageError, match=r"image img_7: .*img_7_red\.png: 30x20 = 600 pixels is over the cap of "
                                            r"599"):
        read_field(str(tmp_path), "img_7", files)
    with pytest.raises(BadImageError, match="over the cap of 599"):
        decode_channel(encode(grey_planes(20, 30)["green"]), "img_7", "img_7_green.png")
    assert decode_channel(encode(grey_planes(20, 30)["green"]), "img_7", "img_7_green.png", max_pixels=600).shape == (
        20, 30)

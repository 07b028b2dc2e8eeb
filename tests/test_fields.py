"""Reading channels: every format HPA data comes in is normalised, every bad file is named."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages import storage
from stages.classes import CHANNELS
from stages.fields import BadImageError, decode_channel, read_field, to_uint8_grey


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

"""Reading inputs: what is converted is said, what would lose data is refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bitstream.format import ImageMode
from codec.errors import ImageInputError
from codec.images import encode_image, load_image
from tests.helpers import header_only_png


def save(tmp_path, array, name="image.png"):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path


def test_rgb_is_read_as_is(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    loaded = load_image(save(tmp_path, pixels))
    assert np.array_equal(loaded.pixels, pixels) and loaded.mode == ImageMode.RGB and not loaded.notes


def test_grayscale_is_remembered(tmp_path):
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    loaded = load_image(save(tmp_path, gray))
    assert loaded.mode == ImageMode.L
    assert np.array_equal(loaded.pixels[..., 0], gray) and np.array_equal(loaded.pixels[..., 2], gray)


def test_palette_is_converted_and_said(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).convert("P").save(path)
    assert load_image(path).notes == ["palette image converted to RGB"]


def test_opaque_alpha_is_dropped_and_said(tmp_path):
    rgba = np.full((4, 4, 4), 255, np.uint8)
    loaded = load_image(save(tmp_path, rgba))
    assert loaded.pixels.shape == (4, 4, 3)
    assert "alpha dropped" in loaded.notes[0]


def test_transparency_is_refused(tmp_path):
    rgba = np.full((4, 4, 4), 255, np.uint8)
    rgba[0, 0, 3] = 10
    with pytest.raises(ImageInputError, match="transparent pixels"):
        load_image(save(tmp_path, rgba))


def test_sixteen_bit_is_reduced_and_said(tmp_path):
    deep = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    loaded = load_image(path)
    assert loaded.mode == ImageMode.L
    assert "reduced to 8-bit" in loaded.notes[0]
    assert loaded.pixels[..., 0].max() == round(19 * 3000 / 257)


def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(path)


def test_damaged_image(tmp_path):
    path = save(tmp_path, np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ImageInputError, match="damaged image|not an image"):
        load_image(path)


def test_zero_pixel_png(tmp_path):
    with pytest.raises(ImageInputError, match=r"has no pixels \(0x5\)"):
        load_image(header_only_png(tmp_path / "empty.png", 0, 5))


@pytest.mark.parametrize("width, height", [(70_000, 8), (100_000, 100_000), (20_000, 20_000)])
def test_a_size_the_format_cannot_hold_is_refused_before_decoding(tmp_path, width, height):
    with pytest.raises(ImageInputError, match="larger than the .bin format"):
        load_image(header_only_png(tmp_path / "huge.png", width, height))


def test_unknown_output_suffix():
    with pytest.raises(ImageInputError, match="suffix"):
        encode_image(np.zeros((2, 2, 3), np.uint8), ImageMode.RGB, ".xyz")

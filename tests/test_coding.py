"""Image <-> .bin with real models: exact round trips, determinism, any image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bitstream.format import HEADER_BYTES, parse
from codec import coding
from codec.model_file import load_exported
from entropy import coder
from tests.helpers import random_image


@pytest.mark.parametrize("fixture", ["tiny_vq", "tiny_uq"])
def test_decoded_indices_and_image_equal_the_encoders(fixture, request):
    exported = request.getfixturevalue(fixture)
    pixels = random_image(40, 56)
    data = coding.compress(exported, pixels)
    header, payload = parse(data)
    symbols, shape = coding.image_symbols(exported, pixels)
    decoded_symbols, decoded_shape = coding.decode_symbols(exported, header, payload)
    assert decoded_shape == shape
    assert torch.equal(decoded_symbols, symbols)
    expected = coding.reconstruct(exported, symbols, shape, 40, 56)
    assert np.array_equal(coding.decode(exported, header, payload), expected)


@pytest.mark.parametrize("size", [(1, 1), (1, 37), (17, 33), (16, 16), (31, 2)])
def test_any_size_round_trips_to_the_original_size(tiny_vq, size):
    pixels = random_image(*size, seed=3)
    header, payload = parse(coding.compress(tiny_vq, pixels))
    decoded = coding.decode(tiny_vq, header, payload)
    assert decoded.shape == (*size, 3) and decoded.dtype == np.uint8
    assert (header.height, header.width) == size


def test_compressing_twice_gives_identical_bytes(tiny_vq):
    pixels = random_image(48, 48, seed=5)
    assert coding.compress(tiny_vq, pixels) == coding.compress(tiny_vq, pixels)


def test_decoding_is_identical_with_one_and_two_threads(tiny_vq):
    header, payload = parse(coding.compress(tiny_vq, random_image(64, 80, seed=6)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = coding.decode(tiny_vq, header, payload)
        torch.set_num_threads(2)
        double = coding.decode(tiny_vq, header, payload)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(single, double)


def test_file_size_is_the_information_content_plus_header(tiny_vq):
    pixels = random_image(256, 256, seed=7)
    data = coding.compress(tiny_vq, pixels)
    symbols, _ = coding.image_symbols(tiny_vq, pixels)
    ideal = sum(coder.ideal_bits(t, s, escape=True) for t, s in zip(tiny_vq.tables, symbols.numpy()))
    payload_bits = 8 * (len(data) - HEADER_BYTES)
    assert ideal <= payload_bits <= 1.005 * ideal + 32


def test_a_file_from_another_model_is_refused(tiny_vq, tiny_uq):
    header, payload = parse(coding.compress(tiny_vq, random_image(16, 16)))
    with pytest.raises(ValueError, match="another model"):
        coding.decode(tiny_uq, header, payload)


def test_export_and_load_keep_the_model_id(tiny_vq_path, tiny_vq):
    again = load_exported(tiny_vq_path)
    assert again.model_id == tiny_vq.model_id
    assert all(np.array_equal(a, b) for a, b in zip(again.tables, tiny_vq.tables))


def test_latents_far_outside_the_coded_support_are_coded_losslessly(tiny_uq, monkeypatch):
    """The uq codec escapes what its tables do not cover, where version 1 clamped it."""
    model = tiny_uq.model
    analysis = model.analysis
    monkeypatch.setattr(model, "analysis", lambda x: 3000.0 * analysis(x))
    pixels = random_image(48, 64, seed=9)
    symbols, shape = coding.image_symbols(tiny_uq, pixels)
    size = (model.support_high - model.support_low + 1)[:, None]
    outside = (symbols < 0) | (symbols >= size)
    assert outside.float().mean() > 0.5 and symbols.abs().max() > 300
    header, payload = parse(coding.compress(tiny_uq, pixels))
    decoded, _ = coding.decode_symbols(tiny_uq, header, payload)
    assert header.version == 2 and torch.equal(decoded, symbols)
    assert np.array_equal(coding.decode(tiny_uq, header, payload), coding.reconstruct(tiny_uq, symbols, shape, 48, 64))


def test_a_model_file_compresses_and_decompresses_as_exact_inverses(tiny_vq, tiny_uq):
    pixels = random_image(33, 47, seed=12)
    for exported in (tiny_vq, tiny_uq):
        data = exported.compress(pixels)
        assert np.array_equal(exported.decompress(data), coding.decode(exported, *parse(data)))
    with pytest.raises(ValueError, match="another model"):
        tiny_uq.decompress(tiny_vq.compress(pixels))

"""The decoder under damaged input: every file is decoded or refused with the format's one-line error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitstream.format import BitstreamError, ImageMode, parse
from codec import coding
from tests.helpers import random_image
from tests.fuzzing import set_field, damaged_files, decode_verdict, reseal


@pytest.fixture(scope="module")
def corpus(tiny_vq) -> list[bytes]:
    """Valid files of a few small sizes, the 1x1 image and a grayscale one among them."""
    images = [random_image(20, 24, seed=1), random_image(1, 1, seed=2), random_image(33, 17, seed=3)]
    files = [coding.compress(tiny_vq, pixels) for pixels in images]
    gray = random_image(16, 40, seed=4)[..., :1].repeat(3, axis=2)
    return files + [coding.compress(tiny_vq, gray, ImageMode.L)]


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_files_are_decoded_or_refused_with_one_line(tiny_vq, corpus, data):
    verdict = decode_verdict(tiny_vq, data.draw(damaged_files(corpus)))
    assert verdict.outcome in ("accepted", "rejected"), verdict.detail


def test_the_fuzzed_decoder_reaches_past_the_crc(tiny_vq, corpus):
    """Resealed damage must get to the payload checks, or the fuzzer would only ever test the CRC."""
    data = corpus[0]
    payload_damage = reseal(data[:-4] + bytes(b ^ 0xFF for b in data[-4:]))
    assert decode_verdict(tiny_vq, payload_damage).outcome in ("accepted", "rejected")
    assert "CRC" not in decode_verdict(tiny_vq, payload_damage).detail
    assert decode_verdict(tiny_vq, data).outcome == "accepted"


def test_every_single_byte_change_of_a_real_file_is_detected(corpus):
    data = corpus[0]
    for position in range(len(data)):
        for mask in range(1, 256):
            damaged = bytearray(data)
            damaged[position] ^= mask
            with pytest.raises(BitstreamError):
                parse(bytes(damaged))


@pytest.mark.parametrize("height, width", [(16384, 16384), (65536, 4096), (4000, 3000)])
def test_a_large_claimed_size_with_a_small_payload_is_refused_before_decoding(tiny_vq, corpus, monkeypatch, height, width):
    forged = set_field(set_field(corpus[0], "height", height), "width", width)
    forged = set_field(set_field(forged, "pad_bottom", -height % 16), "pad_right", -width % 16)
    header, payload = parse(reseal(forged))
    monkeypatch.setattr(coding, "synthesize", lambda *args: pytest.fail("a latent was synthesized"))
    with pytest.raises(BitstreamError, match="cannot hold"):
        coding.decode(tiny_vq, header, payload)

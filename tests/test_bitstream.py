"""The file format: every field validated, every damage detected, with the format's own error."""

from __future__ import annotations

import struct
import zlib

import pytest

from bitstream.format import FORMAT_VERSION, HEADER_BYTES, MAX_SIDE, BitstreamError, Header, ImageMode, pack, parse

MODEL_ID = bytes(range(16))


def sample_file(payload: bytes = b"\x01\x02\x03\x04" * 4, height: int = 33, width: int = 17) -> bytes:
    header = Header(MODEL_ID, height, width, ImageMode.RGB, -height % 16, -width % 16, len(payload))
    return pack(header, payload)


def test_round_trip_keeps_every_field():
    data = sample_file()
    header, payload = parse(data)
    assert (header.model_id, header.height, header.width, header.mode) == (MODEL_ID, 33, 17, ImageMode.RGB)
    assert (header.pad_bottom, header.pad_right, header.version) == (15, 15, FORMAT_VERSION)
    assert payload == b"\x01\x02\x03\x04" * 4
    assert len(data) == HEADER_BYTES + 16


def test_every_single_byte_flip_is_detected():
    data = sample_file()
    for position in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= flip
            with pytest.raises(BitstreamError):
                parse(bytes(damaged))


@pytest.mark.parametrize("length", [0, 3, 4, 5, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 15])
def test_truncation_is_reported(length):
    with pytest.raises(BitstreamError, match="truncated|wrong magic"):
        parse(sample_file()[:length])


def test_truncated_payload_says_how_much_is_missing():
    with pytest.raises(BitstreamError, match=r"truncated \(payload has 10 of 16 bytes\)"):
        parse(sample_file()[: HEADER_BYTES + 10])


def test_wrong_magic():
    with pytest.raises(BitstreamError, match="not a vqcodec file"):
        parse(b"\x89PNG" + sample_file()[4:])


def test_unknown_version():
    data = bytearray(sample_file())
    data[4] = 7
    with pytest.raises(BitstreamError, match="unsupported format version 7"):
        parse(bytes(data))


def test_trailing_bytes_are_refused():
    with pytest.raises(BitstreamError, match="unexpected bytes after the payload"):
        parse(sample_file() + b"\x00")


def forged(height: int, width: int, mode: int = 0) -> bytes:
    """A file with a valid CRC whose header claims the given size: only field checks can stop it."""
    fields = struct.pack("<4sB16sIIBBBI", b"VQCB", 1, MODEL_ID, height, width, mode, 0, 0, 0)
    return fields + struct.pack("<I", zlib.crc32(fields))


def test_huge_claimed_size_is_refused_before_allocation():
    with pytest.raises(BitstreamError, match="outside 1..65536"):
        parse(forged(100_000, 100_000))
    with pytest.raises(BitstreamError, match="exceeds the limit"):
        parse(forged(MAX_SIDE, MAX_SIDE))


def test_zero_size_and_unknown_mode_are_refused():
    with pytest.raises(BitstreamError, match="outside"):
        parse(forged(0, 16))
    with pytest.raises(BitstreamError, match="unknown image mode 9"):
        parse(forged(16, 16, mode=9))

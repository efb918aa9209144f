"""Damaged `.bin` files for fuzzing the decoder, and the verdict on one decode.

Shared by tests/test_fuzz.py (a short run) and scripts/fuzz_decoder.py (a long one). Mutations
flip, truncate, insert, delete and splice bytes, or rewrite header fields (the image size with a fitting padding among them); half of the results are
resealed with a matching CRC, so the checks behind the CRC (sizes, padding, payload capacity, the
entropy decoder) are reached too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from bitstream.format import HEADER_BYTES, MAX_SIDE, BitstreamError, parse
from codec import coding
from codec.model_file import ExportedModel

CRC_OFFSET = HEADER_BYTES - 4

FIELDS = {"version": (4, "<B"), "height": (21, "<I"), "width": (25, "<I"), "mode": (29, "<B"),
          "pad_bottom": (30, "<B"), "pad_right": (31, "<B"), "payload_length": (32, "<I")}
"""Header fields by offset and struct format, as bitstream/format.py lays them out."""

_EDGE_VALUES = (0, 1, 2, 15, 16, 17, 255, 256, MAX_SIDE - 1, MAX_SIDE, MAX_SIDE + 1, 100_000, 2**31, 2**32 - 1)


def reseal(data: bytes) -> bytes:
    """The same bytes with the CRC recomputed over them, so that only the checks behind it can refuse them."""
    if len(data) < HEADER_BYTES:
        return data
    crc = zlib.crc32(data[HEADER_BYTES:], zlib.crc32(data[:CRC_OFFSET]))
    return data[:CRC_OFFSET] + struct.pack("<I", crc) + data[HEADER_BYTES:]


def set_field(data: bytes, name: str, value: int) -> bytes:
    offset, fmt = FIELDS[name]
    size = struct.calcsize(fmt)
    if len(data) < offset + size:
        return data
    return data[:offset] + struct.pack(fmt, value % (1 << (8 * size))) + data[offset + size :]


def _flips(data: bytes) -> st.SearchStrategy[bytes]:
    def apply(changes: list[tuple[int, int]]) -> bytes:
        damaged = bytearray(data)
        for position, mask in changes:
            damaged[position % len(damaged)] ^= mask
        return bytes(damaged)

    return st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1, max_size=8).map(apply)


def _truncations(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(data) - 1).map(lambda length: data[:length])


def _insertions(data: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=64)).map(
        lambda t: data[: t[0]] + t[1] + data[t[0] :]
    )


def _deletions(data: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(st.integers(0, len(data) - 1), st.integers(1, 64)).map(lambda t: data[: t[0]] + data[t[0] + t[1] :])


def _splices(data: bytes, corpus: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(corpus), st.integers(0, len(data)), st.integers(0, 1 << 20)).map(
        lambda t: data[: t[1]] + t[0][t[2] % (len(t[0]) + 1) :]
    )


def _field_rewrites(data: bytes) -> st.SearchStrategy[bytes]:
    values = st.one_of(st.sampled_from(_EDGE_VALUES), st.integers(0, 2**32 - 1), st.integers(0, 4096))
    rewrite = st.tuples(st.sampled_from(sorted(FIELDS)), values)
    return st.lists(rewrite, min_size=1, max_size=3).map(
        lambda changes: _apply_rewrites(data, changes)
    )


def _size_rewrites(data: bytes) -> st.SearchStrategy[bytes]:
    """A new image size with the padding that fits it, so the size itself is what gets checked."""
    sides = st.one_of(st.sampled_from(_EDGE_VALUES), st.integers(1, 4096))

    def resize(size: tuple[int, int]) -> bytes:
        height, width = size
        return _apply_rewrites(data, [("height", height), ("width", width), ("pad_bottom", -height % 16), ("pad_right", -width % 16)])

    return st.tuples(sides, sides).map(resize)


def _apply_rewrites(data: bytes, changes: list[tuple[str, int]]) -> bytes:
    for name, value in changes:
        data = set_field(data, name, value)
    return data


def damaged_files(corpus: list[bytes]) -> st.SearchStrategy[bytes]:
    """Files made from valid ones by one kind of damage, resealed with a matching CRC half of the time."""

    def damage(data: bytes) -> st.SearchStrategy[bytes]:
        kinds = [
            _flips(data), _truncations(data), _insertions(data), _deletions(data),
            _splices(data, corpus), _field_rewrites(data), _size_rewrites(data),
        ]
        return st.tuples(st.one_of(kinds), st.booleans()).map(lambda t: reseal(t[0]) if t[1] else t[0])

    return st.sampled_from(corpus).flatmap(damage)


@dataclass(frozen=True)
class Verdict:
    """What the decoder did with one input: 'accepted' (an image), 'rejected' (one-line BitstreamError) or 'crash'."""

    outcome: str
    detail: str = ""


def decode_verdict(exported: ExportedModel, data: bytes) -> Verdict:
    """Run the whole decode path on `data` and classify the result; never raises."""
    try:
        header, payload = parse(data)
        pixels = coding.decode(exported, header, payload)
    except BitstreamError as error:
        message = str(error)
        if not message or "\n" in message:
            return Verdict("crash", f"BitstreamError without a one-line message: {message!r}")
        return Verdict("rejected", message)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - anything else (a Rust panic included) is what a fuzzer reports
        return Verdict("crash", f"{type(error).__name__}: {error}")
    if not isinstance(pixels, np.ndarray) or pixels.shape != (header.height, header.width, 3) or pixels.dtype != np.uint8:
        return Verdict("crash", f"decoded pixels of shape {getattr(pixels, 'shape', None)} for a {header.width}x{header.height} header")
    return Verdict("accepted")

"""The `.bin` file format, version 2: a fixed-size header, then the entropy-coded payload.

Layout (all integers little-endian)::

    offset size field
    0      4    magic            b"VQCB"
    4      1    format version   2 (1 is still read)
    5      16   model id         first 16 bytes of the SHA-256 of the exported model
    21     4    height           original image height in pixels (1 .. MAX_SIDE)
    25     4    width            original image width in pixels (1 .. MAX_SIDE)
    29     1    image mode       0 = RGB, 1 = L (grayscale, decoded back to one channel)
    30     1    pad bottom       rows added before coding (the decoder crops them)
    31     1    pad right        columns added before coding
    32     4    payload length   bytes of entropy-coded payload that follow the header
    36     4    CRC32            over bytes 0..35 and the whole payload
    40     ...  payload

Version 2 codes every group with its table plus an escape symbol (entropy/coder.py), so latents
outside a uniform quantizer's coded support are coded losslessly; version 1 files, whose encoder
clamped them, decode as before.

Parsing checks every field (and the CRC) before anything else is done with the file, so a
damaged or hostile file is refused before a model is loaded or memory is allocated for it.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"VQCB"
FORMAT_VERSION = 2
"""The version this vqcodec writes."""
READ_VERSIONS = (1, 2)
"""The versions it reads."""
MODEL_ID_BYTES = 16
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28

_FIELDS = struct.Struct("<4sB16sIIBBBI")
_CRC = struct.Struct("<I")
HEADER_BYTES = _FIELDS.size + _CRC.size


class BitstreamError(ValueError):
    """A `.bin` file that cannot be decoded: damaged, truncated, or not ours."""


class ImageMode(enum.IntEnum):
    """How the decoded pixels are written back: the channels the original image had."""

    RGB = 0
    L = 1


@dataclass(frozen=True)
class Header:
    """Everything the decoder needs besides the model and the payload."""

    model_id: bytes
    height: int
    width: int
    mode: ImageMode
    pad_bottom: int
    pad_right: int
    payload_length: int
    version: int = FORMAT_VERSION


def _check_geometry(height: int, width: int, pad_bottom: int, pad_right: int) -> None:
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} is outside 1..{MAX_SIDE} pixels per side")
    if height * width > MAX_PIXELS:
        raise BitstreamError(f"image size {width}x{height} exceeds the limit of {MAX_PIXELS} pixels")
    if not (0 <= pad_bottom < 256 and 0 <= pad_right < 256):
        raise BitstreamError(f"padding {pad_bottom}x{pad_right} is out of range")


def pack(header: Header, payload: bytes) -> bytes:
    """Serialize header and payload into the bytes of a `.bin` file."""
    if len(header.model_id) != MODEL_ID_BYTES:
        raise ValueError(f"model id must be {MODEL_ID_BYTES} bytes")
    if header.version not in READ_VERSIONS:
        raise ValueError(f"format version {header.version} is not one this vqcodec reads")
    _check_geometry(header.height, header.width, header.pad_bottom, header.pad_right)
    if header.payload_length != len(payload):
        raise ValueError("header payload length does not match the payload")
    fields = _FIELDS.pack(
        MAGIC,
        header.version,
        header.model_id,
        header.height,
        header.width,
        int(header.mode),
        header.pad_bottom,
        header.pad_right,
        len(payload),
    )
    crc = zlib.crc32(payload, zlib.crc32(fields))
    return fields + _CRC.pack(crc) + payload


def parse(data: bytes) -> tuple[Header, bytes]:
    """Validate a whole `.bin` file and split it into header and payload.

    Raises BitstreamError with a one-line reason for anything that is not a valid file.
    """
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a vqcodec file (wrong magic bytes)")
    if len(data) < 5:
        raise BitstreamError("file is truncated (no format version)")
    if data[4] not in READ_VERSIONS:
        raise BitstreamError(
            f"unsupported format version {data[4]} (this vqcodec reads versions {', '.join(map(str, READ_VERSIONS))})"
        )
    if len(data) < HEADER_BYTES:
        raise BitstreamError(f"file is truncated ({len(data)} bytes, the header alone is {HEADER_BYTES})")
    _, version, model_id, height, width, mode, pad_bottom, pad_right, payload_length = (
        _FIELDS.unpack_from(data)
    )
    available = len(data) - HEADER_BYTES
    if payload_length != available:
        if payload_length > available:
            raise BitstreamError(f"file is truncated (payload has {available} of {payload_length} bytes)")
        raise BitstreamError(f"file has {available - payload_length} unexpected bytes after the payload")
    (stored_crc,) = _CRC.unpack_from(data, _FIELDS.size)
    payload = data[HEADER_BYTES:]
    if zlib.crc32(payload, zlib.crc32(data[: _FIELDS.size])) != stored_crc:
        raise BitstreamError("file is corrupt (CRC mismatch)")
    try:
        image_mode = ImageMode(mode)
    except ValueError:
        raise BitstreamError(f"unknown image mode {mode}") from None
    _check_geometry(height, width, pad_bottom, pad_right)
    header = Header(
        model_id=model_id,
        height=height,
        width=width,
        mode=image_mode,
        pad_bottom=pad_bottom,
        pad_right=pad_right,
        payload_length=payload_length,
        version=version,
    )
    return header, payload

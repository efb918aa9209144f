"""The versioned `.bin` file format: header, CRC, parse and validate."""

from bitstream.format import (
    FORMAT_VERSION,
    HEADER_BYTES,
    MAGIC,
    BitstreamError,
    Header,
    ImageMode,
    pack,
    parse,
)

__all__ = ["FORMAT_VERSION", "HEADER_BYTES", "MAGIC", "BitstreamError", "Header", "ImageMode", "pack", "parse"]

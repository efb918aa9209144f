"""Classical codecs measured through the same evaluation: HEVC intra 4:4:4, JPEG and WebP.

HEVC is x265 inside pillow-heif, set up as BPG does it (preset veryslow, tune ssim, constant QP,
no psy-rd / psy-rdoq / adaptive quantization). The HEIF container adds a few hundred bytes per
file, and the whole file is counted. It is the coding tool inside BPG, not BPG itself, and is
labelled as such.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

HEVC_LABEL = "HEVC-intra 4:4:4 (x265 via pillow-heif, BPG settings)"
HEVC_QPS = (47, 42, 37, 32, 27, 22, 17, 12)
JPEG_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (5, 15, 25, 40, 55, 70, 80, 90, 95)


@dataclass(frozen=True)
class HevcIntra:
    """x265 intra coding at 4:4:4 with BPG's settings and a constant QP."""

    qp: int

    def encode(self, pixels: np.ndarray) -> bytes:
        import pillow_heif

        buffer = io.BytesIO()
        pillow_heif.from_pillow(Image.fromarray(pixels)).save(
            buffer,
            chroma=444,
            enc_params={
                "preset": "veryslow",
                "tune": "ssim",
                "tu-intra-depth": 3,
                "x265:qp": self.qp,
                "x265:psy-rd": 0,
                "x265:psy-rdoq": 0,
                "x265:aq-mode": 0,
            },
        )
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        import pillow_heif

        return np.asarray(pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True).to_pillow().convert("RGB"))


@dataclass(frozen=True)
class PillowCodec:
    """JPEG or WebP through Pillow at one quality setting."""

    format: str
    quality: int

    def encode(self, pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        options = {"subsampling": 0} if self.format == "JPEG" else {"method": 6}
        Image.fromarray(pixels).save(buffer, format=self.format, quality=self.quality, **options)
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))


BASELINES = {
    "hevc-444": (HEVC_LABEL, {f"qp{qp}": HevcIntra(qp) for qp in HEVC_QPS}),
    "jpeg": ("JPEG 4:4:4 (Pillow/libjpeg)", {f"q{q}": PillowCodec("JPEG", q) for q in JPEG_QUALITIES}),
    "webp": ("WebP (Pillow/libwebp, method 6)", {f"q{q}": PillowCodec("WEBP", q) for q in WEBP_QUALITIES}),
}
"""name -> (description, {rate point label: codec})."""

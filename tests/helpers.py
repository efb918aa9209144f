"""Helpers the tests share: tiny exported models, synthetic images, where ../shared is."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from codec.model_file import export_model
from codec.models import ModelConfig, build_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = SHARED / "kodak"


def make_exported(tmp_path: Path, config: ModelConfig, seed: int = 0, name: str = "tiny.pt") -> Path:
    torch.manual_seed(seed)
    model = build_model(config)
    if config.quantizer == "vq":
        with torch.no_grad():
            model.entropy.logits.normal_()
    path = tmp_path / name
    export_model(model, path, {"purpose": "test"})
    return path


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (H, W, 3) uint8: smooth so the codec has structure to code."""
    generator = np.random.default_rng(seed)
    coarse = generator.uniform(0, 255, size=(max(2, height // 8), max(2, width // 8), 3))
    rows = np.linspace(0, coarse.shape[0] - 1, height).round().astype(int)
    cols = np.linspace(0, coarse.shape[1] - 1, width).round().astype(int)
    noise = generator.normal(0, 8, size=(height, width, 3))
    return np.clip(coarse[rows][:, cols] + noise, 0, 255).astype(np.uint8)


def header_only_png(path, width, height):
    """A PNG that declares a size but holds no pixel data."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path

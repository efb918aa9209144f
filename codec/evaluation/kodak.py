"""Compress and decompress every image of a folder with real files, and record what it cost.

The result layout follows CompressAI's: {"name", "description", "results": {metric: [values]}},
one value per rate point; the per-image records sit beside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bitstream.format import HEADER_BYTES, parse
from codec import coding
from codec.checkpoint import ExportedModel
from codec.images import IMAGE_SUFFIXES, load_image
from codec.models import psnr
from entropy.tables import information_bits


@dataclass
class ImageResult:
    """One image coded for real: sizes, quality and timings."""

    image: str
    bpp: float
    psnr_rgb: float
    file_bytes: int
    ideal_payload_bits: float
    encode_seconds: float
    decode_seconds: float


def evaluate_image(exported: ExportedModel, path: Path) -> ImageResult:
    image = load_image(path)
    height, width = image.pixels.shape[:2]
    started = time.perf_counter()
    data = coding.compress(exported, image.pixels, image.mode)
    encoded = time.perf_counter()
    header, payload = parse(data)
    decoded = coding.decompress(exported, header, payload)
    finished = time.perf_counter()
    symbols, _ = coding.image_symbols(exported, image.pixels)
    ideal = sum(information_bits(t, s) for t, s in zip(exported.tables, symbols.numpy()))
    mse = float(np.mean((decoded.astype(np.float64) - image.pixels) ** 2))
    return ImageResult(
        image=path.name,
        bpp=8 * len(data) / (height * width),
        psnr_rgb=psnr(mse, 255.0),
        file_bytes=len(data),
        ideal_payload_bits=ideal,
        encode_seconds=encoded - started,
        decode_seconds=finished - encoded,
    )


def evaluate_folder(exported: ExportedModel, folder: Path, label: str = "") -> list[ImageResult]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    return [evaluate_image(exported, path) for path in tqdm(paths, desc=f"evaluating {label}".strip(), unit="image")]


def summary(results: list[ImageResult]) -> dict[str, float]:
    """Averages over the images, plus the coder's overhead over the ideal code length."""
    payload_bits = sum(8 * (r.file_bytes - HEADER_BYTES) for r in results)
    ideal_bits = sum(r.ideal_payload_bits for r in results)
    return {
        "bpp": float(np.mean([r.bpp for r in results])),
        "psnr-rgb": float(np.mean([r.psnr_rgb for r in results])),
        "encoding_time": float(np.mean([r.encode_seconds for r in results])),
        "decoding_time": float(np.mean([r.decode_seconds for r in results])),
        "coder_overhead": payload_bits / ideal_bits - 1.0,
    }


def per_image_records(results: list[ImageResult]) -> list[dict]:
    return [asdict(r) for r in results]


def write_results(path: Path, name: str, description: str, runs: dict[str, list[ImageResult]]) -> None:
    """Write `path` (CompressAI layout, one point per model, sorted by rate) and `<stem>.per-image.json`."""
    import json

    ordered = sorted(runs.items(), key=lambda item: summary(item[1])["bpp"])
    points = [summary(results) for _, results in ordered]
    curve = {
        "name": name,
        "description": description,
        "results": {key: [point[key] for point in points] for key in points[0]},
        "models": [model for model, _ in ordered],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(curve, indent=2) + "\n")
    per_image = [{"model": model, "images": per_image_records(results)} for model, results in ordered]
    path.with_suffix(".per-image.json").write_text(json.dumps(per_image, indent=2) + "\n")

"""Rate-distortion evaluation with real files: code every image of a folder, measure what it cost.

Any codec with `encode(pixels) -> bytes` and `decode(bytes) -> pixels` is measured the same way:
bpp from the whole file's size, PSNR (and MS-SSIM) on the decoded 8-bit image, wall-clock times.
The result layout follows CompressAI's: {"name", "description", "results": {metric: [values]}},
one value per rate point; the per-image records sit beside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from tqdm import tqdm

from bitstream.format import HEADER_BYTES
from codec import coding
from codec.model_file import ExportedModel
from codec.images import image_paths, load_image
from codec.models import psnr
from entropy import coder

MS_SSIM_MIN_SIDE = 161
"""MS-SSIM's five scales need images larger than this on the shorter side."""


class ImageCodec(Protocol):
    """What the evaluation needs of a codec at one rate point."""

    def encode(self, pixels: np.ndarray) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


@dataclass
class ImageResult:
    """One image coded for real: sizes, quality and timings."""

    image: str
    bpp: float
    psnr_rgb: float
    ms_ssim: float | None
    file_bytes: int
    encode_seconds: float
    decode_seconds: float
    ideal_payload_bits: float | None = None


def ms_ssim(original: np.ndarray, decoded: np.ndarray) -> float | None:
    """MS-SSIM on RGB in [0, 255], or None for images too small for its five scales."""
    if min(original.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    import torch
    from pytorch_msssim import ms_ssim as msssim

    as_tensor = lambda a: torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    return float(msssim(as_tensor(original), as_tensor(decoded), data_range=255.0))


def measure(codec: ImageCodec, path: Path, ideal_bits: Callable[[np.ndarray], float] | None = None) -> ImageResult:
    """Encode and decode one image file with `codec`, timing both and comparing the pixels."""
    pixels = load_image(path).pixels
    height, width = pixels.shape[:2]
    started = time.perf_counter()
    data = codec.encode(pixels)
    encoded = time.perf_counter()
    decoded = codec.decode(data)
    finished = time.perf_counter()
    mse = float(np.mean((decoded.astype(np.float64) - pixels) ** 2))
    return ImageResult(
        image=path.name,
        bpp=8 * len(data) / (height * width),
        psnr_rgb=psnr(mse, 255.0),
        ms_ssim=ms_ssim(pixels, decoded),
        file_bytes=len(data),
        encode_seconds=encoded - started,
        decode_seconds=finished - encoded,
        ideal_payload_bits=ideal_bits(pixels) if ideal_bits else None,
    )


class LearnedCodec:
    """An exported model as an ImageCodec, plus the ideal code length of its symbols."""

    def __init__(self, exported: ExportedModel) -> None:
        self.exported = exported

    def encode(self, pixels: np.ndarray) -> bytes:
        return coding.compress(self.exported, pixels)

    def decode(self, data: bytes) -> np.ndarray:
        return coding.decompress(self.exported, data)

    def ideal_bits(self, pixels: np.ndarray) -> float:
        symbols, _ = coding.image_symbols(self.exported, pixels)
        return sum(coder.ideal_bits(t, s, escape=True) for t, s in zip(self.exported.tables, symbols.numpy()))


def evaluate_folder(exported: ExportedModel, folder: Path, label: str = "") -> list[ImageResult]:
    """Every image of `folder` through a learned model, with its coder overhead."""
    codec = LearnedCodec(exported)
    paths = image_paths(folder)
    return [measure(codec, p, codec.ideal_bits) for p in tqdm(paths, desc=f"evaluating {label}".strip(), unit="image")]


def evaluate_model(exported: ExportedModel, folder: Path, label: str = "") -> tuple[list[ImageResult], dict | None]:
    """`evaluate_folder`, plus the model's codebook statistics on the same folder when it is a VQ model."""
    from codec.evaluation.codebooks import codebook_statistics
    from codec.models import VQCodec

    results = evaluate_folder(exported, folder, label)
    return results, codebook_statistics(exported, folder) if isinstance(exported.model, VQCodec) else None


def summary(results: list[ImageResult]) -> dict[str, float]:
    """Averages over the images; for learned codecs also the coder's overhead over the ideal code length."""
    point = {
        "bpp": float(np.mean([r.bpp for r in results])),
        "psnr-rgb": float(np.mean([r.psnr_rgb for r in results])),
        "encoding_time": float(np.mean([r.encode_seconds for r in results])),
        "decoding_time": float(np.mean([r.decode_seconds for r in results])),
    }
    if all(r.ms_ssim is not None for r in results):
        point["ms-ssim"] = float(np.mean([r.ms_ssim for r in results]))
    if all(r.ideal_payload_bits is not None for r in results):
        payload_bits = sum(8 * (r.file_bytes - HEADER_BYTES) for r in results)
        point["coder_overhead"] = payload_bits / sum(r.ideal_payload_bits for r in results) - 1.0
    return point


def per_image_records(results: list[ImageResult]) -> list[dict]:
    return [asdict(r) for r in results]


def write_results(
    path: Path, name: str, description: str, runs: dict[str, list[ImageResult]], codebooks: dict[str, dict] | None = None
) -> None:
    """Write `path` (CompressAI layout, one point per model, sorted by rate) and `<stem>.per-image.json`.

    `codebooks` (model -> codebook statistics) is listed per model beside the results, in the same order.
    """
    import json

    ordered = sorted(runs.items(), key=lambda item: summary(item[1])["bpp"])
    points = [summary(results) for _, results in ordered]
    curve = {
        "name": name,
        "description": description,
        "results": {key: [point[key] for point in points] for key in points[0]},
        "models": [model for model, _ in ordered],
    }
    if codebooks:
        curve["codebooks"] = [codebooks[model] for model, _ in ordered]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(curve, indent=2) + "\n")
    per_image = [{"model": model, "images": per_image_records(results)} for model, results in ordered]
    path.with_suffix(".per-image.json").write_text(json.dumps(per_image, indent=2) + "\n")

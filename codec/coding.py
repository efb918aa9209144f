"""Image <-> `.bin` bytes with an exported model: padding, transforms, symbols, range coder, header."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bitstream.format import BitstreamError, Header, ImageMode, pack, parse
from codec.model_file import ExportedModel
from codec.errors import ModelFileError
from codec.tiling import Tiling, analyse, synthesize
from codec.transforms import DOWNSAMPLING
from entropy import coder


def padding(size: int) -> int:
    """Rows (or columns) added to a side of `size` pixels to reach a multiple of 16."""
    return -size % DOWNSAMPLING


def _padded(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 edge-replicated up to a multiple of 16 per side."""
    height, width = pixels.shape[:2]
    return np.pad(np.asarray(pixels, dtype=np.uint8), ((0, padding(height)), (0, padding(width)), (0, 0)), mode="edge")


def _require_image_model(exported: ExportedModel) -> None:
    if exported.model.config.transform != "factorized":
        raise ModelFileError("this model codes toy-source vectors, not images")


@torch.no_grad()
def latent(exported: ExportedModel, pixels: np.ndarray, tiling: Tiling = Tiling()) -> torch.Tensor:
    """The analysis transform's latent (1, M, h, w) of an (H, W, 3) uint8 image, computed tile by tile."""
    _require_image_model(exported)
    return analyse(exported.model.analysis, _padded(pixels), tiling)


@torch.no_grad()
def image_symbols(exported: ExportedModel, pixels: np.ndarray, tiling: Tiling = Tiling()) -> tuple[torch.Tensor, torch.Size]:
    """Quantization indices (G, P) of an image, and the latent shape they fill."""
    y = latent(exported, pixels, tiling)
    return exported.model.to_symbols(y), y.shape


@torch.no_grad()
def reconstruct(
    exported: ExportedModel, symbols: torch.Tensor, shape: torch.Size, height: int, width: int, tiling: Tiling = Tiling()
) -> np.ndarray:
    """Decoded 8-bit pixels from quantization indices: what the decoder shows."""
    return synthesize(exported.model.synthesis, exported.model.from_symbols(symbols, shape), height, width, tiling)


@dataclass
class Encoded:
    """A `.bin` file's bytes with the symbols it carries, for callers that also want the reconstruction."""

    data: bytes
    symbols: torch.Tensor
    shape: torch.Size


def encode(exported: ExportedModel, pixels: np.ndarray, mode: ImageMode = ImageMode.RGB) -> Encoded:
    """Encode an (H, W, 3) uint8 image into a complete `.bin` file."""
    height, width = pixels.shape[:2]
    symbols, shape = image_symbols(exported, pixels)
    payload = coder.encode(list(symbols.numpy()), exported.tables, escape=True)
    header = Header(
        model_id=exported.model_id,
        height=height,
        width=width,
        mode=mode,
        pad_bottom=padding(height),
        pad_right=padding(width),
        payload_length=len(payload),
    )
    return Encoded(pack(header, payload), symbols, shape)


def compress(exported: ExportedModel, pixels: np.ndarray, mode: ImageMode = ImageMode.RGB) -> bytes:
    """The complete `.bin` file for an (H, W, 3) uint8 image."""
    return encode(exported, pixels, mode).data


def latent_shape(exported: ExportedModel, header: Header) -> torch.Size:
    """Shape of the latent that a file with this header carries."""
    if header.pad_bottom != padding(header.height) or header.pad_right != padding(header.width):
        raise BitstreamError("padding in the header does not match the image size")
    return torch.Size(
        (
            1,
            exported.model.config.M,
            (header.height + header.pad_bottom) // DOWNSAMPLING,
            (header.width + header.pad_right) // DOWNSAMPLING,
        )
    )


def decode_symbols(exported: ExportedModel, header: Header, payload: bytes) -> tuple[torch.Tensor, torch.Size]:
    """Entropy-decode the payload into indices (G, P); only the integer tables are used."""
    if header.model_id != exported.model_id:
        raise BitstreamError(f"file was made by model {header.model_id.hex()}, another model than the one given")
    _require_image_model(exported)
    shape = latent_shape(exported, header)
    positions = shape[0] * shape[2] * shape[3]
    try:
        groups = coder.decode(payload, exported.tables, [positions] * len(exported.tables), escape=header.version >= 2)
    except (ValueError, RuntimeError) as error:
        raise BitstreamError(f"payload cannot be decoded ({error})") from None
    return torch.from_numpy(np.stack(groups)), shape


def decode(exported: ExportedModel, header: Header, payload: bytes) -> np.ndarray:
    """Decoded (H, W, 3) uint8 pixels of a file already parsed (whose header named the model to load)."""
    symbols, shape = decode_symbols(exported, header, payload)
    return reconstruct(exported, symbols, shape, header.height, header.width)


def decompress(exported: ExportedModel, data: bytes) -> np.ndarray:
    """The exact inverse of `compress`: a whole `.bin` file's bytes -> (H, W, 3) uint8 pixels."""
    return decode(exported, *parse(data))

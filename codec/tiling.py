"""The image transforms run tile by tile, so memory stays bounded on large images.

A latent tile is computed from its image area widened by `margin` latent rows and columns on each
side and then cropped (and the same for synthesis). The margin covers the transforms' receptive
field (30 pixels for g_a, under 2 latent positions for g_s), so every kept value sees exactly the
inputs it sees in one whole-image pass: tiled and untiled outputs are identical (with one thread;
with several, PyTorch may split a convolution's sums by tensor size, for whole images too).

Tiles go through the transforms in channels-last layout: PyTorch's CPU convolutions run about a third
faster on it, and on kodim05 it decoded the same pixels with one and two threads, where the default
layout did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from codec.transforms import DOWNSAMPLING


@dataclass(frozen=True)
class Tiling:
    """Tile size and context margin in latent positions (one latent position = 16 pixels per side).

    Margins under 2 leave seams; the tests use them to show that seams would be seen.
    """

    tile: int = 64
    margin: int = 2

    def __post_init__(self) -> None:
        if self.tile < 1 or self.margin < 0:
            raise ValueError("tiles need at least 1 latent position and a margin of at least 0")


@dataclass(frozen=True)
class Tile:
    """Kept latent rows and columns, the wider ones to compute them from, and the kept part within those."""

    rows: slice
    cols: slice
    outer_rows: slice
    outer_cols: slice
    inner_rows: slice
    inner_cols: slice


def _spans(length: int, tiling: Tiling) -> Iterator[tuple[slice, slice, slice]]:
    for start in range(0, length, tiling.tile):
        stop = min(start + tiling.tile, length)
        outer = slice(max(0, start - tiling.margin), min(length, stop + tiling.margin))
        yield slice(start, stop), outer, slice(start - outer.start, stop - outer.start)


def tiles(height: int, width: int, tiling: Tiling) -> Iterator[Tile]:
    """Tiles covering a latent of height x width positions, row by row."""
    for rows, outer_rows, inner_rows in _spans(height, tiling):
        for cols, outer_cols, inner_cols in _spans(width, tiling):
            yield Tile(rows, cols, outer_rows, outer_cols, inner_rows, inner_cols)


def _pixel_slice(span: slice) -> slice:
    return slice(span.start * DOWNSAMPLING, span.stop * DOWNSAMPLING)


def analyse(analysis: Callable[[torch.Tensor], torch.Tensor], padded: np.ndarray, tiling: Tiling) -> torch.Tensor:
    """Latent (1, M, H/16, W/16) of padded (H, W, 3) uint8 pixels, H and W multiples of 16.

    Only one tile of the image is held as floats at a time.
    """
    height, width = padded.shape[0] // DOWNSAMPLING, padded.shape[1] // DOWNSAMPLING
    latent = None
    for tile in tiles(height, width, tiling):
        area = padded[_pixel_slice(tile.outer_rows), _pixel_slice(tile.outer_cols)]
        x = torch.from_numpy(np.ascontiguousarray(area)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        y = analysis(x.contiguous(memory_format=torch.channels_last))[..., tile.inner_rows, tile.inner_cols]
        if latent is None:
            latent = y.new_empty(1, y.shape[1], height, width)
        latent[..., tile.rows, tile.cols] = y
    return latent


def synthesize(synthesis: Callable[[torch.Tensor], torch.Tensor], latent: torch.Tensor, height: int, width: int, tiling: Tiling) -> np.ndarray:
    """8-bit pixels (height, width, 3) of a latent (1, M, h, w), cropped to the image size.

    Each tile is rounded to 8 bits as soon as it is made, so no whole float image is ever held.
    """
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for tile in tiles(latent.shape[2], latent.shape[3], tiling):
        x_hat = synthesis(latent[..., tile.outer_rows, tile.outer_cols].contiguous(memory_format=torch.channels_last))
        x_hat = x_hat[0, :, _pixel_slice(tile.inner_rows), _pixel_slice(tile.inner_cols)]
        rows, cols = _pixel_slice(tile.rows), _pixel_slice(tile.cols)
        keep_rows, keep_cols = min(rows.stop, height) - rows.start, min(cols.stop, width) - cols.start
        x_hat = x_hat[:, :keep_rows, :keep_cols].clamp(0.0, 1.0)
        pixels[rows.start : rows.start + keep_rows, cols.start : cols.start + keep_cols] = (
            torch.round(x_hat * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()
        )
    return pixels

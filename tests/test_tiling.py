"""Tiled transforms give exactly the whole-image result, so large images can be coded in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec import coding
from codec.tiling import Tiling, tiles
from tests.helpers import random_image

WHOLE = Tiling(tile=1 << 20)


@pytest.fixture(autouse=True)
def one_thread():
    """Exact equality is a single-thread property (codec/tiling.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiles_cover_the_latent_once():
    covered = np.zeros((7, 12), dtype=int)
    for tile in tiles(7, 12, Tiling(tile=3, margin=2)):
        covered[tile.rows, tile.cols] += 1
        assert tile.outer_rows.start <= tile.rows.start and tile.rows.stop <= tile.outer_rows.stop
        assert tile.inner_rows.stop - tile.inner_rows.start == tile.rows.stop - tile.rows.start
    assert (covered == 1).all()


@pytest.mark.parametrize("tile", [1, 3])
@pytest.mark.parametrize("size", [(97, 161), (64, 48)])
def test_tiled_coding_equals_the_whole_image_pass(tiny_vq, size, tile):
    pixels = random_image(*size, seed=11)
    tiling = Tiling(tile=tile)
    symbols, shape = coding.image_symbols(tiny_vq, pixels, WHOLE)
    assert torch.equal(coding.latent(tiny_vq, pixels, tiling), coding.latent(tiny_vq, pixels, WHOLE))
    tiled = coding.reconstruct(tiny_vq, symbols, shape, *size, tiling=tiling)
    assert np.array_equal(tiled, coding.reconstruct(tiny_vq, symbols, shape, *size, tiling=WHOLE))


def test_a_margin_too_small_leaves_seams(tiny_vq):
    """The equality above holds because of the margin: without it, tile borders show."""
    pixels = random_image(96, 96, seed=12)
    whole = coding.latent(tiny_vq, pixels, WHOLE)
    assert not torch.equal(coding.latent(tiny_vq, pixels, Tiling(tile=2, margin=0)), whole)
    assert not torch.equal(coding.latent(tiny_vq, pixels, Tiling(tile=2, margin=1)), whole)

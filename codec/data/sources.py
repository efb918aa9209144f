"""The toy sources of paper 004: 1-D Gaussian, 2-D Boomerang, 8-D Laplace."""

from __future__ import annotations

import math

import torch

BOOMERANG_CORRELATION = 0.9


def gaussian(count: int, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) samples, (count, 1)."""
    return torch.randn(count, 1, generator=generator)


def boomerang(count: int, generator: torch.Generator) -> torch.Tensor:
    """NVTC's Boomerang: z ~ N(0, [[1, .9], [.9, 1]]), x = (z2 + 1 - z1^2, z1); (count, 2).

    The map is volume preserving (Jacobian determinant 1), so h(x) = h(z).
    """
    z1 = torch.randn(count, generator=generator)
    independent = torch.randn(count, generator=generator)
    z2 = BOOMERANG_CORRELATION * z1 + math.sqrt(1 - BOOMERANG_CORRELATION**2) * independent
    return torch.stack([z2 + 1 - z1**2, z1], dim=1)


def laplace(count: int, generator: torch.Generator, dim: int = 8, scale: float = 1.0) -> torch.Tensor:
    """i.i.d. Laplace(0, scale) samples, (count, dim), as the difference of two Exp(1) draws.

    (An inverse CDF in float32 gave an infinite sample whenever the uniform draw was exactly 0, about
    once in 17 million, and one such sample turned a whole training run into NaNs.)
    """
    draws = torch.empty(2, count, dim).exponential_(generator=generator)
    return scale * (draws[0] - draws[1])


SOURCES = {"gaussian": gaussian, "boomerang": boomerang, "laplace": laplace}
DIMENSIONS = {"gaussian": 1, "boomerang": 2, "laplace": 8}

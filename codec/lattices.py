"""Lattices a codebook can start on: the integer lattice Z^d and the densest known lattice of dimension d.

Every lattice here is scaled to cells of volume 1, the cells of a uniform quantizer with step 1, so a
codebook started on any of them costs about the same rate at the start: what differs is the cell's
shape. At high rate the normalized second moment G of the cell sets the distortion: Z^d has 1/12
(0.0833) in every dimension, the hexagonal lattice A2 0.0802, the checkerboard lattice D4 0.0766
(0.37 dB below Z^4), E8 0.0717 (Conway and Sloane, Sphere Packings, Lattices and Groups, ch. 21).
"""

from __future__ import annotations

import itertools
import math

import torch

_GENERATORS = {
    "Z": lambda d: torch.eye(d, dtype=torch.float64),
    "A2": lambda d: torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64),
    "D4": lambda d: torch.tensor(
        [[-1.0, -1.0, 0.0, 0.0], [1.0, -1.0, 0.0, 0.0], [0.0, 1.0, -1.0, 0.0], [0.0, 0.0, 1.0, -1.0]], dtype=torch.float64
    ),
}
NORMALIZED_SECOND_MOMENT = {"Z": 1 / 12, "A2": 0.0801875, "D4": 0.0766032}
"""G of each lattice's cell (Conway and Sloane, table 2.3): at high rate an entropy-coded lattice
quantizer has MSE per dimension G * 2^(2(h - R)), the Shannon lower bound 2^(2(h - R)) / (2 pi e)."""
BEST = {1: "Z", 2: "A2", 4: "D4"}
"""The densest known lattice (best quantizer) per dimension that codebooks here start on."""


def generator(name: str, dim: int) -> torch.Tensor:
    """Rows are a basis of lattice `name` in dimension `dim`, scaled so that a cell has volume 1."""
    if name != "Z" and BEST.get(dim) != name:
        raise ValueError(f"no lattice {name!r} in dimension {dim} (known: Z, A2 in 2-D, D4 in 4-D)")
    basis = _GENERATORS[name](dim)
    return basis / abs(float(torch.linalg.det(basis))) ** (1.0 / dim)


def nearest_points(vectors: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """The lattice point nearest to each of vectors (N, d), (N, d): rounding in the basis' coordinates,
    then the best of that point's neighbours one step away in every coordinate (exact for the reduced
    bases above, whose Voronoi-relevant vectors all lie within that neighbourhood)."""
    basis = basis.to(torch.float64)
    coordinates = torch.round(vectors.to(torch.float64) @ torch.linalg.inv(basis))
    steps = torch.tensor(list(itertools.product((-1.0, 0.0, 1.0), repeat=basis.shape[0])), dtype=torch.float64)
    candidates = (coordinates[:, None, :] + steps[None]) @ basis
    best = ((candidates - vectors.to(torch.float64)[:, None, :]) ** 2).sum(-1).argmin(1)
    return candidates[torch.arange(len(vectors)), best].to(vectors.dtype)


def points_near(centre: torch.Tensor, count: int, basis: torch.Tensor) -> torch.Tensor:
    """The `count` lattice points nearest to `centre` (d,), nearest first (ties in enumeration order).

    They lie within the radius of a ball of volume `count` plus the covering radius (cells have
    volume 1, and those that cover the ball hold at least `count` points), bounded here by half the
    sum of the basis vectors' lengths. Coordinate i of a point within radius R of the centre is
    within R |column i of the inverse basis| of the centre's, so only that box is enumerated.
    """
    dim = basis.shape[0]
    basis = basis.to(torch.float64)
    inverse = torch.linalg.inv(basis)
    ball_radius = (count * math.gamma(dim / 2 + 1) / math.pi ** (dim / 2)) ** (1 / dim)
    radius = ball_radius + 0.5 * float(basis.norm(dim=1).sum())
    middle = centre.to(torch.float64) @ inverse
    ranges = [
        torch.arange(math.floor(m - reach), math.ceil(m + reach) + 1, dtype=torch.float64)
        for m, reach in zip(middle.tolist(), (radius * inverse.norm(dim=0)).tolist())
    ]
    box = torch.cartesian_prod(*ranges).reshape(-1, dim) @ basis
    squared = ((box - centre.to(torch.float64)) ** 2).sum(1)
    near = squared <= radius**2
    order = squared[near].argsort(stable=True)
    return box[near][order[:count]].to(centre.dtype)
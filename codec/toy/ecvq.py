"""Entropy-constrained VQ in the source space: Chou, Lookabaugh and Gray's Lagrangian Lloyd algorithm."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from codec import lattices, search
from codec.training.codebook_init import UNSEEN_COUNT, kmeans_plus_plus, lattice_codebook


@dataclass
class EntropyCodedQuantizer:
    """Codewords (K, d) and their probabilities (K,)."""

    codebook: torch.Tensor
    probs: torch.Tensor


def assign(samples: torch.Tensor, quantizer: EntropyCodedQuantizer, lmbda: float) -> torch.Tensor:
    """argmin_k |x - c_k|^2 + lmbda * (-log2 p_k), by the codec's exact search (k-d trees in low d)."""
    penalty = lmbda * -torch.log2(quantizer.probs)
    return search.nearest(samples[None], quantizer.codebook[None], penalty[None])[0]


def lagrangian_lloyd(
    samples: torch.Tensor,
    lmbda: float,
    start: EntropyCodedQuantizer,
    iterations: int = 50,
) -> EntropyCodedQuantizer:
    """Alternate ECVQ assignment and centroid/probability updates; empty cells are dropped."""
    quantizer = start
    for _ in range(iterations):
        indices = assign(samples, quantizer, lmbda)
        counts = torch.bincount(indices, minlength=len(quantizer.codebook)).to(samples.dtype)
        sums = torch.zeros_like(quantizer.codebook).index_add_(0, indices, samples)
        used = counts > 0
        quantizer = EntropyCodedQuantizer(sums[used] / counts[used, None], counts[used] / len(samples))
    return quantizer


def initial_quantizer(samples: torch.Tensor, count: int, seed: int = 0) -> EntropyCodedQuantizer:
    """`count` codewords seeded by k-means++ over at most max(4 * count, 65536) of the samples (its cost grows
    with samples times codewords: 32,768 codewords over 1.6M samples took 500 s), equal probabilities."""
    generator = torch.Generator().manual_seed(seed)
    subset = samples[torch.randperm(len(samples), generator=generator)[: max(4 * count, 1 << 16)]]
    return EntropyCodedQuantizer(kmeans_plus_plus(subset, count, generator)[0], torch.full((count,), 1.0 / count))


def lattice_quantizer(samples: torch.Tensor, count: int, lattice: str, lmbda: float) -> EntropyCodedQuantizer:
    """The `count` points of `lattice` that most samples (N, d) fall nearest to, scaled to the cell
    that entropy-coded lattice quantization takes at high rate for `lmbda`, probabilities from
    their counts.

    With cells of volume V the rate per dimension falls as log2(V) / d and the MSE per dimension is
    G V^(2/d) (G the lattice's normalized second moment); minimizing MSE + lmbda * rate gives an MSE
    of lmbda / (2 ln 2) whatever the lattice. A Lloyd run from here keeps the lattice's cell shape
    where k-means++ from samples finds none (it plateaued under scalar quantization on the Laplace).
    """
    scale = math.sqrt(lmbda / (2 * math.log(2)) / lattices.NORMALIZED_SECOND_MOMENT[lattice])
    points, counts = lattice_codebook(samples / scale, count, lattices.generator(lattice, samples.shape[1]).to(samples.dtype))
    counts = counts + UNSEEN_COUNT
    return EntropyCodedQuantizer(points * scale, counts / counts.sum())


def rate_distortion(samples: torch.Tensor, quantizer: EntropyCodedQuantizer, lmbda: float) -> tuple[float, float]:
    """(bits per dimension, MSE per dimension) on `samples`, the bits being what an entropy coder with
    the quantizer's own probabilities (from its training samples) spends, as a codec pays with its
    entropy model. The index entropy of the samples themselves would flatter large codebooks: for
    131,072 4-D lattice codewords on 200,000 test vectors of the Laplace it reads 0.07 bpd lower."""
    indices = assign(samples, quantizer, lmbda)
    dim = samples.shape[1]
    mse = float(((samples - quantizer.codebook[indices]) ** 2).mean())
    return float(-torch.log2(quantizer.probs[indices]).mean()) / dim, mse

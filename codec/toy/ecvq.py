"""Entropy-constrained VQ in the source space: Chou, Lookabaugh and Gray's Lagrangian Lloyd algorithm."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from codec import search
from codec.training.codebook_init import kmeans_plus_plus


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


def rate_distortion(samples: torch.Tensor, quantizer: EntropyCodedQuantizer, lmbda: float) -> tuple[float, float]:
    """(bits per dimension from the empirical index entropy, MSE per dimension) on `samples`."""
    indices = assign(samples, quantizer, lmbda)
    probs = torch.bincount(indices, minlength=len(quantizer.codebook)).double() / len(samples)
    probs = probs[probs > 0]
    dim = samples.shape[1]
    mse = float(((samples - quantizer.codebook[indices]) ** 2).mean())
    return float(-(probs * torch.log2(probs)).sum()) / dim, mse

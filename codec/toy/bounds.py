"""Rate-distortion references in bits per dimension against MSE per dimension."""

from __future__ import annotations

import math

import numpy as np

from codec import lattices
from codec.data.sources import BOOMERANG_CORRELATION

HALF_LOG2_2PIE = 0.5 * math.log2(2 * math.pi * math.e)


def gaussian_rd(mse: float, variance: float = 1.0) -> float:
    """R(D) of a Gaussian: max(0, 1/2 log2(variance / D))."""
    return max(0.0, 0.5 * math.log2(variance / mse))


def laplace_shannon_lower_bound(mse: float, scale: float = 1.0) -> float:
    """h(X) - 1/2 log2(2 pi e D) with h = log2(2 e b): 0.3956 - 1/2 log2 D for b = 1."""
    return max(0.0, math.log2(2 * math.e * scale) - HALF_LOG2_2PIE - 0.5 * math.log2(mse))


def high_rate_gap_db(lattice: str) -> float:
    """How far (dB of MSE) an entropy-coded lattice quantizer sits under the Shannon lower bound at
    high rate: 10 log10(2 pi e G), 1.53 dB for scalar quantization (Z), 1.17 dB for D4."""
    return 10 * math.log10(2 * math.pi * math.e * lattices.NORMALIZED_SECOND_MOMENT[lattice])


def laplace_high_rate_lattice(mse: float, lattice: str, scale: float = 1.0) -> float:
    """Rate (bits per dimension) at which an entropy-coded `lattice` quantizer of a Laplace source
    reaches `mse` at high rate: the Shannon lower bound's rate at mse / (2 pi e G)."""
    ratio = 2 * math.pi * math.e * lattices.NORMALIZED_SECOND_MOMENT[lattice]
    return laplace_shannon_lower_bound(mse / ratio, scale)


def laplace_gaussian_upper_bound(mse: float, scale: float = 1.0) -> float:
    """R(D) of the Gaussian of the same variance 2 b^2, which upper-bounds the Laplace R(D)."""
    return gaussian_rd(mse, 2 * scale**2)


def boomerang_shannon_lower_bound(mse: float) -> float:
    """Per dimension: h(z)/2 - 1/2 log2(2 pi e D) = -0.5990 - 1/2 log2 D (the map keeps h)."""
    differential_entropy = 2 * HALF_LOG2_2PIE + 0.5 * math.log2(1 - BOOMERANG_CORRELATION**2)
    return max(0.0, differential_entropy / 2 - HALF_LOG2_2PIE - 0.5 * math.log2(mse))


def blahut_arimoto(
    points: np.ndarray, weights: np.ndarray, slopes: np.ndarray, iterations: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Rate (bits/dim) and MSE/dim of a discrete source on `points` (N, d) with probabilities `weights`.

    Reproductions range over the same points. One (rate, distortion) pair per slope s > 0 of
    the Lagrangian R + s D (D in MSE per dimension).
    """
    dim = points.shape[1]
    distortion = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1) / dim
    rates, distortions = [], []
    for slope in slopes:
        q = np.full(len(points), 1.0 / len(points))
        kernel = np.exp(-slope * (distortion - distortion.min(1, keepdims=True)))
        for _ in range(iterations):
            joint = kernel * q
            conditional = joint / joint.sum(1, keepdims=True)
            q = weights @ conditional
        joint = kernel * q
        conditional = joint / joint.sum(1, keepdims=True)
        ratio = np.where(conditional > 0, conditional / np.maximum(q, 1e-300), 1.0)
        rates.append(float((weights[:, None] * conditional * np.log2(ratio)).sum()) / dim)
        distortions.append(float((weights[:, None] * conditional * distortion).sum()))
    return np.array(rates), np.array(distortions)

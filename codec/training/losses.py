"""Loss terms shared by the training methods."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from codec.models import VQCodec, bits_per_pixel
from codec.quantizers import uniform_on_sphere

MIXTURE_NEIGHBOURS = 8
"""Codewords nearest to the noisy latent that the mixture rate surrogate sums over."""
COMMITMENT = 0.25
"""Weight of the commitment half of the VQ distance loss (VQ-VAE's value)."""


def rd_loss(bits: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bpp, mse) with loss = bpp + lmbda * 255^2 * mse."""
    bpp = bits_per_pixel(bits, x)
    mse = F.mse_loss(x_hat, x)
    return bpp + lmbda * 255.0**2 * mse, bpp, mse


def vq_distance_loss(vectors: torch.Tensor, codewords: torch.Tensor) -> torch.Tensor:
    """VQ-VAE's codebook loss |sg(v) - c|^2 plus the commitment loss |v - sg(c)|^2, mean per vector."""
    codebook = ((vectors.detach() - codewords) ** 2).sum(-1).mean()
    commitment = ((vectors - codewords.detach()) ** 2).sum(-1).mean()
    return codebook + COMMITMENT * commitment


def mixture_rate_bits(model: VQCodec, noisy: torch.Tensor, scale_sq: torch.Tensor) -> torch.Tensor:
    """Differentiable rate: -log2 sum_k p_k exp(-|v - c_k|^2 / 2s^2) over the nearest codewords.

    At a codeword far from the others it equals -log2 p of that codeword. Codebooks and
    probabilities enter as constants: this term moves the encoder only.
    """
    quantizer = model.quantizer
    with torch.no_grad():
        codebooks = quantizer.codebooks
        neighbours = quantizer.k_nearest(noisy, MIXTURE_NEIGHBOURS)
        log_p = model.entropy.log2_probs() * math.log(2.0)
    groups = torch.arange(quantizer.groups, device=noisy.device)[:, None, None]
    centres = codebooks[groups, neighbours].detach()
    squared = ((noisy.unsqueeze(2) - centres) ** 2).sum(-1)
    log_mixture = torch.logsumexp(log_p[groups, neighbours] - squared / (2 * scale_sq), dim=-1)
    return -log_mixture.sum() / math.log(2.0)


def sphere_rate_surrogate(model: VQCodec, vectors: torch.Tensor, quantized: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """A term whose gradient is the sphere-surface estimate of the rate gradient (paper Eq. 9).

    grad E_u[R(y + r u)] = (d / r) E_w[(R(y + r w) - R(y)) w], w on the unit sphere; R(y) is the baseline.
    """
    quantizer = model.quantizer
    with torch.no_grad():
        radius = (vectors - quantized).norm(dim=-1, keepdim=True).clamp_min(1e-6)
        direction = uniform_on_sphere(vectors.shape[:-1], quantizer.dim, vectors.device)
        bits = -model.entropy.log2_probs()
        sampled = bits.gather(1, quantizer.nearest(vectors + radius * direction))
        baseline = bits.gather(1, indices)
        weight = quantizer.dim / radius * (sampled - baseline).unsqueeze(-1)
    return (weight * direction * vectors).sum()


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag_embed(values.clamp_min(1e-10).sqrt()) @ vectors.transpose(-1, -2)


def gaussian_wasserstein(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor) -> torch.Tensor:
    """W2 distance between Gaussians: sqrt(|mu_a-mu_b|^2 + tr A + tr B - 2 tr((A^1/2 B A^1/2)^1/2)); batched."""
    root_a = _sqrtm_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(1e-10).sqrt().sum(-1)
    trace = torch.diagonal(cov_a, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov_b, dim1=-2, dim2=-1).sum(-1)
    squared = ((mean_a - mean_b) ** 2).sum(-1) + trace - 2 * cross
    return squared.clamp_min(1e-12).sqrt()


def _moments(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (G, d) and covariance (G, d, d) of samples (G, N, d), with a small ridge for stable roots."""
    mean = samples.mean(1)
    centred = samples - mean.unsqueeze(1)
    cov = centred.transpose(1, 2) @ centred / max(samples.shape[1] - 1, 1)
    return mean, cov + 1e-6 * torch.eye(samples.shape[-1], device=samples.device)


def wasserstein_loss(vectors: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Paper 002's distribution matching: Gaussian W2 between each group's latents and its codewords, mean over groups."""
    return gaussian_wasserstein(*_moments(vectors), *_moments(codebooks)).mean()

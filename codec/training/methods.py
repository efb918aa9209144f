"""One training step per method. Each takes the model, a batch and its optimizers and returns metrics."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from codec.models import UQCodec, VQCodec, bits_per_pixel, psnr
from codec.quantizers import sphere_noise, uniform_on_sphere
from codec.training.config import TrainConfig

MIXTURE_NEIGHBOURS = 8
"""Codewords nearest to the noisy latent that the mixture rate surrogate sums over."""


@dataclass
class StepResult:
    loss: float
    bpp: float
    psnr: float
    indices: torch.Tensor | None = None


def rd_loss(bits: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bpp, mse) with loss = bpp + lmbda * 255^2 * mse."""
    bpp = bits_per_pixel(bits, x)
    mse = F.mse_loss(x_hat, x)
    return bpp + lmbda * 255.0**2 * mse, bpp, mse


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of `modules` get no gradient inside the block (and so cannot be changed by a step)."""
    parameters = [p for module in modules for p in module.parameters() if p.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def _result(loss: torch.Tensor, bpp: torch.Tensor, mse: torch.Tensor, indices: torch.Tensor | None = None) -> StepResult:
    return StepResult(loss.item(), bpp.item(), psnr(mse.item()), indices)


def uq_aun_step(model: UQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Additive uniform noise in training; the bottleneck's quantile (aux) loss has its own optimizer."""
    y = model.analysis(x)
    y_tilde, likelihoods = model.entropy_bottleneck(y)
    bits = -torch.log2(likelihoods).sum()
    loss, bpp, mse = rd_loss(bits, x, model.synthesis(y_tilde), config.lmbda)
    optimizers["main"].zero_grad()
    loss.backward()
    optimizers["main"].step()
    optimizers["aux"].zero_grad()
    model.entropy_bottleneck.loss().backward()
    optimizers["aux"].step()
    return _result(loss, bpp, mse)


def mixture_rate_bits(model: VQCodec, noisy: torch.Tensor, scale_sq: torch.Tensor) -> torch.Tensor:
    """Differentiable rate: -log2 sum_k p_k exp(-|v - c_k|^2 / 2s^2) over the nearest codewords.

    At a codeword far from the others it equals -log2 p of that codeword.
    """
    quantizer = model.quantizer
    with torch.no_grad():
        codebooks = quantizer.codebooks
        distances = torch.cdist(noisy, codebooks)
        neighbours = distances.topk(min(MIXTURE_NEIGHBOURS, quantizer.codebook_size), largest=False).indices
        log_p = model.entropy.log2_probs() * math.log(2.0)
    groups = torch.arange(quantizer.groups)[:, None, None]
    centres = codebooks[groups, neighbours]
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
        direction = uniform_on_sphere(vectors.shape[:-1], quantizer.dim).to(vectors)
        bits = -model.entropy.log2_probs()
        sampled = bits.gather(1, quantizer.nearest(vectors + radius * direction))
        baseline = bits.gather(1, indices)
        weight = quantizer.dim / radius * (sampled - baseline).unsqueeze(-1)
    return (weight * direction * vectors).sum()


def ours_step(model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Encoder/decoder alternating optimization (paper 004).

    Centers step: encoder frozen, actual quantization, update decoder, codebooks and logits.
    Boundaries step: decoder, codebooks and logits frozen, sphere noise, update the encoder.
    """
    quantizer = model.quantizer
    with torch.no_grad():
        vectors = quantizer.to_vectors(model.analysis(x))
        indices = quantizer.nearest(vectors)
    shape = (x.shape[0], model.config.M, x.shape[2] // 16, x.shape[3] // 16)
    y_hat = quantizer.from_vectors(quantizer.lookup(indices), shape)
    loss, bpp, mse = rd_loss(model.entropy.bits(indices), x, model.synthesis(y_hat), config.lmbda)
    optimizers["decoder"].zero_grad()
    loss.backward()
    optimizers["decoder"].step()

    with frozen(model.g_s, model.quantizer, model.entropy):
        vectors = quantizer.to_vectors(model.analysis(x))
        with torch.no_grad():
            indices_now = quantizer.nearest(vectors)
            quantized = quantizer.lookup(indices_now)
        noisy = sphere_noise(vectors, quantized)
        if config.rate_gradient == "mixture":
            scale_sq = ((vectors - quantized) ** 2).sum(-1).mean(1).clamp_min(1e-6)[:, None, None].detach()
            rate = mixture_rate_bits(model, noisy, scale_sq)
        else:
            rate = sphere_rate_surrogate(model, vectors, quantized, indices_now)
        x_tilde = model.synthesis(quantizer.from_vectors(noisy, shape))
        encoder_loss, _, _ = rd_loss(rate, x, x_tilde, config.lmbda)
        optimizers["encoder"].zero_grad()
        encoder_loss.backward()
        optimizers["encoder"].step()
    return _result(loss, bpp, mse, indices)


STEPS = {"uq-aun": uq_aun_step, "ours": ours_step}


def make_optimizers(model: UQCodec | VQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """The optimizers a method steps, by name."""
    adam = torch.optim.Adam
    if config.method == "uq-aun":
        main = [p for name, p in model.named_parameters() if not name.endswith("quantiles")]
        return {"main": adam(main, lr=config.lr), "aux": adam([model.entropy_bottleneck.quantiles], lr=1e-3)}
    decoder = [*model.g_s.parameters(), *model.quantizer.parameters(), *model.entropy.parameters()]
    return {"decoder": adam(decoder, lr=config.lr), "encoder": adam(model.g_a.parameters(), lr=config.lr)}

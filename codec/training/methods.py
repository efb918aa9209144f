"""One training step per method: each takes the model, a batch, its optimizers and the config.

Methods (DESIGN.md section 2):
- uq-aun, uq-ste: uniform quantization with additive uniform noise / straight-through rounding.
- vq-ste: NVTC-style VQ, entropy-constrained assignment, straight-through, VQ distance loss.
- ours: encoder/decoder alternation with the sphere-noise approximation (paper 004).
- soft-to-hard, gumbel: the same alternation with another approximation in the boundaries step
  (ablations A2, A3).
- no-alternation: sphere noise fed to the decoder, all parts updated together (ablation A1).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from codec.models import UQCodec, VQCodec, psnr
from codec.quantizers import gumbel_assignment, sinkhorn_assign, soft_assignment, sphere_noise
from codec.training.config import TrainConfig
from codec.training.losses import (
    mixture_rate_bits,
    rd_loss,
    sphere_rate_surrogate,
    vq_distance_loss,
    wasserstein_loss,
)

ALTERNATING = ("ours", "soft-to-hard", "gumbel")


@dataclass
class StepResult:
    loss: float
    bpp: float
    psnr: float
    indices: torch.Tensor | None = None


def _result(loss: torch.Tensor, bpp: torch.Tensor, mse: torch.Tensor, indices: torch.Tensor | None = None) -> StepResult:
    return StepResult(loss.item(), bpp.item(), psnr(mse.item()), indices)


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


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float = 0.0) -> None:
    """One optimizer step on `loss`, with the gradient norm clipped to `clip` when it is positive."""
    optimizer.zero_grad()
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
    optimizer.step()


# Uniform quantization ---------------------------------------------------------------------------


def _bottleneck_bits(model: UQCodec, y_hat: torch.Tensor) -> torch.Tensor:
    """Bits of already-quantized values under the bottleneck, differentiable with respect to them."""
    bottleneck = model.entropy_bottleneck
    values = y_hat.transpose(0, 1).reshape(model.config.M, 1, -1)
    likelihood, _, _ = bottleneck._likelihood(values)
    return -torch.log2(bottleneck.likelihood_lower_bound(likelihood)).sum()


def _uq_update(model: UQCodec, x: torch.Tensor, y_hat: torch.Tensor, bits: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    loss, bpp, mse = rd_loss(bits, x, model.synthesis(y_hat), config.lmbda)
    _update(optimizers["main"], loss, config.clip_grad_norm)
    _update(optimizers["aux"], model.entropy_bottleneck.loss())
    return _result(loss, bpp, mse)


def uq_aun_step(model: UQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Additive uniform noise in training; the bottleneck's quantile (aux) loss has its own optimizer."""
    y_tilde, likelihoods = model.entropy_bottleneck(model.analysis(x))
    return _uq_update(model, x, y_tilde, -torch.log2(likelihoods).sum(), optimizers, config)


def uq_ste_step(model: UQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Rounding around the medians in the forward pass, identity gradient in the backward pass."""
    y = model.analysis(x)
    medians = model.entropy_bottleneck._get_medians().reshape(1, -1, 1, 1)
    y_hat = y + (torch.round(y - medians) + medians - y).detach()
    return _uq_update(model, x, y_hat, _bottleneck_bits(model, y_hat), optimizers, config)


# Vector quantization ----------------------------------------------------------------------------


def _training_indices(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The index choice used for training updates: Sinkhorn's plan if asked, else the encoder's own search."""
    if config.sinkhorn:
        return sinkhorn_assign(vectors, model.quantizer.codebooks.detach())
    return model.quantizer.nearest(vectors, model.search_penalty())


def _with_wasserstein(loss: torch.Tensor, model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if not config.wasserstein:
        return loss
    return loss + config.wasserstein_weight * wasserstein_loss(vectors, model.quantizer.codebooks)


def vq_ste_step(model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """NVTC-style: the decoder sees the codeword, the encoder gets the decoder's gradient unchanged."""
    quantizer = model.quantizer
    y = model.analysis(x)
    vectors = quantizer.to_vectors(y)
    indices = _training_indices(model, vectors, config)
    codewords = quantizer.lookup(indices)
    straight_through = vectors + (codewords - vectors).detach()
    x_hat = model.synthesis(quantizer.from_vectors(straight_through, y.shape))
    loss, bpp, mse = rd_loss(model.entropy.bits(indices), x, x_hat, config.lmbda)
    loss = _with_wasserstein(loss + config.vq_beta * vq_distance_loss(vectors, codewords), model, vectors, config)
    _update(optimizers["main"], loss, config.clip_grad_norm)
    return _result(loss, bpp, mse, indices)


def _mean_squared_radius(vectors: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """Per group, the mean squared distance to the nearest codeword, (G, 1, 1): the kernel width of the
    mixture surrogate and the temperature of the relaxed assignments."""
    return ((vectors - quantized) ** 2).sum(-1).mean(1).clamp_min(1e-6)[:, None, None].detach()


def _sphere_approximation(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(y + r u, encoder rate term) with r the distance to the nearest codeword."""
    quantizer = model.quantizer
    with torch.no_grad():
        indices = quantizer.nearest(vectors)
        quantized = quantizer.lookup(indices)
    noisy = sphere_noise(vectors, quantized)
    if config.rate_gradient == "sphere":
        return noisy, sphere_rate_surrogate(model, vectors, quantized, indices)
    return noisy, mixture_rate_bits(model, noisy, _mean_squared_radius(vectors, quantized))


def _relaxed_approximation(assignment: Callable) -> Callable:
    """A boundaries-step approximation from soft codeword weights: weighted codeword, expected bits."""

    def approximation(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
        quantizer = model.quantizer
        with torch.no_grad():
            quantized = quantizer.lookup(quantizer.nearest(vectors))
            temperature = _mean_squared_radius(vectors, quantized)
            bits = -model.entropy.log2_probs()
        weights = assignment(vectors, quantizer.codebooks, temperature)
        return weights @ quantizer.codebooks, (weights * bits.unsqueeze(1)).sum()

    return approximation


ENCODER_APPROXIMATIONS = {
    "ours": _sphere_approximation,
    "soft-to-hard": _relaxed_approximation(soft_assignment),
    "gumbel": _relaxed_approximation(gumbel_assignment),
}


def alternating_step(model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Encoder/decoder alternating optimization (paper 004).

    Centers step: encoder frozen, actual quantization, update decoder, codebooks and logits.
    Boundaries step: decoder, codebooks and logits frozen, a differentiable approximation of the
    quantizer (sphere noise for 'ours'), update the encoder.
    """
    quantizer = model.quantizer
    y = model.analysis(x)  # one encoder pass serves both steps: the centers step leaves the encoder as it is
    with torch.no_grad():
        vectors = quantizer.to_vectors(y.detach())
        indices = _training_indices(model, vectors, config)
    shape = y.shape
    y_hat = quantizer.from_vectors(quantizer.lookup(indices), shape)
    loss, bpp, mse = rd_loss(model.entropy.bits(indices), x, model.synthesis(y_hat), config.lmbda)
    _update(optimizers["decoder"], _with_wasserstein(loss, model, vectors, config), config.clip_grad_norm)

    with frozen(model.g_s, model.quantizer, model.entropy):
        vectors = quantizer.to_vectors(y)
        approximate, rate = ENCODER_APPROXIMATIONS[config.method](model, vectors, config)
        encoder_loss, _, _ = rd_loss(rate, x, model.synthesis(quantizer.from_vectors(approximate, shape)), config.lmbda)
        _update(optimizers["encoder"], encoder_loss, config.clip_grad_norm)
    return _result(loss, bpp, mse, indices)


def no_alternation_step(model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
    """Ablation A1: sphere noise fed to the decoder, everything updated at once.

    The codebooks learn from a k-means style distance loss and the logits from the actual indices.
    """
    quantizer = model.quantizer
    y = model.analysis(x)
    vectors = quantizer.to_vectors(y)
    noisy, rate = _sphere_approximation(model, vectors, config)
    indices = _training_indices(model, vectors.detach(), config)
    codebook_loss = ((vectors.detach() - quantizer.lookup(indices)) ** 2).sum(-1).mean()
    x_tilde = model.synthesis(quantizer.from_vectors(noisy, y.shape))
    encoder_loss, _, mse = rd_loss(rate, x, x_tilde, config.lmbda)
    logits_loss, bpp, _ = rd_loss(model.entropy.bits(indices), x, x_tilde.detach(), 0.0)
    loss = _with_wasserstein(encoder_loss + logits_loss + codebook_loss, model, vectors, config)
    _update(optimizers["main"], loss, config.clip_grad_norm)
    return _result(encoder_loss, bpp, mse, indices)


STEPS: dict[str, Callable[..., StepResult]] = {
    "uq-aun": uq_aun_step,
    "uq-ste": uq_ste_step,
    "vq-ste": vq_ste_step,
    "ours": alternating_step,
    "soft-to-hard": alternating_step,
    "gumbel": alternating_step,
    "no-alternation": no_alternation_step,
}


def make_optimizers(model: UQCodec | VQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """The optimizers a method steps, by name; 'aux' keeps its own learning rate.

    The VQ logits learn `entropy_lr_scale` times faster than the rest: with Adam a logit moves about
    one learning rate per step, and a codeword's probability must be able to follow its use. The
    codewords learn `codebook_lr_scale` and the alternating methods' encoder `encoder_lr_scale` times as fast.
    """
    adam = torch.optim.Adam
    if config.quantizer == "uq":
        main = [p for name, p in model.named_parameters() if not name.endswith("quantiles")]
        return {"main": adam(main, lr=config.lr), "aux": adam([model.entropy_bottleneck.quantiles], lr=config.aux_lr)}
    scale = config.entropy_lr_scale
    entropy = {"params": list(model.entropy.parameters()), "lr": config.lr * scale, "lr_scale": scale}
    codebook_scale = config.codebook_lr_scale
    codebooks = {"params": list(model.quantizer.parameters()), "lr": config.lr * codebook_scale, "lr_scale": codebook_scale}
    if config.method in ALTERNATING:
        return {
            "decoder": adam([{"params": list(model.g_s.parameters())}, codebooks, entropy], lr=config.lr),
            "encoder": adam([{"params": list(model.g_a.parameters()), "lr_scale": config.encoder_lr_scale}], lr=config.lr * config.encoder_lr_scale),
        }
    transforms = [*model.g_a.parameters(), *model.g_s.parameters()]
    return {"main": adam([{"params": transforms}, codebooks, entropy], lr=config.lr)}

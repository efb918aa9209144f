"""Training methods, one class each: name, one-line description, the options it reads, optimizers, step.

`METHODS` is the registry: the CLI's choices and help, the benchmarks, the Kodak recipe and the
tests read it, so a new method is one class here (decorated with `@register`) and one test.
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
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterator

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
from entropy import bottleneck

@dataclass
class StepResult:
    loss: float
    bpp: float
    psnr: float
    indices: torch.Tensor | None = None
    trace: dict[str, float] = field(default_factory=dict)
    """What else a method reports of its step, for the log (e.g. the boundaries step's loss)."""


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


# The registry ------------------------------------------------------------------------------------


class Method:
    """A training method. Subclasses set the class attributes and implement `step`."""

    name: ClassVar[str]
    description: ClassVar[str]
    """One line: what the method does (the CLI's help shows it)."""
    quantizer: ClassVar[str] = "vq"
    """The codec family it trains: "uq" (UQCodec) or "vq" (VQCodec)."""
    options: ClassVar[tuple[str, ...]] = ()
    """The TrainConfig fields only this method (or its family) reads, besides the common ones."""

    def optimizers(self, model: UQCodec | VQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """The optimizers `step` updates, by name; a VQ method by default updates everything with one.

        The VQ logits learn `entropy_lr_scale` times faster than the rest: with Adam a logit moves
        about one learning rate per step, and a codeword's probability must be able to follow its
        use. The codewords learn `codebook_lr_scale` times as fast.
        """
        transforms = [*model.g_a.parameters(), *model.g_s.parameters()]
        return {"main": torch.optim.Adam([{"params": transforms}, *_quantizer_groups(model, config)], lr=config.lr)}

    def step(self, model: UQCodec | VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
        raise NotImplementedError


VQ_OPTIONS = (
    "dim", "codebook_size", "codebook_init", "entropy_lr_scale", "codebook_lr_scale",
    "sinkhorn", "wasserstein", "wasserstein_weight", "reactivate_every",
)
"""The TrainConfig fields every VQ method reads."""

METHODS: dict[str, Method] = {}
"""Every training method by name, in the order they were registered."""


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add one instance of a method to METHODS under its name."""
    if cls.name in METHODS:
        raise ValueError(f"two training methods are named {cls.name!r}")
    METHODS[cls.name] = cls()
    return cls


def _quantizer_groups(model: VQCodec, config: TrainConfig) -> list[dict]:
    """Adam parameter groups of the codebooks and the logits, each with its learning-rate scale."""
    scale, codebook_scale = config.entropy_lr_scale, config.codebook_lr_scale
    return [
        {"params": list(model.quantizer.parameters()), "lr": config.lr * codebook_scale, "lr_scale": codebook_scale},
        {"params": list(model.entropy.parameters()), "lr": config.lr * scale, "lr_scale": scale},
    ]


# Uniform quantization ---------------------------------------------------------------------------


class UniformQuantization(Method):
    """The uq methods: compressai's EntropyBottleneck, whose quantiles (the coded support) learn from
    their own aux loss with their own optimizer and learning rate."""

    quantizer = "uq"
    options = ("aux_lr",)

    def optimizers(self, model: UQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        main = [p for name, p in model.named_parameters() if not bottleneck.is_quantile_parameter(name)]
        quantiles = [p for name, p in model.named_parameters() if bottleneck.is_quantile_parameter(name)]
        adam = torch.optim.Adam
        return {"main": adam(main, lr=config.lr), "aux": adam(quantiles, lr=config.aux_lr)}

    quantization: ClassVar[str]
    """The UQCodec's training pass (its `forward`): "noise" or "ste"."""

    def step(self, model: UQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
        out = model(x, self.quantization)
        loss, bpp, mse = rd_loss(out.bits, x, out.x_hat, config.lmbda)
        _update(optimizers["main"], loss, config.clip_grad_norm)
        _update(optimizers["aux"], bottleneck.aux_loss(model.entropy_bottleneck))
        return _result(loss, bpp, mse)


@register
class UqAun(UniformQuantization):
    name = "uq-aun"
    description = "uniform quantization trained with additive uniform noise (Balle et al.), factorized entropy model"
    quantization = "noise"


@register
class UqSte(UniformQuantization):
    name = "uq-ste"
    description = "uniform quantization by rounding around the medians, straight-through gradient"
    quantization = "ste"


# Vector quantization ----------------------------------------------------------------------------


def _training_indices(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The index choice used for training updates: Sinkhorn's plan if asked, else the encoder's own search."""
    if config.sinkhorn:
        marginal = torch.exp2(model.entropy.log2_probs()).detach() if config.sinkhorn_marginal == "entropy" else None
        return sinkhorn_assign(vectors, model.quantizer.codebooks.detach(), marginal)
    return model.quantizer.nearest(vectors, model.search_penalty())


def _per_member(mean_over_vectors: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """A loss averaged over latent vectors (or groups), as each member of a stack (codec/toy/stack.py)
    would weigh it alone: the stack sums its members' rate-distortion losses, so it sums these too."""
    return mean_over_vectors * config.members


def _with_wasserstein(loss: torch.Tensor, model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if not config.wasserstein:
        return loss
    return loss + config.wasserstein_weight * _per_member(wasserstein_loss(vectors, model.quantizer.codebooks), config)


@register
class VqSte(Method):
    name = "vq-ste"
    description = "NVTC-style VQ: entropy-constrained search, straight-through gradient, VQ distance loss"
    options = ("rate_weight", "vq_beta", "encoder_lr_scale")

    def optimizers(self, model: VQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """One optimizer, the encoder's group at `encoder_lr_scale` times the learning rate: the
        straight-through encoder sees no rate, so fine-tuned at full rate it spreads its latents
        over ever more codewords (results/kodak/RECIPE.md, "Stage 3 probe")."""
        scale = config.encoder_lr_scale
        groups = [
            {"params": list(model.g_a.parameters()), "lr": config.lr * scale, "lr_scale": scale},
            {"params": list(model.g_s.parameters())},
            *_quantizer_groups(model, config),
        ]
        return {"main": torch.optim.Adam(groups, lr=config.lr)}

    def step(self, model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
        """The model's straight-through pass (VQCodec.forward), plus the VQ distance loss."""
        out = model(x, assign=lambda vectors: _training_indices(model, vectors, config))
        loss, bpp, mse = rd_loss(out.bits, x, out.x_hat, config.lmbda)
        loss = _with_wasserstein(loss + config.vq_beta * _per_member(vq_distance_loss(out.vectors, out.codewords), config), model, out.vectors, config)
        _update(optimizers["main"], loss, config.clip_grad_norm)
        return _result(loss, bpp, mse, out.indices)


def mean_squared_radius(vectors: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """Per group, the mean squared distance to the nearest codeword, (G, 1, 1): the kernel width of the
    mixture surrogate and the temperature of the relaxed assignments."""
    return ((vectors - quantized) ** 2).sum(-1).mean(1).clamp_min(1e-6)[:, None, None].detach()


def _sphere_approximation(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(y + r u, encoder rate term) with r the distance to the nearest codeword."""
    quantizer = model.quantizer
    with torch.no_grad():
        indices = quantizer.nearest(vectors)
        quantized = quantizer.lookup(indices)
    noisy = sphere_noise(vectors, quantized, config.sphere_radius_cap)
    if config.rate_gradient == "sphere":
        return noisy, sphere_rate_surrogate(model, vectors, quantized, indices)
    return noisy, mixture_rate_bits(model, noisy, mean_squared_radius(vectors, quantized))


def _relaxed_approximation(assignment: Callable) -> Callable:
    """A boundaries-step approximation from soft codeword weights: weighted codeword, expected bits."""

    def approximation(model: VQCodec, vectors: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
        quantizer = model.quantizer
        with torch.no_grad():
            quantized = quantizer.lookup(quantizer.nearest(vectors))
            temperature = mean_squared_radius(vectors, quantized)
            bits = -model.entropy.log2_probs()
        weights = assignment(vectors, quantizer.codebooks, temperature)
        return weights @ quantizer.codebooks, (weights * bits.unsqueeze(1)).sum()

    return approximation


class Alternating(Method):
    """Encoder/decoder alternating optimization (paper 004).

    Centers step: encoder frozen, actual quantization, update decoder, codebooks and logits.
    Boundaries step: decoder, codebooks and logits frozen, a differentiable approximation of the
    quantizer (`approximation`), update the encoder, at `encoder_lr_scale` times the learning rate.
    """

    options = ("encoder_lr_scale",)
    approximation: ClassVar[Callable[[VQCodec, torch.Tensor, TrainConfig], tuple[torch.Tensor, torch.Tensor]]]

    def optimizers(self, model: VQCodec, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        adam = torch.optim.Adam
        encoder = {"params": list(model.g_a.parameters()), "lr_scale": config.encoder_lr_scale}
        return {
            "decoder": adam([{"params": list(model.g_s.parameters())}, *_quantizer_groups(model, config)], lr=config.lr),
            "encoder": adam([encoder], lr=config.lr * config.encoder_lr_scale),
        }

    def step(self, model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
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
            approximate, rate = type(self).approximation(model, vectors, config)
            encoder_loss, encoder_bpp, encoder_mse = rd_loss(rate, x, model.synthesis(quantizer.from_vectors(approximate, shape)), config.lmbda)
            _update(optimizers["encoder"], encoder_loss, config.clip_grad_norm)
        radius = (vectors.detach() - quantizer.lookup(indices)).norm(dim=-1).mean()
        trace = {"encoder_loss": encoder_loss.item(), "encoder_bpp": encoder_bpp.item(), "encoder_mse": encoder_mse.item(), "radius": radius.item()}
        return StepResult(loss.item(), bpp.item(), psnr(mse.item()), indices, trace)


@register
class Ours(Alternating):
    name = "ours"
    description = "encoder/decoder alternation with the sphere-noise approximation (paper 004)"
    options = ("encoder_lr_scale", "rate_gradient", "sphere_radius_cap")
    approximation = staticmethod(_sphere_approximation)


@register
class SoftToHard(Alternating):
    name = "soft-to-hard"
    description = "ablation A2: the alternation with a softmax assignment over codewords (Agustsson et al. 2017)"
    approximation = staticmethod(_relaxed_approximation(soft_assignment))


@register
class Gumbel(Alternating):
    name = "gumbel"
    description = "ablation A3: the alternation with a Gumbel-softmax assignment (Zhu et al. 2022)"
    approximation = staticmethod(_relaxed_approximation(gumbel_assignment))


@register
class NoAlternation(Method):
    name = "no-alternation"
    description = "ablation A1: sphere noise fed to the decoder, encoder, decoder and codebooks updated together"
    options = ("rate_gradient", "sphere_radius_cap")

    def step(self, model: VQCodec, x: torch.Tensor, optimizers: dict, config: TrainConfig) -> StepResult:
        """The codebooks learn from a k-means style distance loss and the logits from the actual indices."""
        quantizer = model.quantizer
        y = model.analysis(x)
        vectors = quantizer.to_vectors(y)
        noisy, rate = _sphere_approximation(model, vectors, config)
        indices = _training_indices(model, vectors.detach(), config)
        codebook_loss = _per_member(((vectors.detach() - quantizer.lookup(indices)) ** 2).sum(-1).mean(), config)
        x_tilde = model.synthesis(quantizer.from_vectors(noisy, y.shape))
        encoder_loss, _, mse = rd_loss(rate, x, x_tilde, config.lmbda)
        logits_loss, bpp, _ = rd_loss(model.entropy.bits(indices), x, x_tilde.detach(), 0.0)
        loss = _with_wasserstein(encoder_loss + logits_loss + codebook_loss, model, vectors, config)
        _update(optimizers["main"], loss, config.clip_grad_norm)
        return _result(encoder_loss, bpp, mse, indices)


def method(name: str) -> Method:
    """The registered method `name`; an unknown name is a ValueError listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r} (choose from {', '.join(METHODS)})")
    return METHODS[name]

"""Codecs: transforms + quantizer + entropy model.

Every codec answers the same four questions the file coder asks, whatever its quantizer:
`analysis` (image -> latent), `to_symbols` (latent -> integer symbols per group),
`from_symbols` (symbols -> quantized latent) and `synthesis` (latent -> image), plus `pmfs`,
the per-group probabilities that export freezes into integer tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codec.quantizers import ChannelSplitVQ
from codec.transforms import AnalysisTransform, ResidualMLP, StackedResidualMLP, SynthesisTransform
from entropy import bottleneck
from entropy.discrete import DiscreteEntropyModel


TRANSFORMS = {
    "factorized": (AnalysisTransform, SynthesisTransform),
    "mlp": (ResidualMLP, ResidualMLP),
    "stacked-mlp": (
        lambda N, M, members: StackedResidualMLP(N, M, members, synthesis=False),
        lambda N, M, members: StackedResidualMLP(N, M, members, synthesis=True),
    ),
}


@dataclass(frozen=True)
class ModelConfig:
    """What rebuilds a codec: quantizer family ("vq" or "uq"), transforms, widths, VQ dimension, codebook size.

    transform "factorized" is the image codec (N hidden channels, M latent channels); "mlp" is a
    toy-source codec whose source and latent have M dimensions and whose MLPs are N wide;
    "stacked-mlp" is `members` toy-source codecs of M / members dimensions each, trained at once.
    """

    quantizer: str = "vq"
    transform: str = "factorized"
    N: int = 64
    M: int = 64
    dim: int = 4
    codebook_size: int = 256
    rate_weight: float = 0.0
    """Weight of -log2 p in the encoder's codeword search (entropy-constrained VQ); 0 = nearest codeword."""
    members: int = 1
    """Independent codecs stacked on the channels ("stacked-mlp" only)."""

    def __post_init__(self) -> None:
        if self.quantizer not in ("vq", "uq"):
            raise ValueError(f"unknown quantizer {self.quantizer!r} (expected 'vq' or 'uq')")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r} (expected one of {', '.join(TRANSFORMS)})")
        if self.quantizer == "vq" and self.M % self.dim:
            raise ValueError(f"M={self.M} channels do not split into groups of d={self.dim}")
        if (self.members != 1 and self.transform != "stacked-mlp") or self.members < 1 or self.M % self.members:
            raise ValueError(f"{self.members} stacked codecs do not fit transform {self.transform!r} with M={self.M}")


class _TransformCodec(nn.Module):
    """The transform pair shared by every codec."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        analysis, synthesis = TRANSFORMS[config.transform]
        stacked = (config.members,) if config.transform == "stacked-mlp" else ()
        self.g_a = analysis(config.N, config.M, *stacked)
        self.g_s = synthesis(config.N, config.M, *stacked)
        self.transform_dtype: torch.dtype | None = None
        """Autocast dtype of the transforms in training (codec/training/precision.py); None = float32."""

    def compile_transforms(self) -> None:
        """Compile g_a and g_s in place (torch.compile): their state_dict keys stay as they are."""
        self.g_a.compile()
        self.g_s.compile()

    def _transforms_autocast(self, x: torch.Tensor):
        dtype = self.transform_dtype
        return torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        with self._transforms_autocast(x):
            return self.g_a(x).float()

    def synthesis(self, y_hat: torch.Tensor) -> torch.Tensor:
        with self._transforms_autocast(y_hat):
            return self.g_s(y_hat).float()


@dataclass
class TrainingOutput:
    """A training pass, as CompressAI's `forward` gives it: the reconstruction and its rate (bits)."""

    x_hat: torch.Tensor
    bits: torch.Tensor
    """Bits of the batch under the entropy model, differentiable."""
    y: torch.Tensor
    """The analysis transform's latent."""
    indices: torch.Tensor | None = None
    """VQ: the codeword chosen per group and position, (G, P)."""
    vectors: torch.Tensor | None = None
    """VQ: the latent as vectors (G, P, d)."""
    codewords: torch.Tensor | None = None
    """VQ: the chosen codewords (G, P, d), differentiable with respect to the codebooks."""


class VQCodec(_TransformCodec):
    """Channel-split vector quantization with a learned categorical per codebook."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.quantizer = ChannelSplitVQ(config.M, config.dim, config.codebook_size)
        self.entropy = DiscreteEntropyModel(self.quantizer.groups, config.codebook_size)

    def forward(self, x: torch.Tensor, assign=None) -> TrainingOutput:
        """Hard vector quantization with a straight-through gradient: the decoder sees the codewords, the
        encoder gets the decoder's gradient unchanged. `assign(vectors) -> indices` replaces the
        encoder's own search (e.g. a Sinkhorn plan)."""
        quantizer = self.quantizer
        y = self.analysis(x)
        vectors = quantizer.to_vectors(y)
        indices = assign(vectors) if assign is not None else quantizer.nearest(vectors, self.search_penalty())
        codewords = quantizer.lookup(indices)
        straight_through = vectors + (codewords - vectors).detach()
        x_hat = self.synthesis(quantizer.from_vectors(straight_through, y.shape))
        return TrainingOutput(x_hat, self.entropy.bits(indices), y, indices, vectors, codewords)

    def search_penalty(self) -> torch.Tensor | None:
        """The rate term of an entropy-constrained search, (G, K), or None for plain nearest codeword."""
        if not self.config.rate_weight:
            return None
        with torch.no_grad():
            return -self.config.rate_weight * self._search_weights() * self.entropy.log2_probs()

    def _search_weights(self) -> torch.Tensor:
        """Per group, (G, 1), the factor on `rate_weight`: 1 / scale^2 of the stacked member that owns
        the group (transforms "stacked-mlp"), 1 otherwise. A stacked loss weights a member's squared
        error by its scale^2, so a member at a slope s_i searches with the weight 1/s_i a lone codec of
        its slope would have while the stack's `rate_weight` holds one value for all (stack.stacked)."""
        scale = getattr(self.g_a, "scale", None)
        if scale is None:
            return torch.ones(self.quantizer.groups, 1, device=self.quantizer.codebooks.device)
        return scale[:: self.config.dim].reshape(-1, 1) ** -2

    def to_symbols(self, y: torch.Tensor) -> torch.Tensor:
        """Codeword index per group and position: (G, P)."""
        return self.quantizer.nearest(self.quantizer.to_vectors(y), self.search_penalty())

    def from_symbols(self, symbols: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return self.quantizer.from_vectors(self.quantizer.lookup(symbols), shape)

    def pmfs(self) -> list[np.ndarray]:
        return self.entropy.pmfs()


class UQCodec(_TransformCodec):
    """Uniform scalar quantization per channel with compressai's factorized EntropyBottleneck.

    For coding, each channel's tables cover the support the bottleneck's tail quantiles span (frozen
    by `freeze_support`); symbol = round(y - median) - low, and a symbol outside [0, high - low] is
    escaped by the coder (entropy/coder.py) rather than clamped, as CompressAI does.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.entropy_bottleneck = bottleneck.make(config.M)
        self.register_buffer("medians", torch.zeros(config.M))
        self.register_buffer("support_low", torch.zeros(config.M, dtype=torch.long))
        self.register_buffer("support_high", torch.zeros(config.M, dtype=torch.long))

    @torch.no_grad()
    def freeze_support(self) -> None:
        """Fix medians and the integer support per channel from the learned tail quantiles."""
        low, median, high = bottleneck.tail_quantiles(self.entropy_bottleneck)
        self.medians.copy_(median)
        self.support_low.copy_(torch.floor(low - median).long())
        self.support_high.copy_(torch.ceil(high - median).long())

    def forward(self, x: torch.Tensor, quantization: str = "noise") -> TrainingOutput:
        """A training pass: 'noise' adds uniform noise and takes its likelihoods (Balle et al.); 'ste'
        rounds around the medians with an identity gradient and takes the rounded values' bits."""
        y = self.analysis(x)
        if quantization == "noise":
            y_hat, likelihoods = bottleneck.noisy(self.entropy_bottleneck, y)
            bits = -torch.log2(likelihoods).sum()
        elif quantization == "ste":
            medians = bottleneck.medians(self.entropy_bottleneck).reshape(1, -1, 1, 1)
            y_hat = y + (torch.round(y - medians) + medians - y).detach()
            bits = bottleneck.bits(self.entropy_bottleneck, y_hat)
        else:
            raise ValueError(f"unknown quantization {quantization!r} (choose 'noise' or 'ste')")
        return TrainingOutput(self.synthesis(y_hat), bits, y)

    def _per_channel(self, y: torch.Tensor) -> torch.Tensor:
        return y.transpose(0, 1).reshape(self.config.M, -1)

    def to_symbols(self, y: torch.Tensor) -> torch.Tensor:
        steps = torch.round(self._per_channel(y) - self.medians[:, None])
        return (steps - self.support_low[:, None]).long()

    def from_symbols(self, symbols: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        b, m, h, w = shape
        values = (symbols + self.support_low[:, None]).to(self.medians.dtype) + self.medians[:, None]
        return values.reshape(m, b, h, w).transpose(0, 1)

    def pmfs(self) -> list[np.ndarray]:
        lengths = (self.support_high - self.support_low + 1).tolist()
        steps = torch.arange(max(lengths), dtype=torch.float32)
        values = (self.support_low[:, None] + steps) + self.medians[:, None]
        with torch.no_grad():
            likelihood = bottleneck.likelihoods(self.entropy_bottleneck, values)
        return [likelihood[c, :n].double().clamp_min(1e-12).numpy() for c, n in enumerate(lengths)]


def build_model(config: ModelConfig) -> VQCodec | UQCodec:
    """A fresh (untrained) codec for `config`."""
    return VQCodec(config) if config.quantizer == "vq" else UQCodec(config)


def bits_per_pixel(bits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Rate of a batch in bits per pixel."""
    b, _, h, w = image.shape
    return bits / (b * h * w)


def psnr(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error on images of range [0, peak]."""
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")

"""Everything vqcodec takes from compressai's EntropyBottleneck, in one place.

The uniform-quantization codecs use compressai's factorized entropy model for training (noisy
likelihoods, the quantile (aux) loss) and for their tables (likelihoods of integer steps, medians
and tail quantiles). Some of that is compressai's private API (`_likelihood`, `_get_medians`, the
`quantiles` layout, the names of its coder buffers), which a new compressai may change; the
version is pinned, and tests/test_bottleneck.py fails loudly, naming what changed, if it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from compressai.entropy_models import EntropyBottleneck

CODER_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")
"""compressai's own coder tables in a bottleneck's state dict: exported models leave them out (they
carry their own integer tables), so loading tolerates their absence."""

QUANTILES = "quantiles"
"""The name of the bottleneck's parameter (C, 1, 3) of tail quantiles and medians, learned by the aux loss."""


def make(channels: int) -> "EntropyBottleneck":
    """A fresh factorized entropy model for `channels` latent channels (compressai imported here, lazily)."""
    from compressai.entropy_models import EntropyBottleneck

    return EntropyBottleneck(channels)


def noisy(bottleneck: "EntropyBottleneck", y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training's (y + uniform noise, likelihoods) for latents (B, C, h, w)."""
    return bottleneck(y)


def bits(bottleneck: "EntropyBottleneck", values: torch.Tensor) -> torch.Tensor:
    """Bits of already-quantized latents (B, C, h, w), differentiable with respect to them."""
    channels = values.shape[1]
    likelihood, _, _ = bottleneck._likelihood(values.transpose(0, 1).reshape(channels, 1, -1))
    return -torch.log2(bottleneck.likelihood_lower_bound(likelihood)).sum()


def likelihoods(bottleneck: "EntropyBottleneck", values: torch.Tensor) -> torch.Tensor:
    """Probability of each integer step around values (C, L): the mass of [v - 1/2, v + 1/2]."""
    likelihood, _, _ = bottleneck._likelihood(values.unsqueeze(1))
    return likelihood[:, 0, :]


def medians(bottleneck: "EntropyBottleneck") -> torch.Tensor:
    """The per-channel medians (C,) around which latents are rounded."""
    return bottleneck._get_medians().reshape(-1)


def tail_quantiles(bottleneck: "EntropyBottleneck") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower tail, median, upper tail) per channel, each (C,): the support the tables cover."""
    quantiles = getattr(bottleneck, QUANTILES)[:, 0, :]
    return quantiles[:, 0], quantiles[:, 1], quantiles[:, 2]


def aux_loss(bottleneck: "EntropyBottleneck") -> torch.Tensor:
    """The loss that moves the tail quantiles to the latents' tails."""
    return bottleneck.loss()


def is_quantile_parameter(name: str) -> bool:
    """Whether a model parameter's name is a bottleneck's quantiles (which only the aux loss trains)."""
    return name.endswith(QUANTILES)

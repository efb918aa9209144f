"""Analysis and synthesis transforms of Balle et al. 2018 ("factorized"): 5x5 stride-2 convs with GDN."""

from __future__ import annotations

import warnings

import torch
from torch import nn

# compressai scripts a helper with torch.jit at import time, which newer torch flags as deprecated.
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from compressai.layers import GDN  # noqa: E402
from compressai.models.utils import conv, deconv  # noqa: E402

DOWNSAMPLING = 16
"""The latent is 1/16 of the image per side: inputs are padded to a multiple of this."""


class AnalysisTransform(nn.Sequential):
    """g_a: image (B, 3, H, W) in [0, 1] -> latent (B, M, H/16, W/16)."""

    def __init__(self, N: int, M: int) -> None:
        super().__init__(
            conv(3, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, M),
        )


class SynthesisTransform(nn.Sequential):
    """g_s: latent (B, M, h, w) -> image (B, 3, 16h, 16w), mirroring g_a with inverse GDN."""

    def __init__(self, N: int, M: int) -> None:
        super().__init__(
            deconv(M, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, 3),
        )


class ResidualMLP(nn.Module):
    """Toy-source transform: vectors (B, M, 1, 1) -> (B, M, 1, 1) through residual blocks of width N.

    Toy samples travel as 1x1 "images" with M channels, so the training methods serve both.
    """

    BLOCKS = 2

    def __init__(self, N: int, M: int) -> None:
        super().__init__()
        self.inp = nn.Linear(M, N)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(N, N), nn.GELU(), nn.Linear(N, N)) for _ in range(self.BLOCKS)
        )
        self.out = nn.Linear(N, M)

    def forward(self, x):
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = h + block(torch.nn.functional.gelu(h))
        return self.out(h).reshape(x.shape)

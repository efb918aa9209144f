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


class StackedResidualMLP(nn.Module):
    """`members` independent ResidualMLPs side by side on M = members x D channels (ModelConfig checks
    that they divide), one batched matmul per layer: the toy study trains every slope and seed of a
    curve in one process this way (codec/toy/stack.py).

    Member s reads and writes channels [s D, (s + 1) D). `scale` (M,) is fixed: the analysis side
    divides its input by it and the synthesis side multiplies its output by it, so a member sees the
    data a lone ResidualMLP would while the stacked loss weights its squared error by scale^2.
    """

    def __init__(self, N: int, M: int, members: int, synthesis: bool) -> None:
        super().__init__()
        models = [ResidualMLP(N, M // members) for _ in range(members)]
        self.names = [name for name, _ in models[0].named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([dict(m.named_parameters())[name].detach() for m in models])) for name in self.names
        )
        self.register_buffer("scale", torch.ones(M))
        self.synthesis = synthesis
        self.N, self.members = N, members

    def member(self, index: int) -> ResidualMLP:
        """Member `index` as a lone ResidualMLP (computing what it computes inside the stack)."""
        model = ResidualMLP(self.N, self.scale.numel() // self.members)
        model.load_state_dict({name: tensor[index].detach().clone() for name, tensor in zip(self.names, self.stacked)})
        return model

    def forward(self, x):
        batch = x.shape[0]
        scale = self.scale.view(1, -1, 1, 1)
        inputs = x if self.synthesis else x / scale
        h = inputs.reshape(batch, self.members, -1).transpose(0, 1)  # (members, batch, D)
        layers = iter(zip(self.stacked[0::2], self.stacked[1::2]))

        def linear(h):
            weight, bias = next(layers)
            return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

        h = linear(h)
        for _ in range(ResidualMLP.BLOCKS):
            h = h + linear(torch.nn.functional.gelu(linear(torch.nn.functional.gelu(h))))
        out = linear(h).transpose(0, 1).reshape(x.shape)
        return out * scale if self.synthesis else out

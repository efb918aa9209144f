"""The Kodak comparison recipe (results/kodak/RECIPE.md): one uq-aun pretrain, then every
(curve, lambda) fine-tuned from it with the same data, crops, batch, steps and learning rate."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from codec.training.config import TrainConfig

LAMBDAS = (0.0018, 0.0067, 0.025, 0.0932)
"""CompressAI's q1, q3, q5, q7 lambdas: about 0.1 to 1.4 bpp on Kodak for a factorized model."""


def _fine_tune() -> TrainConfig:
    """The run every (curve, lambda) shares: TrainConfig's data, N = M = 64, 128x128 crops, batch 8 and
    seed 0, with 800 steps at lr 1e-4 from the uq-aun pretrain (`python scripts/train_default.py`
    makes it: N=M=64, lambda 0.013, 7000 steps) and VQ codebooks started on the lattice."""
    return TrainConfig(steps=800, lr=1e-4, init_from="runs/default/uq-aun/checkpoint.pt", codebook_init="lattice")


@dataclass(frozen=True)
class Recipe:
    """Everything shared by the curves of one comparison."""

    base: TrainConfig = field(default_factory=_fine_tune)
    lambdas: tuple[float, ...] = LAMBDAS

    def config(self, curve: str, lmbda: float, out: Path) -> TrainConfig:
        """The fine-tuning run of one curve at one lambda."""
        return replace(self.base, out=str(out), lmbda=lmbda, **CURVES[curve].options)


@dataclass(frozen=True)
class Curve:
    description: str
    options: dict = field(default_factory=dict)


def _vq(method: str, dim: int, **extra) -> Curve:
    sizes = {1: 256, 2: 4096, 4: 4096}
    text = f"{method}, d={dim}, {sizes[dim]} codewords per group" + "".join(f", {k}={v}" for k, v in extra.items())
    return Curve(text, {"method": method, "dim": dim, "codebook_size": sizes[dim], **extra})


CURVES: dict[str, Curve] = {
    "uq-aun": Curve("uq-aun: uniform quantization, additive uniform noise, factorized entropy model", {"method": "uq-aun"}),
    "vq-ste-1d": _vq("vq-ste", 1),
    "vq-ste-2d": _vq("vq-ste", 2),
    "vq-ste-4d": _vq("vq-ste", 4),
    "ours-1d": _vq("ours", 1),
    "ours-2d": _vq("ours", 2),
    "ours-4d": _vq("ours", 4),
    "ours-4d-sinkhorn": _vq("ours", 4, sinkhorn=True),
    "no-alternation-4d": _vq("no-alternation", 4),
}
"""The curves of the Kodak comparison by name (paper 004, Table 1 and ablation A1)."""

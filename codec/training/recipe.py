"""The Kodak comparison recipe (results/kodak/RECIPE.md).

Two stages, so that every curve starts from transforms already at its rate:
1. One uq-aun base per lambda, fine-tuned long from the shared uq-aun pretrain.
2. Every (curve, lambda) fine-tuned from that lambda's base with the same data, crops, batch,
   steps and learning rate; only the quantizer and its training method differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from codec.training.config import TrainConfig
from codec.training.methods import METHODS
from codec.training.loop import CHECKPOINT

LAMBDAS = (0.0002, 0.0018, 0.0067, 0.025)
"""Rate points q0 ... q3. q1-q3 are CompressAI's q1, q3, q5 lambdas (about 0.1 to 0.65 bpp for its
fully trained factorized model). At our scale q1-q3 span 0.2-0.63 bpp on Kodak, so q0 stretches the
curve down; higher lambdas give more bits but no more quality (results/kodak/RECIPE.md)."""

PRETRAIN = "runs/default/uq-aun/checkpoint.pt"
"""`python scripts/train_default.py` makes it: uq-aun, N=M=64, lambda 0.013, 7000 steps."""


def _base_stage() -> TrainConfig:
    """Stage 1, one run per lambda: uq-aun, 2500 steps at lr 3e-4 from the pretrain."""
    return TrainConfig(method="uq-aun", steps=2500, lr=3e-4, init_from=PRETRAIN)


def _fine_tune_stage() -> TrainConfig:
    """Stage 2, one run per (curve, lambda): 800 steps at lr 1e-4 from the lambda's base, VQ codebooks
    started on the lattice of its latents, the alternating methods' encoder at a tenth of the rate
    (at equal rates encoder and decoder chase each other and the latents collapse). TrainConfig's
    defaults give the rest: N = M = 64, 128x128 crops of ../shared/train, batch 8, seed 0, gradient
    norm clipped to 1."""
    return TrainConfig(steps=800, lr=1e-4, codebook_init="lattice", encoder_lr_scale=0.1)


@dataclass(frozen=True)
class Recipe:
    """Everything shared by the curves of one comparison; runs live under `runs`."""

    runs: Path = Path("runs/kodak")
    base: TrainConfig = field(default_factory=_base_stage)
    fine_tune: TrainConfig = field(default_factory=_fine_tune_stage)
    lambdas: tuple[float, ...] = LAMBDAS

    def point_name(self, curve: str, index: int) -> str:
        """The model name of a curve's rate point: `<curve>-q0` for the lowest lambda, and so on."""
        return f"{curve}-q{index}"

    def base_config(self, index: int) -> TrainConfig:
        """Stage 1 at the `index`-th lambda."""
        return replace(self.base, out=str(self.runs / f"base-q{index}"), lmbda=self.lambdas[index])

    def config(self, curve: str, index: int) -> TrainConfig:
        """Stage 2: the fine-tuning run of one curve at the `index`-th lambda."""
        start = Path(self.base_config(index).out) / CHECKPOINT
        out = self.runs / self.point_name(curve, index)
        options = CURVES[curve].options
        return replace(self.fine_tune, out=str(out), lmbda=self.lambdas[index], init_from=str(start), **options)

    def describe(self, curve: str) -> str:
        return (
            f"{CURVES[curve].description}; {self.fine_tune.steps} fine-tuning steps from a uq-aun base per lambda "
            f"({self.base.steps} steps from {self.base.init_from}), lambdas {list(self.lambdas)}"
        )


@dataclass(frozen=True)
class Curve:
    description: str
    options: dict = field(default_factory=dict)


def _vq(method: str, dim: int, **extra) -> Curve:
    sizes = {1: 256, 2: 4096, 4: 4096}
    text = f"{METHODS[method].description}; d={dim}, {sizes[dim]} codewords per group" + "".join(f", {k}={v}" for k, v in extra.items())
    return Curve(text, {"method": method, "dim": dim, "codebook_size": sizes[dim], **extra})


CURVES: dict[str, Curve] = {
    "uq-aun": Curve(METHODS["uq-aun"].description, {"method": "uq-aun"}),
    "vq-ste-1d": _vq("vq-ste", 1, encoder_lr_scale=1.0),  # the fine-tune's 0.1x is the alternating methods'
    "vq-ste-2d": _vq("vq-ste", 2, encoder_lr_scale=1.0),
    "vq-ste-4d": _vq("vq-ste", 4, encoder_lr_scale=1.0),
    "ours-1d": _vq("ours", 1),
    "ours-2d": _vq("ours", 2),
    "ours-4d": _vq("ours", 4),
    "ours-4d-sinkhorn": _vq("ours", 4, sinkhorn=True),
    "no-alternation-4d": _vq("no-alternation", 4),
}
"""The curves of the Kodak comparison by name (paper 004, Table 1 and ablation A1)."""

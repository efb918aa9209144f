"""The training configuration: every knob of a run, as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from codec.training.precision import PRECISIONS

METHODS = ("uq-aun", "uq-ste", "vq-ste", "ours", "soft-to-hard", "gumbel", "no-alternation")
RATE_GRADIENTS = ("mixture", "sphere")


@dataclass
class TrainConfig:
    """One training run. Loss = bits per pixel + lmbda * 255^2 * MSE (CompressAI's convention)."""

    method: str = "ours"
    data: str = "../shared/train"
    source: str = ""
    """A toy source (gaussian, boomerang, laplace) to train on instead of `data`; M must be its dimension."""
    out: str = "runs/default"
    lmbda: float = 0.013
    N: int = 64
    M: int = 64
    dim: int = 4
    codebook_size: int = 4096
    crop: int = 128
    batch: int = 8
    steps: int = 2000
    lr: float = 2e-4
    entropy_lr_scale: float = 10.0
    """The VQ logits' learning rate relative to `lr`."""
    codebook_lr_scale: float = 1.0
    """The VQ codewords' learning rate relative to `lr`. Adam moves a codeword about one learning rate
    per step, so at lr 1e-4 an 800-step fine-tune leaves a lattice-started codebook within 0.1 of the
    lattice (measured on the Kodak sweep's models): leaving the lattice needs a larger scale."""
    encoder_lr_scale: float = 1.0
    """The encoder's learning rate relative to `lr` in the alternating methods. Below 1 the encoder
    moves on a slower time scale than the decoder it is trained through; on images at equal rates
    the two chase each other and the latents collapse within 60 steps (results/kodak/RECIPE.md)."""
    aux_lr: float = 1e-3
    """Learning rate of the uq codecs' quantile (aux) loss, which sets the coded support. Adam moves a
    quantile about this much per step, so short runs at high rates need more: with 1e-3 a 1500-step
    toy run kept its support at +-12 while its latents spread to +-24, and clamping cost 3 dB."""
    lr_drop_at: float = 0.9
    """Fraction of the steps after which the learning rate is divided by 10."""
    clip_grad_norm: float = 1.0
    """Gradient norm clip of every step (0 = none); GDN transforms diverge without it at higher rates."""
    seed: int = 0
    init_from: str = ""
    """A training checkpoint whose transforms start this run (VQ codebooks then start from its latents)."""
    codebook_init: str = "samples"
    """How VQ codebooks start: 'samples' (random latent vectors) or 'lattice' (most frequent rounded ones)."""
    rate_gradient: str = "mixture"
    """How 'ours' gives the encoder a rate gradient: 'mixture' surrogate or 'sphere' surface estimator."""
    sinkhorn: bool = False
    """Choose training-time indices by OptVQ's Sinkhorn plan (inference always uses the encoder's search)."""
    wasserstein: bool = False
    """Add paper 002's Gaussian Wasserstein loss between each group's latents and codewords."""
    wasserstein_weight: float = 0.3
    vq_beta: float = 1.0
    """Weight of the VQ distance loss (codebook + commitment) of vq-ste."""
    rate_weight: float = 0.0
    """Weight of -log2 p in the codeword search (entropy-constrained VQ, vq-ste); kept by the model."""
    reactivate_every: int = 0
    """Every this many steps, codewords unused since the last time restart at latent vectors (0 = never)."""
    device: str = "auto"
    """'auto' takes CUDA where present, else the CPU."""
    precision: str = "auto"
    """The transforms' training precision: 'fp32', 'bf16' (autocast), or 'auto' (bf16 where it is measured
    faster on this device, codec/training/precision.py). A resumed run keeps the precision it started with."""
    checkpoint_seconds: float = 120.0
    log_every: int = 25

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.codebook_init not in ("samples", "lattice"):
            raise ValueError(f"unknown codebook init {self.codebook_init!r} (choose 'samples' or 'lattice')")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r} (choose from {', '.join(PRECISIONS)})")
        if self.rate_gradient not in RATE_GRADIENTS:
            raise ValueError(f"unknown rate gradient {self.rate_gradient!r} (choose from {', '.join(RATE_GRADIENTS)})")

    @property
    def quantizer(self) -> str:
        return "uq" if self.method.startswith("uq") else "vq"

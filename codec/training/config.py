"""The training configuration: every knob of a run, as one dataclass."""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass

from codec.training.precision import PRECISIONS

RATE_GRADIENTS = ("mixture", "sphere")
CHOICES = {
    "codebook_init": ("samples", "lattice", "best-lattice", "kmeans++"), "rate_gradient": RATE_GRADIENTS, "precision": PRECISIONS,
    "sinkhorn_marginal": ("uniform", "entropy"),
}
"""The allowed values of the TrainConfig fields that take one of a few."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Loss = bits per pixel + lmbda * 255^2 * MSE (CompressAI's convention)."""

    method: str = "ours"
    """The training method (codec/training/methods.py; `vqcodec train --help` lists them)."""
    data: str = "../shared/train"
    """Folder of training photographs (random crops of them are the batches)."""
    source: str = ""
    """A toy source (gaussian, boomerang, laplace) to train on instead of `data`; M must be its dimension."""
    out: str = "runs/default"
    """Run folder: checkpoints, log.jsonl and the exported model.pt; re-running with it resumes."""
    lmbda: float = 0.013
    """Rate-distortion trade-off: loss = bpp + lmbda * 255^2 * MSE (CompressAI's q1-q8 use 0.0018-0.18)."""
    N: int = 64
    """Hidden channels of the transforms (the MLP width for toy sources)."""
    M: int = 64
    """Latent channels (the source's dimension for toy sources)."""
    dim: int = 4
    """VQ dimension d: each group of d latent channels has its own codebook."""
    codebook_size: int = 4096
    """Codewords per VQ codebook (K)."""
    crop: int = 128
    """Side of the square training crops, in pixels."""
    batch: int = 8
    """Crops (or toy samples) per step."""
    steps: int = 2000
    """Training steps in all (a resumed run continues up to this)."""
    lr: float = 2e-4
    """Adam learning rate of the transforms; the other learning rates are scales of it."""
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
    """Seed of the initialization, the batches and the noise."""
    init_from: str = ""
    """A training checkpoint whose transforms start this run (VQ codebooks then start from its latents)."""
    codebook_init: str = "samples"
    """How VQ codebooks start: 'samples' (random latent vectors), 'lattice' (the Z^d points most latents
    round to), 'best-lattice' (the same on A2 for d=2, D4 for d=4, cells of the same volume) or
    'kmeans++' (k-means++ seeding over the latents)."""
    rate_gradient: str = "mixture"
    """How 'ours' gives the encoder a rate gradient: 'mixture' surrogate or 'sphere' surface estimator."""
    sphere_radius_cap: float = 0.0
    """'ours': the sphere noise's radius r is at most this multiple of its group's RMS radius (0 = no
    cap, as the paper). Past the codewords in use r grows with the latent, and the decoder's gradient
    at y + r u can push latents further out: a runaway seen at high slopes (results/toy/traces)."""
    sinkhorn: bool = False
    """Choose training-time indices by OptVQ's Sinkhorn plan (inference always uses the encoder's search)."""
    sinkhorn_marginal: str = "uniform"
    """The Sinkhorn plan's codeword masses: 'uniform' (OptVQ: every codeword used equally) or 'entropy'
    (the entropy model's probabilities, so the plan follows the use the rate term asks for)."""
    wasserstein: bool = False
    """Add paper 002's Gaussian Wasserstein loss between each group's latents and codewords."""
    wasserstein_weight: float = 0.3
    """Weight of the Wasserstein loss."""
    vq_beta: float = 1.0
    """Weight of the VQ distance loss (codebook + commitment) of vq-ste."""
    rate_weight: float = 0.0
    """Weight of -log2 p in the codeword search (entropy-constrained VQ, vq-ste); kept by the model."""
    reactivate_every: int = 0
    """Every this many steps, codewords unused since the last time restart at latent vectors (0 = never)."""
    stack_lmbdas: tuple[float, ...] = ()
    """Toy sources: train one codec per entry at once (block-diagonal MLPs, codec/toy/stack.py), member s
    with trade-off stack_lmbdas[s] and seed stack_seeds[s]. Member s's data are scaled by
    sqrt(members x stack_lmbdas[s] / lmbda), so `lmbda` times the stack's mean squared error is the sum
    of the members' weighted errors. Set by the toy study, not on the command line."""
    stack_seeds: tuple[int, ...] = ()
    """The stacked members' seeds (data and noise streams), one per stack_lmbdas entry."""
    device: str = "auto"
    """'auto' takes CUDA where present, else the CPU."""
    precision: str = "auto"
    """The transforms' training precision: 'fp32', 'bf16' (autocast), or 'auto' (bf16 where it is measured
    faster on this device, codec/training/precision.py). A resumed run resolves it again on the machine it
    resumes on; the checkpoint and the exported model's record say from which step each precision ran."""
    compile_transforms: bool = False
    """On the CPU, train with g_a and g_s compiled by torch.compile (inductor): 1.12x the steps per hour
    of uq-aun and ours-4d at N=128/M=192 in fp32 on one thread (results/training/cost-compile.json),
    for a compile of up to a minute or two each time a run starts or resumes. Weights, checkpoints and
    the exported model are as eager training makes them (equal up to float rounding); held-out
    measurements run eager. A CUDA run stays eager: a lent GPU's few minutes are not spent compiling,
    and its compiler stack is not measured."""
    checkpoint_seconds: float = 120.0
    """A checkpoint is written at least this often (and at the end)."""
    log_every: int = 25
    """Steps between lines of log.jsonl."""
    heldout: str = ""
    """Folder of images the run does not train on: every `heldout_every` steps (and at the end) the log
    records the loss, bpp and PSNR on their center crops (codec/training/heldout.py); empty = none."""
    heldout_every: int = 1000
    """Steps between held-out measurements."""
    plateau: float = 0.0
    """With `heldout`, end the run where its held-out loss plateaus: at a measurement from
    `plateau_min_steps` on, a fall of less than this fraction over the last 20% of the steps (0.005 =
    0.5%) starts the learning-rate drop there, and the run ends after the drop's usual share (1 -
    lr_drop_at) of all its steps. `steps` stays the most it runs; 0 = always run `steps`."""
    plateau_min_steps: int = 0
    """The first step at which the plateau test is taken."""

    def __post_init__(self) -> None:
        from codec.training.methods import method  # the registry imports torch: only when a run is configured

        method(self.method)
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name.replace('_', ' ')} {getattr(self, name)!r} (choose from {', '.join(choices)})")
        if self.plateau and not self.heldout:
            raise ValueError("the plateau test needs a held-out folder (`heldout`)")
        if self.stack_lmbdas and (not self.source or len(self.stack_seeds) != len(self.stack_lmbdas) or self.clip_grad_norm):
            raise ValueError("stacked codecs need a toy source, one seed per lambda, and no gradient clipping (it would couple them)")

    @property
    def members(self) -> int:
        """Codecs trained at once: 1, or one per stack_lmbdas entry."""
        return max(1, len(self.stack_lmbdas))

    @property
    def quantizer(self) -> str:
        """The codec family the method trains, "uq" or "vq"."""
        from codec.training.methods import method

        return method(self.method).quantizer


def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name (what the CLI's help shows)."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for field, after in zip(body, body[1:]):
        if isinstance(field, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[field.target.id] = " ".join(str(after.value.value).split())
    return docs

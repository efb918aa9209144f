"""Where VQ codebooks start, and how dead codewords restart: always at or near latent vectors."""

from __future__ import annotations

import math

import torch

from codec.models import VQCodec
from codec.training.config import TrainConfig
from codec.data import Sampler

CODEBOOK_INIT_BATCHES = 64
UNSEEN_COUNT = 0.5
"""Pseudo-count of a lattice codeword no latent rounded to: its starting probability."""


def latent_vectors(model: VQCodec, batches: list[torch.Tensor]) -> torch.Tensor:
    """The encoder's latents of `batches` as vectors (G, P, d)."""
    with torch.no_grad():
        return torch.cat([model.quantizer.to_vectors(model.analysis(b)) for b in batches], dim=1)


def _sampled_codewords(vectors: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` latent vectors (G, P, d) drawn at random per group, slightly jittered: (G, count, d)."""
    picks = torch.randint(vectors.shape[1], (count,), generator=generator).to(vectors.device)
    return vectors[:, picks] + 0.01 * torch.randn(vectors.shape[0], count, vectors.shape[2], generator=generator).to(vectors)


def _integer_points_near(centre: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` points of Z^d nearest to `centre` (d,), nearest first."""
    dim = centre.numel()
    ball_radius = (count * math.gamma(dim / 2 + 1) / math.pi ** (dim / 2)) ** (1 / dim)
    reach = math.ceil(ball_radius) + 1
    offsets = torch.arange(-reach, reach + 1, dtype=centre.dtype, device=centre.device)
    box = torch.cartesian_prod(*[offsets] * dim).reshape(-1, dim) + torch.round(centre)
    order = ((box - centre) ** 2).sum(1).argsort()
    return box[order[:count]]


def lattice_codebook(vectors: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(codewords (size, d), counts (size,)) for one group's latents (P, d) on the integer lattice.

    The most frequent rounded latents come first; the remaining slots take the unused lattice
    points nearest to the latents' mean, so the codebook covers the data with room to spread
    (a uniform quantizer's grid, which an encoder pretrained with uniform noise expects).
    """
    points, counts = torch.unique(torch.round(vectors), dim=0, return_counts=True)
    order = counts.argsort(descending=True)[:size]
    points, counts = points[order], counts[order].to(vectors.dtype)
    missing = size - len(points)
    if missing:
        candidates = _integer_points_near(vectors.mean(0), size + len(points))
        is_new = ~(candidates.unsqueeze(1) == points.unsqueeze(0)).all(-1).any(1)
        points = torch.cat([points, candidates[is_new][:missing]])
        counts = torch.cat([counts, counts.new_zeros(missing)])
    return points, counts


def init_codebooks_from_latents(model: VQCodec, sampler: Sampler, config: TrainConfig) -> None:
    """Start each codebook from latent vectors of training data, so no codeword starts far away.

    'samples' draws the codewords among the latent vectors (uniform logits). 'lattice' takes
    `lattice_codebook` per group with logits from the counts: after a uniform-quantization
    pretrain the VQ model starts where the pretrained model was.
    """
    quantizer = model.quantizer
    device = quantizer.codebooks.device
    batches = [sampler.batch(-1 - b, config.batch).to(device) for b in range(CODEBOOK_INIT_BATCHES)]
    vectors = latent_vectors(model, batches)
    generator = torch.Generator().manual_seed(config.seed)
    with torch.no_grad():
        if config.codebook_init == "samples":
            quantizer.codebooks.copy_(_sampled_codewords(vectors, quantizer.codebook_size, generator))
            return
        for group in range(quantizer.groups):
            codewords, counts = lattice_codebook(vectors[group], quantizer.codebook_size)
            quantizer.codebooks[group] = codewords
            frequencies = counts + UNSEEN_COUNT
            model.entropy.logits[group] = torch.log(frequencies / frequencies.sum())


def reactivate_dead_codewords(model: VQCodec, counts: torch.Tensor, batch: torch.Tensor, step: int) -> int:
    """Move codewords with no use in `counts` onto random latent vectors of `batch`; returns how many moved.

    A moved codeword takes its group's mean logit, so it starts with a middling probability.
    """
    vectors = latent_vectors(model, [batch])
    dead = counts == 0
    generator = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for group in torch.nonzero(dead.any(1)).flatten().tolist():
            slots = torch.nonzero(dead[group]).flatten()
            picks = torch.randint(vectors.shape[1], (len(slots),), generator=generator).to(vectors.device)
            model.quantizer.codebooks[group, slots] = vectors[group, picks]
            model.entropy.logits[group, slots] = model.entropy.logits[group, ~dead[group]].mean()
    return int(dead.sum())

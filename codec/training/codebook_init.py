"""Where VQ codebooks start, and how dead codewords restart: always at or near latent vectors."""

from __future__ import annotations

import math

import numpy as np
import torch

from codec import lattices, search
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


def _rows_in(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Whether each of rows (N, d) equals some row of table (M, d), in O((N + M) log(N + M)) memory-light
    time (a pairwise comparison would take N x M x d: 35 GB for 131,072 codewords): rows compared as
    bytes, with +0.0 added so that -0.0 matches 0.0."""

    def as_bytes(points: torch.Tensor) -> np.ndarray:
        array = np.ascontiguousarray((points.to(torch.float64) + 0.0).numpy())
        return array.view(np.dtype((np.void, array.shape[1] * array.itemsize))).ravel()

    return torch.from_numpy(np.isin(as_bytes(rows), as_bytes(table)))


def lattice_codebook(vectors: torch.Tensor, size: int, basis: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(codewords (size, d), counts (size,)) for one group's latents (P, d) on a lattice (rows of `basis`;
    the integer lattice by default) shifted to the latents' per-dimension median.

    The lattice points most latents fall nearest to come first; the remaining slots take the unused
    lattice points nearest to the latents' mean, so the codebook covers the data with room to spread.
    On Z^d that is the grid a uniform quantizer rounds to: uq codecs round around their medians, so
    the VQ model starts on the pretrained model's point (Gaussian uq-aun at slope 1.5, median 0.19:
    0.3094 bpd / 1.245 dB against its own 0.3133 / 1.247; on the unshifted grid 0.349 / 1.345).
    """
    dim = vectors.shape[1]
    basis = torch.eye(dim, dtype=torch.float64) if basis is None else basis
    shift = vectors.median(0).values
    # numpy's row-unique sorts as torch.unique(dim=0) does, 100x faster on many 1-D rows
    points, counts = np.unique(lattices.nearest_points(vectors - shift, basis).numpy(), axis=0, return_counts=True)
    points, counts = torch.from_numpy(points), torch.from_numpy(counts)
    order = counts.argsort(descending=True, stable=True)[:size]
    points, counts = points[order], counts[order].to(vectors.dtype)
    missing = size - len(points)
    if missing:
        candidates = lattices.points_near(vectors.mean(0) - shift, size + len(points), basis).to(vectors.dtype)
        is_new = ~_rows_in(candidates, points)
        points = torch.cat([points, candidates[is_new][:missing]])
        counts = torch.cat([counts, counts.new_zeros(missing)])
    return points + shift, counts


KMEANS_ROUNDS = 256
"""Rounds of k-means++ seeding: each draws size/rounds codewords at once, so 32768 codewords from
65,536 latents take seconds instead of minutes (one draw at a time)."""


def kmeans_plus_plus(
    vectors: torch.Tensor, size: int, generator: torch.Generator, rounds: int = KMEANS_ROUNDS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(codewords (size, d), counts (size,)) for one group's latents (P, d) by k-means++ seeding in
    rounds: each round draws up to ceil(size / rounds) distinct latents with probability proportional
    to their squared distance to the nearest codeword so far (one per round for size <= rounds: the
    classic seeding). Once every latent is a codeword, the rest are drawn uniformly."""
    per_round = math.ceil(size / rounds)
    picks = [torch.randint(len(vectors), (1,), generator=generator)]
    squared = ((vectors - vectors[picks[0]]) ** 2).sum(1).double()
    drawn = 1
    while drawn < size:
        count = min(per_round, size - drawn, int((squared > 0).sum()))
        if count == 0:
            picks.append(torch.randint(len(vectors), (size - drawn,), generator=generator))
            break
        picks.append(torch.multinomial(squared, count, replacement=False, generator=generator))
        squared = torch.minimum(squared, torch.cdist(vectors, vectors[picks[-1]]).square().amin(1).double())
        drawn += count
    codewords = vectors[torch.cat(picks)]
    nearest = search.nearest(vectors[None], codewords[None])[0]
    return codewords, torch.bincount(nearest, minlength=size).to(vectors.dtype)


def init_codebooks_from_latents(model: VQCodec, sampler: Sampler, config: TrainConfig) -> None:
    """Start each codebook from latent vectors of training data, so no codeword starts far away.

    'samples' draws the codewords among the latent vectors (uniform logits). 'lattice' takes
    `lattice_codebook` on Z^d per group (shifted to the latents' medians) with logits from the
    counts: after a uniform-quantization pretrain the VQ model starts where the pretrained model was. 'best-lattice' does the same on the
    densest lattice of the dimension (codec/lattices.py: A2, D4), scaled to the same cell volume.
    'kmeans++' seeds each codebook by k-means++ over the latents, logits from the counts.
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
        basis = None
        if config.codebook_init == "best-lattice":
            basis = lattices.generator(lattices.BEST.get(quantizer.dim, "Z"), quantizer.dim)
        for group in range(quantizer.groups):
            if config.codebook_init == "kmeans++":
                codewords, counts = kmeans_plus_plus(vectors[group].cpu(), quantizer.codebook_size, generator)
            else:
                codewords, counts = lattice_codebook(vectors[group].cpu(), quantizer.codebook_size, basis)
            quantizer.codebooks[group] = codewords.to(device)
            frequencies = counts.to(device) + UNSEEN_COUNT
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

"""Quantizers of the latent: the channel-split vector quantizer and the training-time approximations."""

from __future__ import annotations

import torch
from torch import nn

from codec import search


class ChannelSplitVQ(nn.Module):
    """Splits M channels into M/d groups of d consecutive channels; group g has its own K x d codebook.

    A codebook is shared by all spatial positions. Indices have shape (G, P) with P = B*h*w positions
    in (batch, row, column) order.
    """

    def __init__(self, channels: int, dim: int, codebook_size: int) -> None:
        super().__init__()
        if channels % dim:
            raise ValueError(f"{channels} channels do not split into groups of {dim}")
        self.dim = dim
        self.groups = channels // dim
        self.codebooks = nn.Parameter(torch.randn(self.groups, codebook_size, dim))
        self._tracked = {"plain": search.TrackedSearch(), "penalized": search.TrackedSearch()}
        """Training's searches (codec/search.py), one per kind of query."""

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    def to_vectors(self, y: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (G, P, d)."""
        b, m, h, w = y.shape
        return y.reshape(b, self.groups, self.dim, h, w).permute(1, 0, 3, 4, 2).reshape(self.groups, -1, self.dim)

    def from_vectors(self, vectors: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """(G, P, d) -> (B, M, h, w), the inverse of `to_vectors`."""
        b, m, h, w = shape
        return vectors.reshape(self.groups, b, h, w, self.dim).permute(1, 0, 4, 2, 3).reshape(b, m, h, w)

    @torch.no_grad()
    def nearest(self, vectors: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
        """Index of the nearest codeword for every vector (G, P, d) -> (G, P).

        With `penalty` (G, K), the search is entropy-constrained: argmin |v - c_k|^2 + penalty_k.
        The search is exact and its memory bounded whatever the image size (codec/search.py). In
        training mode the codebooks move every step, so the search tracks them (search.TrackedSearch)
        instead of building trees per codebook content, and 1-D codebooks are searched sorted (with a
        penalty, along the lower envelope of their cost lines).
        """
        codebooks = self.codebooks.detach()
        if self.training and self.dim == 1 and penalty is None:
            return search.line_nearest(vectors, codebooks)
        if self.training and self.dim == 1 and bool(torch.isfinite(penalty).all()):
            return search.line_penalized_nearest(vectors, codebooks, penalty)
        if self.training and search.uses_tracked_search(vectors, codebooks, penalty):
            tracked = self._tracked["plain" if penalty is None else "penalized"]
            return tracked.k_nearest(vectors, codebooks, 1, penalty)[..., 0]
        return search.nearest(vectors, codebooks, penalty)

    @torch.no_grad()
    def k_nearest(self, vectors: torch.Tensor, k: int) -> torch.Tensor:
        """Indices (G, P, k) of the k nearest codewords to every vector, nearest first."""
        return search.k_nearest(vectors, self.codebooks.detach(), min(k, self.codebook_size))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords for indices (G, P) -> (G, P, d); differentiable with respect to the codebooks."""
        return torch.gather(self.codebooks, 1, indices.unsqueeze(-1).expand(-1, -1, self.dim))


def uniform_in_ball(shape: torch.Size, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Samples (..., dim) uniform in the unit d-ball: a uniform direction times radius U^(1/d)."""
    direction = uniform_on_sphere(shape, dim, device)
    return direction * torch.rand(*shape, 1, device=device) ** (1.0 / dim)


def uniform_on_sphere(shape: torch.Size, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Samples (..., dim) uniform on the unit (d-1)-sphere."""
    gaussian = torch.randn(*shape, dim, device=device)
    return gaussian / gaussian.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def sphere_noise(vectors: torch.Tensor, quantized: torch.Tensor, cap: float = 0.0) -> torch.Tensor:
    """The paper's training approximation y + r*u with r = |y - Q(y)| (no gradient), u uniform in the ball.

    d(output)/d(vectors) is the identity, so the encoder sees the decoder's gradient unchanged. With
    `cap` > 0, r is at most `cap` times its group's RMS radius (vectors (G, P, d)).
    """
    radius = (vectors - quantized).norm(dim=-1, keepdim=True).detach()
    if cap > 0:
        radius = torch.minimum(radius, cap * radius.square().mean(1, keepdim=True).sqrt())
    return vectors + radius * uniform_in_ball(vectors.shape[:-1], vectors.shape[-1], vectors.device)


def soft_assignment(vectors: torch.Tensor, codebooks: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Soft-to-hard VQ (Agustsson et al. 2017): weights softmax(-|v - c_k|^2 / T) over codewords, (G, P, K)."""
    return torch.softmax(-torch.cdist(vectors, codebooks) ** 2 / temperature, dim=-1)


def gumbel_assignment(vectors: torch.Tensor, codebooks: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Probabilistic VQ (Zhu et al. 2022): a relaxed Gumbel-softmax sample of the codeword choice, (G, P, K)."""
    logits = -torch.cdist(vectors, codebooks) ** 2 / temperature
    return torch.nn.functional.gumbel_softmax(logits, tau=1.0, hard=False, dim=-1)


def sinkhorn_scaling(
    vectors: torch.Tensor, codebooks: torch.Tensor, epsilon: float = 10.0, iterations: int = 5,
    marginal: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OptVQ's transport plan between vectors (G, P, d) and codewords (G, K, d), as its scaling factors.

    Distances are standardized per group, shifted to start at 0, and turned into the kernel
    exp(-epsilon * D); alternating normalizations then give every vector mass 1/P and every codeword
    mass 1/K, so the plan spreads vectors over all codewords; or, given `marginal` (G, K) summing to
    1 per group (an entropy model's probabilities), codeword k mass marginal[k], so the plan follows
    the use the entropy model codes for instead of fighting it. The plan is row * kernel * column,
    returned as (kernel (G, P, K), row (G, P, 1), column (G, 1, K)): scaling the kernel by two vectors
    costs one matrix-vector product per normalization where the log domain costs several passes over
    the whole plan. float64 keeps far codewords representable (float32's exp underflows at -87,
    which a codeword 9 standard deviations out reaches); the floor keeps every row and column positive.
    """
    distances = torch.cdist(vectors, codebooks)
    std = distances.std(dim=(1, 2), keepdim=True).clamp_min(1e-12).double()
    nearest = distances.amin(dim=(1, 2), keepdim=True)
    kernel = distances.double().sub_(nearest).mul_(-epsilon / std).exp_().clamp_min_(torch.finfo(torch.float64).tiny)
    groups, positions, codewords = kernel.shape
    mass = 1.0 / codewords if marginal is None else marginal.double().reshape(groups, 1, codewords)
    column = torch.ones(groups, 1, codewords, dtype=torch.float64, device=kernel.device)
    for _ in range(iterations):
        row = 1.0 / (positions * torch.bmm(kernel, column.transpose(1, 2)))
        column = mass / torch.bmm(row.transpose(1, 2), kernel)
    return kernel, row, column


def sinkhorn_plan(
    vectors: torch.Tensor, codebooks: torch.Tensor, epsilon: float = 10.0, iterations: int = 5, marginal: torch.Tensor | None = None
) -> torch.Tensor:
    """The Sinkhorn transport plan itself, (G, P, K) in float64 (see sinkhorn_scaling)."""
    kernel, row, column = sinkhorn_scaling(vectors, codebooks, epsilon, iterations, marginal)
    return row * kernel * column


@torch.no_grad()
def sinkhorn_assign(vectors: torch.Tensor, codebooks: torch.Tensor, marginal: torch.Tensor | None = None) -> torch.Tensor:
    """Training-time indices (G, P): the codeword each vector sends most mass to in the Sinkhorn plan
    (codeword masses `marginal`, uniform if None; see sinkhorn_scaling).

    A row's own factor does not change its argmax, so only the kernel and the column factors are used.
    """
    kernel, _, column = sinkhorn_scaling(vectors, codebooks, marginal=marginal)
    return kernel.mul_(column).argmax(dim=-1)


def codebook_usage(counts: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per group: share of codewords used, and perplexity exp(H) of the index histogram, from counts (G, K)."""
    probs = counts / counts.sum(1, keepdim=True).clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(1)
    return (counts > 0).float().mean(1).tolist(), entropy.exp().tolist()


def index_counts(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Histogram (G, K) of indices (G, P)."""
    counts = torch.zeros(indices.shape[0], codebook_size, device=indices.device)
    return counts.scatter_add_(1, indices, torch.ones_like(indices, dtype=counts.dtype))

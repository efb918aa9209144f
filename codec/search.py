"""Exact nearest-codeword search: brute force in bounded blocks, or a k-d tree for low dimensions on CPU.

Brute force costs P x K distances per group, which grows with the codebook; a k-d tree answers a
query in about log K steps when d is small. An entropy-constrained search, argmin |v - c_k|^2 +
penalty_k, becomes a plain nearest-neighbour search one dimension up: codeword (c_k, sqrt(penalty_k
- min penalty)) and query (v, 0) are |v - c_k|^2 + penalty_k - min penalty apart.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

SEARCH_BLOCK_ELEMENTS = 1 << 24
"""Upper bound on the entries of one (groups x vectors x codewords) distance block: 64 MB of float32."""

KDTREE_MAX_DIM = 8
"""Highest (lifted) dimension searched with a k-d tree; above it, trees prune too little."""

KDTREE_MIN_WORK = 1 << 20
"""Fewest vector-codeword pairs per group for which building trees pays off (scripts/bench.py)."""


def brute_force(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """argmin_k |v - c_k|^2 (+ penalty_k) for vectors (G, P, d) and codebooks (G, K, d), in blocks of positions."""
    offsets = (codebooks * codebooks).sum(-1).unsqueeze(1)
    if penalty is not None:
        offsets = offsets + penalty.unsqueeze(1)
    groups, positions, _ = vectors.shape
    block = max(1, SEARCH_BLOCK_ELEMENTS // (groups * codebooks.shape[1]))
    indices = torch.empty(groups, positions, dtype=torch.long, device=vectors.device)
    for start in range(0, positions, block):
        distances = torch.baddbmm(offsets, vectors[:, start : start + block], codebooks.transpose(1, 2), alpha=-2.0)
        indices[:, start : start + block] = distances.argmin(-1)
    return indices


def kdtree(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """The same indices as `brute_force` (up to ties), from one k-d tree per group, in float64."""
    points = codebooks.detach().cpu().double().numpy()
    queries = vectors.detach().cpu().double().numpy()
    if penalty is not None:
        lift = penalty.detach().cpu().double().numpy()
        lift = np.sqrt(lift - lift.min(axis=1, keepdims=True))
        points = np.concatenate([points, lift[..., None]], axis=-1)
        queries = np.concatenate([queries, np.zeros((*queries.shape[:2], 1))], axis=-1)
    indices = np.empty(queries.shape[:2], dtype=np.int64)
    for group in range(points.shape[0]):
        tree = cKDTree(points[group], balanced_tree=False, compact_nodes=False)  # 4x faster to build, as fast to query
        _, indices[group] = tree.query(queries[group], workers=torch.get_num_threads())
    return torch.from_numpy(indices).to(vectors.device)


def uses_kdtree(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None) -> bool:
    """Whether `nearest` takes the k-d tree: CPU tensors, low dimension, enough work, finite penalties."""
    dim = codebooks.shape[-1] + (penalty is not None)
    return (
        vectors.device.type == "cpu"
        and dim <= KDTREE_MAX_DIM
        and vectors.shape[1] * codebooks.shape[1] >= KDTREE_MIN_WORK
        and (penalty is None or bool(torch.isfinite(penalty).all()))
    )


def nearest(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest codeword (entropy-constrained with `penalty` (G, K)) for vectors (G, P, d)."""
    search = kdtree if uses_kdtree(vectors, codebooks, penalty) else brute_force
    return search(vectors, codebooks, penalty)

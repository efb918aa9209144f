"""Exact nearest-codeword search: brute force in bounded blocks, or a k-d tree for low dimensions on CPU.

Brute force costs P x K distances per group, which grows with the codebook; a k-d tree answers a
query in about log K steps when d is small. An entropy-constrained search, argmin |v - c_k|^2 +
penalty_k, becomes a plain nearest-neighbour search one dimension up: codeword (c_k, sqrt(penalty_k
- min penalty)) and query (v, 0) are |v - c_k|^2 + penalty_k - min penalty apart. A loaded model
searches the same codebooks for every image, so its trees are built once and cached by content.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable

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


TREE_CACHE_SIZE = 4
"""Codebooks whose trees are kept: a loaded model builds its trees once, not once per image."""


def _row_hashes(points: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row: splitmix64's finalizer folded over the float64 bits, column by column."""
    hashes = np.zeros(len(points), dtype=np.uint64)
    for column in np.ascontiguousarray(points, dtype=np.float64).view(np.uint64).T:
        mixed = hashes ^ column
        mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        hashes = mixed ^ (mixed >> np.uint64(31))
    return hashes


def distinct_rows(points: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each distinct row of (K, d) `points`, in row order."""
    if len(np.unique(_row_hashes(points))) == len(points):  # distinct hashes: no two rows are equal
        return np.arange(len(points))
    order = np.lexsort(points.T[::-1])  # stable: equal rows stay in index order
    ordered = points[order]
    return np.sort(order[np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]])


def _tree(points: np.ndarray) -> cKDTree:
    return cKDTree(points, balanced_tree=False, compact_nodes=False)  # 4x faster to build, as fast to query


def _per_group(function: Callable, *groups: Iterable) -> np.ndarray:
    """`function` applied to each group's items in parallel threads (scipy's queries release the GIL;
    its own `workers` starts threads per call), stacked as (G, ...)."""
    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        return np.stack(list(pool.map(function, *groups)))


@dataclass(frozen=True)
class CodebookTree:
    """A k-d tree over one group's distinct codewords (dead codewords often coincide), which answers
    with the lowest index among equal codewords, as brute force's argmin does."""

    tree: cKDTree
    codeword: np.ndarray

    @classmethod
    def build(cls, points: np.ndarray) -> "CodebookTree":
        keep = distinct_rows(points)
        return cls(_tree(points[keep]), keep)

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        return self.codeword[self.tree.query(queries)[1]]


_TREES: OrderedDict[bytes, list[CodebookTree]] = OrderedDict()


def _fingerprint(codebooks: torch.Tensor, penalty: torch.Tensor | None) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for tensor in (codebooks, penalty) if penalty is not None else (codebooks,):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()


def _lifted_codewords(codebooks: torch.Tensor, penalty: torch.Tensor | None) -> np.ndarray:
    points = codebooks.detach().cpu().double().numpy()
    if penalty is None:
        return points
    lift = penalty.detach().cpu().double().numpy()
    return np.concatenate([points, np.sqrt(lift - lift.min(axis=1, keepdims=True))[..., None]], axis=-1)


def _trees(codebooks: torch.Tensor, penalty: torch.Tensor | None) -> list[CodebookTree]:
    """One tree per group, from the cache when the same codebooks and penalty were searched before."""
    key = _fingerprint(codebooks, penalty)
    if key not in _TREES:
        _TREES[key] = [CodebookTree.build(group) for group in _lifted_codewords(codebooks, penalty)]
        if len(_TREES) > TREE_CACHE_SIZE:
            _TREES.popitem(last=False)
    _TREES.move_to_end(key)
    return _TREES[key]


def clear_tree_cache() -> None:
    """Forget every cached tree (benchmarks time the first search of a model this way)."""
    _TREES.clear()


def kdtree(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """The same indices as `brute_force` (up to float32 near-ties), from one k-d tree per group, in float64."""
    queries = vectors.detach().cpu().double().numpy()
    if penalty is not None:
        queries = np.concatenate([queries, np.zeros((*queries.shape[:2], 1))], axis=-1)
    return torch.from_numpy(_per_group(CodebookTree.nearest, _trees(codebooks, penalty), queries)).to(vectors.device)


def k_nearest(vectors: torch.Tensor, codebooks: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (G, P, k) of the k nearest codewords to each of vectors (G, P, d), nearest first.

    Training asks this of codebooks that change every step, so its trees are built per call and
    hold every codeword (equal ones included, as a sum over codewords needs them).
    """
    if not uses_kdtree(vectors, codebooks, None):
        return torch.cdist(vectors, codebooks).topk(k, largest=False).indices
    points = codebooks.detach().cpu().double().numpy()
    queries = vectors.detach().cpu().double().numpy()

    def group_neighbours(group_points: np.ndarray, group_queries: np.ndarray) -> np.ndarray:
        return _tree(group_points).query(group_queries, k=k)[1].reshape(len(group_queries), k)

    return torch.from_numpy(_per_group(group_neighbours, points, queries)).to(vectors.device)


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

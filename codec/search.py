"""Exact nearest-codeword search: brute force in bounded blocks, or a k-d tree for low dimensions on CPU.

Brute force costs P x K distances per group, which grows with the codebook; a k-d tree answers a
query in about log K steps when d is small. An entropy-constrained search, argmin |v - c_k|^2 +
penalty_k, becomes a plain nearest-neighbour search one dimension up: codeword (c_k, sqrt(penalty_k
- min penalty)) and query (v, 0) are |v - c_k|^2 + penalty_k - min penalty apart. One tree over
all lifted codewords prunes badly, though: rarely used codewords sit among the used ones with a long
lift (a trained codebook's unused words all share the entropy model's floor), and a query must visit
every one within its answer's distance (5.4 s a step for the study's 4-D vq-ste stack). So the
codewords are cut by lift into tiers of a tree each, and a query skips a tier whose smallest lift^2
exceeds the distance it already has (`_tiers`). A loaded model searches the same codebooks for every
image, so its trees are built once and cached by content.
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


def _query_tree(points: np.ndarray) -> cKDTree:
    """A tree built for many queries: slower to build than `_tree`, faster to query."""
    return cKDTree(points, leafsize=32)


def _per_group(function: Callable, *groups: Iterable, stack: bool = True) -> np.ndarray | list:
    """`function` applied to each group's items in parallel threads (scipy's queries release the GIL;
    its own `workers` starts threads per call), stacked as (G, ...) unless `stack` is False."""
    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        results = list(pool.map(function, *groups))
    return np.stack(results) if stack else results


FLOOR_SHARE = 1 / 16
"""Smallest share of a group's codewords at one lift that an entropy-constrained search keeps in a
last tier of their own: the codewords a trained entropy model never uses share one probability
(their logits get the same gradients), so they sit at one lift, among the used ones."""

TIER_SHARES = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
"""Where an entropy-constrained search cuts the codewords below the floor, in order of lift, into
tiers (shares of K; a tier holds at least TIER_MIN_SIZE): the probable codewords are where the vectors
are, so most queries find their answer in the first tiers and skip the rest. On the 4-D toy vq-ste
stack's step (14 groups of 1,024 vectors, K = 32,768) one tree per group answers in 5.8 s, the floor
tier alone in 0.45 s, these tiers alone 0.31 s, both 0.26 s."""

TIER_MIN_SIZE = 256


def _tiers(points: np.ndarray, lifted: bool, smallest: int = 1) -> list[np.ndarray]:
    """Codeword indices of one group's (K, d) points in tiers of rising lift (the last coordinate), each
    in index order (TIER_SHARES, FLOOR_SHARE); one tier of all codewords without a penalty, or where
    the first tier would hold fewer than `smallest`."""
    size = len(points)
    everything = [np.arange(size)]
    if not lifted:
        return everything
    lifts = points[:, -1]
    values, counts = np.unique(lifts, return_counts=True)
    if counts.max() >= FLOOR_SHARE * size:
        most_common = values[counts.argmax()]
        below, floor = np.nonzero(lifts < most_common)[0], [np.nonzero(lifts >= most_common)[0]]
    else:
        below, floor = np.arange(size), []
    order = below[np.argsort(lifts[below], kind="stable")]
    edges = sorted({min(len(order), max(TIER_MIN_SIZE, round(share * size))) for share in TIER_SHARES} | {len(order)})
    tiers = [np.sort(order[start:end]) for start, end in zip([0, *edges[:-1]], edges) if end > start] + floor
    return tiers if len(tiers[0]) >= smallest else everything


def _tier_floor(points: np.ndarray, tier: np.ndarray, lifted: bool) -> float:
    """A lower bound on the (squared, lifted) distance of any query to the tier's codewords: its smallest lift^2."""
    return float(points[tier, -1].min() ** 2) if lifted else 0.0


def _skips(floor: float, distance: np.ndarray) -> np.ndarray:
    """Queries whose answer so far (a distance, not squared) no codeword of a tier with this floor can match."""
    return floor > distance**2 * (1 + 1e-12)


@dataclass(frozen=True)
class CodebookTree:
    """K-d trees over one group's distinct codewords (dead codewords often coincide), one per tier,
    which answer with the lowest index among equal codewords, as brute force's argmin does."""

    tiers: list[tuple[cKDTree, np.ndarray, float]]
    """Per tier: the tree, the codeword index of each of its points, and its floor (`_tier_floor`)."""

    @classmethod
    def build(cls, points: np.ndarray, lifted: bool) -> "CodebookTree":
        tiers = []
        for tier in _tiers(points, lifted):
            keep = tier[distinct_rows(points[tier])]
            tiers.append((_tree(points[keep]), keep, _tier_floor(points, tier, lifted)))
        return cls(tiers)

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        best, distance = np.zeros(len(queries), dtype=np.int64), np.full(len(queries), np.inf)
        for tree, codeword, floor in self.tiers:
            rows = np.nonzero(~_skips(floor, distance))[0]
            found_distance, found = tree.query(queries[rows])
            found = codeword[found]
            better = (found_distance < distance[rows]) | ((found_distance == distance[rows]) & (found < best[rows]))
            best[rows[better]], distance[rows[better]] = found[better], found_distance[better]
        return best


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
        _TREES[key] = [CodebookTree.build(group, penalty is not None) for group in _lifted_codewords(codebooks, penalty)]
        if len(_TREES) > TREE_CACHE_SIZE:
            _TREES.popitem(last=False)
    _TREES.move_to_end(key)
    return _TREES[key]


def clear_tree_cache() -> None:
    """Forget every cached tree (benchmarks time the first search of a model this way)."""
    _TREES.clear()


def _lifted_queries(vectors: torch.Tensor, penalty: torch.Tensor | None) -> np.ndarray:
    """Vectors as float64 queries, with the zero coordinate that meets the penalty's lift."""
    queries = vectors.detach().cpu().double().numpy()
    if penalty is None:
        return queries
    return np.concatenate([queries, np.zeros((*queries.shape[:2], 1))], axis=-1)


def kdtree(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """The same indices as `brute_force` (up to float32 near-ties), from one k-d tree per group, in float64."""
    queries = _lifted_queries(vectors, penalty)
    return torch.from_numpy(_per_group(CodebookTree.nearest, _trees(codebooks, penalty), queries)).to(vectors.device)


TRACKED_CANDIDATES = (2, 16, 128)
"""Candidates a tracked query asks of its snapshot trees, in rounds (at least k + 1): each round asks
more of the vectors that the previous one left uncertain; brute force takes what the last leaves."""

REBUILD_FALLBACKS = 0.01
"""Share of a tracked query's vectors left to brute force above which the snapshot is rebuilt."""

REBUILD_EVERY = 200
"""Queries after which a tracked search rebuilds its snapshot anyway: as an entropy model learns, its
codewords' lifts drift away from the tiers they were cut into (on the 4-D toy vq-ste stack a
snapshot 3,300 steps old made the search 4x slower, 0.60 s against 0.14 s, with no codeword moved
far enough to force brute force); a rebuild there costs about 0.5 s."""


class TrackedSearch:
    """Exact k nearest codewords of codebooks that move a little between calls, as in training.

    Building a k-d tree costs far more than querying it with a training batch, and brute force costs
    more than both (scripts/bench_training_cost.py), so trees are built over a snapshot of the
    codewords, one per tier (`_tiers`), and kept while they move. A query takes candidates from a
    tier's snapshot tree and ranks them by their current positions. The answer is certain when the
    farthest candidate's snapshot distance, less the largest displacement of any codeword since the
    snapshot, exceeds the k-th current distance: no codeword of the tier outside the candidates can
    then be as near. Vectors without that certainty ask for more candidates (TRACKED_CANDIDATES),
    then brute force over the tier. A tier is skipped for the vectors whose k-th distance so far its
    current smallest lift cannot match. When brute force takes more than REBUILD_FALLBACKS of a
    query, or REBUILD_EVERY queries have used the snapshot, the next query rebuilds it. Distances
    are float64, ties go to the lowest index, and every codeword is a candidate (equal ones included).
    """

    def __init__(self) -> None:
        self._snapshot: torch.Tensor | None = None
        self._trees: list[list[tuple[cKDTree, np.ndarray]]] = []
        self._queries = 0
        """Queries that used the snapshot."""
        self.rebuilds = 0

    def _rebuild(self, points: np.ndarray, lifted: bool, k: int) -> None:
        self._snapshot = torch.from_numpy(points).float()

        def group_trees(group_points: np.ndarray) -> list[tuple[cKDTree, np.ndarray]]:
            return [(_query_tree(group_points[tier]), tier) for tier in _tiers(group_points, lifted, k + 1)]

        self._trees = list(_per_group(group_trees, points, stack=False))
        self._queries = 0
        self.rebuilds += 1

    def _displacement(self, points: np.ndarray) -> np.ndarray:
        """Per group, an upper bound on how far any codeword moved since the snapshot (float32 with margin)."""
        moved = (torch.from_numpy(points).float() - self._snapshot).square_().sum(-1).amax(-1).sqrt_()
        return moved.double().numpy() * (1 + 1e-5) + 1e-6

    def k_nearest(self, vectors: torch.Tensor, codebooks: torch.Tensor, k: int, penalty: torch.Tensor | None = None) -> torch.Tensor:
        """Indices (G, P, k) of the k nearest codewords (by |v - c|^2 + penalty) to vectors (G, P, d), nearest first."""
        points = _lifted_codewords(codebooks, penalty)
        queries = _lifted_queries(vectors, penalty)
        lifted = penalty is not None
        if self._snapshot is None or self._snapshot.shape != points.shape or len(self._trees[0][0][1]) < min(k + 1, points.shape[1]):
            self._rebuild(points, lifted, k)
        displacement = self._displacement(points)

        def group_nearest(group: int) -> tuple[np.ndarray, int]:
            """The group's k nearest (P, k), and how many of its vectors a tier left to brute force."""
            nearest = np.zeros((queries.shape[1], min(k, points.shape[1])), dtype=np.int64)
            distance = np.full(queries.shape[1], np.inf)
            fallbacks = 0
            for index, (tree, tier) in enumerate(self._trees[group]):
                rows = np.nonzero(~_skips(_tier_floor(points[group], tier, lifted), distance))[0]
                found, left = _tier_k_nearest(tree, tier, queries[group, rows], points[group], displacement[group], k)
                candidates = found if index == 0 else np.concatenate([nearest[rows], found], axis=1)
                nearest[rows], distance[rows] = _ranked(queries[group, rows], points[group], candidates, k)
                fallbacks += left
            return nearest, fallbacks

        answers = _per_group(group_nearest, range(len(points)), stack=False)
        self._queries += 1
        if sum(left for _, left in answers) > REBUILD_FALLBACKS * queries.shape[0] * queries.shape[1] or self._queries >= REBUILD_EVERY:
            self._snapshot = None
        return torch.from_numpy(np.stack([nearest for nearest, _ in answers])).to(vectors.device)


def _tier_k_nearest(
    tree: cKDTree, tier: np.ndarray, queries: np.ndarray, points: np.ndarray, displacement: float, k: int
) -> tuple[np.ndarray, int]:
    """The k nearest (n, k) of the tier's codewords (indices into `points`, the group's current
    positions) to `queries`, from the tier's snapshot `tree`; and how many queries took brute force."""
    size = len(tier)
    nearest = np.zeros((len(queries), min(k, size)), dtype=np.int64)
    pending = np.arange(len(queries))
    for count in sorted({min(size, max(k + 1, c)) for c in TRACKED_CANDIDATES}):
        distances, indices = tree.query(queries[pending], k=count)
        distances, indices = distances.reshape(len(pending), count), indices.reshape(len(pending), count)
        found, kth = _ranked(queries[pending], points, tier[indices], k)
        certain = distances[:, -1] - displacement > kth
        if count == size:
            certain[:] = True
        nearest[pending[certain]] = found[certain]
        pending = pending[~certain]
    if len(pending):
        everything = np.broadcast_to(tier, (len(pending), size))
        nearest[pending] = _ranked(queries[pending], points, everything, k)[0]
    return nearest, len(pending)


def _ranked(queries: np.ndarray, points: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of each query's candidate indices (n, c), the k nearest by current distance, ties to the lowest
    index, (n, k); and the k-th distance (n,)."""
    by_index = np.sort(candidates, axis=-1)
    squared = ((queries[:, None, :] - points[by_index]) ** 2).sum(-1)
    ranked = np.argsort(squared, axis=-1, kind="stable")[:, :k]
    kth = np.sqrt(np.take_along_axis(squared, ranked[:, -1:], -1)[:, 0])
    return np.take_along_axis(by_index, ranked, -1), kth


def _sorted_line(codebooks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D codebooks (G, K, 1) sorted: values (G, K), their indices, and per sorted position the lowest
    index among the codewords of equal value (a stable sort puts it first in its run)."""
    values, order = codebooks[..., 0].sort(dim=-1, stable=True)
    positions = torch.arange(values.shape[1], device=values.device).expand_as(values)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    run_start = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=-1).values
    return values.contiguous(), order, order.gather(1, run_start)


def line_nearest(vectors: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """`brute_force`'s indices for 1-D codebooks (G, K, 1) (up to float32 near-ties), in O(P log K):
    the nearest value is one of the two around the query's place in the sorted codebook."""
    values, _, lowest = _sorted_line(codebooks)
    queries = vectors[..., 0].contiguous()
    place = torch.searchsorted(values, queries)
    below, above = (place - 1).clamp_min(0), place.clamp_max(values.shape[1] - 1)
    gap_below = (queries - values.gather(1, below)).abs()
    gap_above = (values.gather(1, above) - queries).abs()
    index_below, index_above = lowest.gather(1, below), lowest.gather(1, above)
    take_above = (gap_above < gap_below) | ((gap_above == gap_below) & (index_above < index_below))
    return torch.where(take_above, index_above, index_below)


def line_penalized_nearest(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """`brute_force`'s indices of an entropy-constrained search of 1-D codebooks (G, K, 1) (up to
    float32 near-ties), in O(K + P log K) per group. |v - c|^2 + p = v^2 + (c^2 + p) - 2cv: dropping v^2,
    each codeword is a line in v, and the answers are the lines of their lower envelope, which are the
    lower convex hull of the points (2c, c^2 + p); each holds an interval of v between breakpoints."""
    points = codebooks[..., 0].detach().cpu().double().numpy()
    offsets = points**2 + penalty.detach().cpu().double().numpy()
    hulls, breaks = [], []
    for slope, offset in zip(points, offsets):
        hull = _lower_envelope(slope, offset)
        hulls.append(hull)
        breaks.append((offset[hull[1:]] - offset[hull[:-1]]) / (2 * (slope[hull[1:]] - slope[hull[:-1]])))
    width = max(len(hull) for hull in hulls)
    lines = torch.tensor(np.stack([np.pad(hull, (0, width - len(hull)), mode="edge") for hull in hulls]))
    edges = torch.tensor(np.stack([np.pad(edge, (0, width - 1 - len(edge)), constant_values=np.inf) for edge in breaks]))
    place = torch.searchsorted(edges, vectors[..., 0].detach().cpu().double().contiguous())
    return lines.gather(1, place).to(vectors.device)


def _lower_envelope(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Indices of the codewords whose lines b - 2cv (c = points, b = offsets) form the lower envelope,
    from v = -inf (smallest c) up: Andrew's monotone chain over (c, b), the lowest offset and then the
    lowest index first among equal c."""
    order = np.lexsort((np.arange(len(points)), offsets, points))
    keep = order[np.r_[True, points[order][1:] != points[order][:-1]]].tolist()
    hull: list[int] = []
    c, b = points.tolist(), offsets.tolist()
    for k in keep:
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            if (c[j] - c[i]) * (b[k] - b[i]) - (b[j] - b[i]) * (c[k] - c[i]) > 0:
                break
            hull.pop()
        hull.append(k)
    return np.array(hull, dtype=np.int64)


def line_k_nearest(vectors: torch.Tensor, codebooks: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (G, P, k) of the k nearest of 1-D codebooks (G, K, 1), nearest first: they lie among the
    2k sorted values around the query's place (order among equal distances is unspecified, as for topk)."""
    size = codebooks.shape[1]
    if size < 2 * k:
        return torch.cdist(vectors, codebooks).topk(k, largest=False).indices
    values, order, _ = _sorted_line(codebooks)
    queries = vectors[..., 0].contiguous()
    start = (torch.searchsorted(values, queries) - k).clamp(0, size - 2 * k)
    window = (start.unsqueeze(-1) + torch.arange(2 * k, device=vectors.device)).flatten(1)
    gaps = (values.gather(1, window) - queries.repeat_interleave(2 * k, dim=1)).abs().view(*queries.shape, 2 * k)
    nearest = gaps.topk(k, largest=False).indices
    return order.gather(1, window).view(*queries.shape, 2 * k).gather(-1, nearest)


def uses_kdtree(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None) -> bool:
    """Whether `nearest` takes the k-d tree: CPU tensors, low dimension, enough work, finite penalties."""
    dim = codebooks.shape[-1] + (penalty is not None)
    return (
        vectors.device.type == "cpu"
        and dim <= KDTREE_MAX_DIM
        and vectors.shape[1] * codebooks.shape[1] >= KDTREE_MIN_WORK
        and (penalty is None or bool(torch.isfinite(penalty).all()))
    )


TRACKED_MIN_CODEBOOK = 16384
"""Smallest codebook that training searches with TrackedSearch: below it, building trees per step costs
no more than tracking them (48 groups, 512 vectors: K=4096 35 vs 43 ms; K=32768 578 vs 184 ms)."""


def uses_tracked_search(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None) -> bool:
    """Whether training searches with TrackedSearch: the k-d tree's conditions, and a large codebook."""
    return codebooks.shape[1] >= TRACKED_MIN_CODEBOOK and uses_kdtree(vectors, codebooks, penalty)


def k_nearest(vectors: torch.Tensor, codebooks: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (G, P, k) of the k nearest codewords to each of vectors (G, P, d), nearest first.

    Training asks this of codebooks that change every step, so its trees are built per call and
    hold every codeword (equal ones included, as a sum over codewords needs them); for k > 1 that
    costs less than tracking them (TrackedSearch asks its trees for more candidates).
    """
    if codebooks.shape[-1] == 1:
        return line_k_nearest(vectors, codebooks, k)
    if not uses_kdtree(vectors, codebooks, None):
        return torch.cdist(vectors, codebooks).topk(k, largest=False).indices
    points = codebooks.detach().cpu().double().numpy()
    queries = vectors.detach().cpu().double().numpy()

    def group_neighbours(group_points: np.ndarray, group_queries: np.ndarray) -> np.ndarray:
        return _tree(group_points).query(group_queries, k=k)[1].reshape(len(group_queries), k)

    return torch.from_numpy(_per_group(group_neighbours, points, queries)).to(vectors.device)


def nearest(vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest codeword (entropy-constrained with `penalty` (G, K)) for vectors (G, P, d)."""
    search = kdtree if uses_kdtree(vectors, codebooks, penalty) else brute_force
    return search(vectors, codebooks, penalty)

"""The k-d tree search returns the brute-force indices, with and without the entropy penalty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec import search
from codec.quantizers import ChannelSplitVQ


def float64_argmin(vectors, codebooks, penalty):
    distances = torch.cdist(vectors.double(), codebooks.double()) ** 2
    return (distances + (0 if penalty is None else penalty.double().unsqueeze(1))).argmin(-1)


@pytest.mark.parametrize("dim", [1, 2, 4])
@pytest.mark.parametrize("with_penalty", [False, True])
def test_kdtree_returns_the_exact_nearest_codeword(dim, with_penalty):
    generator = torch.Generator().manual_seed(dim)
    vectors = torch.randn(3, 500, dim, generator=generator) * 2
    codebooks = torch.randn(3, 300, dim, generator=generator)
    penalty = torch.rand(3, 300, generator=generator) * 3 if with_penalty else None
    assert torch.equal(search.kdtree(vectors, codebooks, penalty), float64_argmin(vectors, codebooks, penalty))


def test_kdtree_and_float32_brute_force_differ_only_on_near_ties():
    generator = torch.Generator().manual_seed(7)
    vectors, codebooks = torch.randn(4, 2000, 4, generator=generator), torch.randn(4, 4096, 4, generator=generator)
    penalty = torch.rand(4, 4096, generator=generator)
    tree, brute = search.kdtree(vectors, codebooks, penalty), search.brute_force(vectors, codebooks, penalty)
    cost = torch.cdist(vectors.double(), codebooks.double()) ** 2 + penalty.double().unsqueeze(1)
    gap = cost.gather(2, brute.unsqueeze(-1)) - cost.gather(2, tree.unsqueeze(-1))
    assert (tree != brute).float().mean() < 1e-3
    assert gap.min() >= 0 and gap.max() < 1e-5


def test_the_penalty_changes_the_answer():
    """Guards the lift: a penalty that forbids the nearest codeword must move the choice."""
    codebooks = torch.tensor([[[0.0], [1.0]]])
    vectors = torch.tensor([[[0.1]]])
    assert search.kdtree(vectors, codebooks, None).item() == 0
    assert search.kdtree(vectors, codebooks, torch.tensor([[5.0, 0.0]])).item() == 1


def test_nearest_takes_the_tree_only_for_low_dimensions_and_enough_work():
    small, large = torch.zeros(1, 10, 4), torch.zeros(1, 4096, 4)
    codebooks = torch.zeros(1, 4096, 4)
    assert search.uses_kdtree(large, codebooks, None)
    assert not search.uses_kdtree(small, torch.zeros(1, 8, 4), None)
    assert not search.uses_kdtree(torch.zeros(1, 4096, 16), torch.zeros(1, 4096, 16), None)
    assert not search.uses_kdtree(large, codebooks, torch.full((1, 4096), float("inf")))


def test_quantizer_search_is_exact_on_either_path(monkeypatch):
    torch.manual_seed(0)
    quantizer = ChannelSplitVQ(channels=8, dim=4, codebook_size=2048)
    vectors = torch.randn(2, 1024, 4)
    expected = float64_argmin(vectors, quantizer.codebooks.detach(), None)
    assert torch.equal(quantizer.nearest(vectors), expected)
    monkeypatch.setattr(search, "KDTREE_MIN_WORK", 1 << 40)
    assert torch.equal(quantizer.nearest(vectors), expected)


def test_duplicate_codewords_give_the_lowest_index_like_brute_force():
    codebooks = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    vectors = torch.tensor([[[0.9, 0.8], [0.1, -0.2]]])
    assert search.kdtree(vectors, codebooks).tolist() == search.brute_force(vectors, codebooks).tolist() == [[0, 1]]


def test_a_changed_codebook_is_never_answered_from_a_cached_tree():
    codebooks = torch.tensor([[[0.0], [1.0]]])
    vectors = torch.tensor([[[0.9]]])
    assert search.kdtree(vectors, codebooks).item() == 1
    codebooks[0, 1, 0] = 5.0
    assert search.kdtree(vectors, codebooks).item() == 0


def test_distinct_rows_keeps_the_first_of_each_repeated_row():
    rows = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [0.0, 0.0]])
    assert search.distinct_rows(rows).tolist() == [0, 1, 3]
    assert search.distinct_rows(np.random.default_rng(0).normal(size=(5000, 4)).astype(np.float32)).tolist() == list(range(5000))


@pytest.mark.parametrize("positions", [10, 600])
def test_k_nearest_finds_the_same_neighbours_on_either_path(positions):
    generator = torch.Generator().manual_seed(positions)
    vectors, codebooks = torch.randn(2, positions, 4, generator=generator), torch.randn(2, 2048, 4, generator=generator)
    expected = torch.cdist(vectors.double(), codebooks.double()).topk(8, largest=False).indices
    assert search.uses_kdtree(vectors, codebooks, None) == (positions == 600)
    assert torch.equal(search.k_nearest(vectors, codebooks, 8), expected)


def float64_k_nearest(vectors, codebooks, k):
    distances = torch.cdist(vectors.double(), codebooks.double()) ** 2
    return torch.sort(distances, dim=-1, stable=True).indices[..., :k]


@pytest.mark.parametrize("with_penalty", [False, True])
def test_tracked_search_stays_exact_while_codebooks_move(with_penalty):
    """Training's search keeps snapshot trees while the codewords move: every answer must still be exact."""
    generator = torch.Generator().manual_seed(3)
    codebooks = 3 * torch.randn(2, 512, 4, generator=generator)  # spaced about 1 apart, like trained codewords
    penalty = torch.rand(2, 512, generator=generator) * 2 if with_penalty else None
    tracked = search.TrackedSearch()
    for step in range(30):
        vectors = torch.randn(2, 256, 4, generator=generator) * 4
        expected = float64_argmin(vectors, codebooks, penalty)
        assert torch.equal(tracked.k_nearest(vectors, codebooks, 1, penalty)[..., 0], expected), step
        codebooks = codebooks + 0.003 * torch.randn(codebooks.shape, generator=generator)
        if with_penalty:
            penalty = penalty + 0.01 * torch.rand(penalty.shape, generator=generator)
    assert tracked.rebuilds < 10  # the snapshot is reused, not rebuilt every step


def test_tracked_search_finds_the_k_nearest_and_survives_a_jump():
    generator = torch.Generator().manual_seed(4)
    codebooks = torch.randn(3, 300, 2, generator=generator)
    tracked = search.TrackedSearch()
    for scale in (0.0, 0.01, 5.0, 0.01):  # 5.0: every codeword jumps far (reactivation), answers stay exact
        codebooks = codebooks + scale * torch.randn(codebooks.shape, generator=generator)
        vectors = torch.randn(3, 200, 2, generator=generator)
        assert torch.equal(tracked.k_nearest(vectors, codebooks, 8), float64_k_nearest(vectors, codebooks, 8))


def test_quantizer_tracks_large_codebooks_only_in_training_mode():
    torch.manual_seed(1)
    quantizer = ChannelSplitVQ(channels=8, dim=4, codebook_size=search.TRACKED_MIN_CODEBOOK)
    vectors = torch.randn(2, 300, 4)
    expected = float64_argmin(vectors, quantizer.codebooks.detach(), None)
    assert torch.equal(quantizer.nearest(vectors), expected)
    assert quantizer._tracked["plain"].rebuilds == 1
    quantizer.eval()
    assert torch.equal(quantizer.nearest(vectors), expected)
    assert quantizer._tracked["plain"].rebuilds == 1


def test_a_sorted_line_finds_the_nearest_of_1d_codebooks_with_ties_to_the_lowest_index():
    generator = torch.Generator().manual_seed(3)
    codebooks = torch.randn(3, 256, 1, generator=generator)
    codebooks[:, 200:] = codebooks[:, :56]  # dead codewords that coincide with live ones
    vectors = torch.randn(3, 4000, 1, generator=generator) * 3  # beyond both ends too
    assert torch.equal(search.line_nearest(vectors, codebooks), float64_argmin(vectors, codebooks, None))
    duplicates = torch.tensor([[[2.0], [-1.0], [2.0], [-1.0], [0.5]]])
    assert search.line_nearest(torch.tensor([[[1.9], [-3.0], [0.6]]]), duplicates).tolist() == [[0, 1, 4]]


@pytest.mark.parametrize("penalty_scale", [0.1, 10.0, 1000.0])
def test_the_lower_envelope_finds_the_entropy_constrained_nearest_of_1d_codebooks(penalty_scale):
    """Light to heavy penalties (at the heaviest, a few codewords take every vector), duplicate
    codewords with equal and unequal penalties, vectors beyond both ends."""
    generator = torch.Generator().manual_seed(int(penalty_scale))
    codebooks = torch.randn(3, 256, 1, generator=generator) * 3
    codebooks[:, 200:] = codebooks[:, :56]
    penalty = torch.rand(3, 256, generator=generator) * penalty_scale
    penalty[:, 200:228] = penalty[:, :28]  # equal penalties too: the lower index must win
    vectors = torch.randn(3, 4000, 1, generator=generator) * 6
    found = search.line_penalized_nearest(vectors, codebooks, penalty)
    assert torch.equal(found, float64_argmin(vectors, codebooks, penalty))
    assert not ((found >= 200) & (found < 228)).any() and (found >= 228).any()


def test_training_searches_penalized_1d_codebooks_along_the_envelope(monkeypatch):
    quantizer = ChannelSplitVQ(channels=4, dim=1, codebook_size=64)
    penalty = torch.rand(4, 64) * 3
    vectors = torch.randn(4, 500, 1) * 2
    monkeypatch.setattr(search, "brute_force", None)  # training must not reach it
    monkeypatch.setattr(search, "kdtree", None)
    assert torch.equal(quantizer.nearest(vectors, penalty), float64_argmin(vectors, quantizer.codebooks.detach(), penalty))


@pytest.mark.parametrize("size", [256, 12])
def test_a_sorted_line_finds_the_k_nearest_of_1d_codebooks(size):
    generator = torch.Generator().manual_seed(size)
    codebooks, vectors = torch.randn(2, size, 1, generator=generator), torch.randn(2, 3000, 1, generator=generator) * 3
    assert torch.equal(search.k_nearest(vectors, codebooks, 8), float64_k_nearest(vectors, codebooks, 8))


def test_training_searches_1d_codebooks_sorted(monkeypatch):
    torch.manual_seed(1)
    quantizer = ChannelSplitVQ(channels=8, dim=1, codebook_size=256)
    vectors = torch.randn(8, 2048, 1) * 2
    expected = float64_argmin(vectors, quantizer.codebooks.detach(), None)
    monkeypatch.setattr(search, "brute_force", None)  # neither path may fall back to it
    monkeypatch.setattr(search, "kdtree", None)
    assert torch.equal(quantizer.train().nearest(vectors), expected)


def trained_entropy_penalty(generator, groups, size, live_share=0.1, floor=20.0):
    """A penalty shaped like a trained entropy model's: a few codewords in use at graded costs, the
    rest at the model's probability floor, spread among the used ones."""
    penalty = torch.full((groups, size), floor)
    live = torch.rand(groups, size, generator=generator) < live_share
    return torch.where(live, torch.rand(groups, size, generator=generator) * 5, penalty)


@pytest.mark.parametrize("tracked", [False, True])
def test_a_tiered_entropy_constrained_search_is_exact_where_floor_codewords_win(tracked):
    """Tiers are skipped only where they cannot hold the answer: vectors far out, whose nearest used
    codeword costs more than a floor codeword beside them, must still get the floor codeword."""
    generator = torch.Generator().manual_seed(11)
    codebooks = 4 * torch.randn(2, 4096, 4, generator=generator)
    penalty = trained_entropy_penalty(generator, 2, 4096)
    vectors = torch.cat([torch.randn(2, 400, 4, generator=generator) * 3, torch.randn(2, 100, 4, generator=generator) * 12], 1)
    expected = float64_argmin(vectors, codebooks, penalty)
    found = search.TrackedSearch().k_nearest(vectors, codebooks, 1, penalty)[..., 0] if tracked else search.kdtree(vectors, codebooks, penalty)
    tiers = search._tiers(search._lifted_codewords(codebooks, penalty)[0], lifted=True)
    assert len(tiers) > 2 and bool((penalty[0, tiers[-1]] == 20.0).all())  # cut by rank, the floor last
    assert (penalty.gather(1, expected) == 20.0).any()  # some answers lie in the last tier
    assert torch.equal(found, expected)


def test_a_tracked_snapshot_is_rebuilt_after_its_share_of_queries(monkeypatch):
    """An entropy model's lifts drift from the tiers cut at the snapshot, and no codeword need move
    far enough to force a rebuild: the snapshot is renewed every REBUILD_EVERY queries anyway."""
    monkeypatch.setattr(search, "REBUILD_EVERY", 5)
    generator = torch.Generator().manual_seed(5)
    codebooks = 4 * torch.randn(2, 2048, 4, generator=generator)
    penalty = trained_entropy_penalty(generator, 2, 2048)
    tracked = search.TrackedSearch()
    for step in range(12):
        vectors = torch.randn(2, 300, 4, generator=generator) * 3
        assert torch.equal(tracked.k_nearest(vectors, codebooks, 1, penalty)[..., 0], float64_argmin(vectors, codebooks, penalty))
    assert tracked.rebuilds == 3  # the first query's, and after the 5th and the 10th

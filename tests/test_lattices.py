"""Lattices and the codebook starts built on them."""

from __future__ import annotations

import pytest
import torch

from codec import lattices
from codec.training.codebook_init import kmeans_plus_plus, lattice_codebook


@pytest.mark.parametrize("name, dim, second_moment", [("Z", 1, 1 / 12), ("Z", 4, 1 / 12), ("A2", 2, 0.0802), ("D4", 4, 0.0766)])
def test_cells_have_unit_volume_and_the_known_second_moment(name, dim, second_moment):
    basis = lattices.generator(name, dim)
    assert abs(float(torch.linalg.det(basis))) == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(dim)
    uniform = torch.rand(100_000, dim, generator=generator, dtype=torch.float64) * 7
    error = ((uniform - lattices.nearest_points(uniform, basis)) ** 2).sum(1).mean() / dim
    assert float(error) == pytest.approx(second_moment, rel=0.02)


@pytest.mark.parametrize("name, dim", [("Z", 4), ("A2", 2), ("D4", 4)])
def test_nearest_points_are_the_nearest_of_an_enumeration(name, dim):
    basis = lattices.generator(name, dim)
    points = lattices.points_near(torch.zeros(dim, dtype=torch.float64), 20_000 if dim == 4 else 2_000, basis)
    vectors = torch.randn(2_000, dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    brute = ((vectors[:, None] - points[None]) ** 2).sum(-1).min(1).values
    assert torch.allclose(((vectors - lattices.nearest_points(vectors, basis)) ** 2).sum(1), brute)


@pytest.mark.parametrize("name, dim", [("Z", 1), ("A2", 2), ("D4", 4)])
def test_points_near_are_the_nearest_of_a_wide_enumeration(name, dim):
    basis = lattices.generator(name, dim)
    centre = torch.randn(dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 4
    coordinates = torch.arange(-20.0, 21.0, dtype=torch.float64)
    everything = torch.cartesian_prod(*[coordinates] * dim).reshape(-1, dim) @ basis
    count = {1: 30, 2: 300, 4: 3_000}[dim]
    points = lattices.points_near(centre, count, basis)
    assert len(torch.unique(points, dim=0)) == count
    expected = ((everything - centre) ** 2).sum(1).sort().values[:count]
    assert torch.allclose(((points - centre) ** 2).sum(1), expected)  # nearest first, none left out


def test_d4_points_are_integer_vectors_with_an_even_sum_scaled():
    points = lattices.points_near(torch.zeros(4, dtype=torch.float64), 300, lattices.generator("D4", 4)) * 2 ** 0.25
    assert torch.allclose(points, torch.round(points), atol=1e-9)
    assert (torch.round(points).sum(1) % 2 == 0).all()


def test_unknown_lattice_is_refused():
    with pytest.raises(ValueError, match="no lattice 'D4' in dimension 2"):
        lattices.generator("D4", 2)


def test_a_best_lattice_codebook_starts_on_d4_with_the_frequent_points_first():
    basis = lattices.generator("D4", 4)
    vectors = torch.randn(5_000, 4, generator=torch.Generator().manual_seed(2)) * 1.5
    codewords, counts = lattice_codebook(vectors, 512, basis)
    assert len(torch.unique(codewords, dim=0)) == 512
    shifted = codewords - vectors.median(0).values
    assert torch.allclose(lattices.nearest_points(shifted, basis), shifted, atol=1e-5)  # every codeword on D4, shifted
    assert (counts[:-1] >= counts[1:]).all() and counts[0] > counts[-1]


def test_kmeans_plus_plus_spreads_its_codewords_over_the_latents():
    generator = torch.Generator().manual_seed(0)
    clusters = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    vectors = (clusters[:, None] + 0.1 * torch.randn(4, 250, 2, generator=generator)).reshape(-1, 2)
    codewords, counts = kmeans_plus_plus(vectors, 4, generator)
    assert sorted(torch.cdist(codewords, clusters).argmin(1).tolist()) == [0, 1, 2, 3]  # one per cluster
    assert counts.tolist() == [250] * 4


def test_kmeans_plus_plus_in_rounds_covers_the_clusters_and_fills_past_the_distinct_latents():
    generator = torch.Generator().manual_seed(0)
    clusters = 10.0 * torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij"), -1).reshape(-1, 2)
    vectors = (clusters[:, None] + 0.1 * torch.randn(64, 50, 2, generator=generator)).reshape(-1, 2)
    codewords, counts = kmeans_plus_plus(vectors, 64, generator, rounds=8)  # 8 codewords per round
    assert len(set(torch.cdist(codewords, clusters).argmin(1).tolist())) >= 58
    assert int(counts.sum()) == len(vectors)
    few = vectors[:5]
    codewords, counts = kmeans_plus_plus(few, 12, generator, rounds=3)
    assert codewords.shape == (12, 2) and len(torch.unique(codewords, dim=0)) == 5 and int(counts.sum()) == 5

"""Sinkhorn assignment, the Wasserstein matching loss, dead-codeword reactivation, usage statistics."""

from __future__ import annotations

import math

import pytest
import torch

from codec.evaluation.codebooks import lattice_offsets
from codec.models import ModelConfig, VQCodec
from codec.quantizers import ChannelSplitVQ, codebook_usage, index_counts, sinkhorn_assign, sinkhorn_plan
from codec.training.losses import gaussian_wasserstein, wasserstein_loss
from codec.training.codebook_init import reactivate_dead_codewords


def mismatched_case():
    """Vectors around the origin, a codebook of 16 centred 5 away: nearest neighbour uses only its near edge."""
    torch.manual_seed(0)
    vectors = torch.randn(1, 400, 2)
    codebooks = torch.randn(1, 16, 2) + torch.tensor([5.0, 0.0])
    return vectors, codebooks


def test_sinkhorn_plan_is_doubly_normalized():
    vectors, codebooks = mismatched_case()
    # OptVQ's 5 iterations end on the codeword side: exact there, rows within 40% of their share.
    plan = sinkhorn_plan(vectors, codebooks)
    assert torch.allclose(plan.sum(dim=1), torch.full((1, 16), 1 / 16, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(plan.sum(dim=2), torch.full((1, 400), 1 / 400, dtype=torch.float64), rtol=0.4)
    # Iterated on, both marginals converge.
    converged = sinkhorn_plan(vectors, codebooks, iterations=100)
    assert torch.allclose(converged.sum(dim=2), torch.full((1, 400), 1 / 400, dtype=torch.float64), rtol=1e-4)


def test_a_sinkhorn_plan_with_the_entropy_model_s_marginal_gives_each_codeword_its_probability():
    """With codeword masses p the plan sends each codeword p_k of the vectors, not 1/K: it follows the
    use the rate term pays for. Uniform masses are OptVQ's plan."""
    vectors, codebooks = mismatched_case()
    probabilities = torch.softmax(torch.randn(1, 16, generator=torch.Generator().manual_seed(3)) * 2, dim=-1)
    plan = sinkhorn_plan(vectors, codebooks, iterations=100, marginal=probabilities)
    assert torch.allclose(plan.sum(dim=1), probabilities.double(), rtol=1e-9)
    assert torch.allclose(plan.sum(dim=2), torch.full((1, 400), 1 / 400, dtype=torch.float64), rtol=1e-4)
    assert torch.allclose(sinkhorn_plan(vectors, codebooks, marginal=torch.full((1, 16), 1 / 16)), sinkhorn_plan(vectors, codebooks))
    share = torch.bincount(sinkhorn_assign(vectors, codebooks, probabilities)[0], minlength=16) / 400
    assert torch.corrcoef(torch.stack([share, probabilities[0]]))[0, 1] > 0.8


def log_domain_plan(vectors, codebooks, epsilon=10.0, iterations=5):
    """OptVQ's normalizations written directly in the log domain, as the reference."""
    distances = torch.cdist(vectors.double(), codebooks.double())
    standardized = distances / distances.std(dim=(1, 2), keepdim=True)
    log_plan = -epsilon * (standardized - standardized.amin(dim=(1, 2), keepdim=True))
    for _ in range(iterations):
        log_plan = log_plan - torch.logsumexp(log_plan, dim=2, keepdim=True) - math.log(vectors.shape[1])
        log_plan = log_plan - torch.logsumexp(log_plan, dim=1, keepdim=True) - math.log(codebooks.shape[1])
    return log_plan.exp()


def test_sinkhorn_plan_matches_the_log_domain_normalizations():
    torch.manual_seed(1)
    vectors, codebooks = torch.randn(3, 60, 4), torch.randn(3, 200, 4) * 1.5
    expected = log_domain_plan(vectors, codebooks)
    assert torch.allclose(sinkhorn_plan(vectors, codebooks), expected, rtol=1e-4, atol=1e-15)
    assert torch.equal(sinkhorn_assign(vectors, codebooks), expected.argmax(dim=-1))


def test_sinkhorn_keeps_a_codeword_far_beyond_float32_range():
    # 255 codewords among the vectors and one 300 away: its kernel entries are about exp(-200),
    # zero in float32, yet the last normalization still gives it mass 1/K, all on its nearest vector.
    torch.manual_seed(2)
    vectors, codebooks = torch.randn(1, 100, 2), torch.randn(1, 256, 2)
    codebooks[0, -1] = torch.tensor([300.0, 0.0])
    plan = sinkhorn_plan(vectors, codebooks)
    assert torch.isfinite(plan).all()
    assert torch.allclose(plan.sum(dim=1), torch.full((1, 256), 1 / 256, dtype=torch.float64), rtol=1e-9)
    assert torch.allclose(plan, log_domain_plan(vectors, codebooks), rtol=1e-4, atol=1e-15)
    assert (sinkhorn_assign(vectors, codebooks) == 255).sum() == 1


def test_sinkhorn_spreads_assignments_where_nearest_neighbour_collapses():
    vectors, codebooks = mismatched_case()
    quantizer = ChannelSplitVQ(channels=2, dim=2, codebook_size=16)
    with torch.no_grad():
        quantizer.codebooks.copy_(codebooks)
    nearest_share = torch.bincount(quantizer.nearest(vectors)[0], minlength=16) / 400
    sinkhorn_share = torch.bincount(sinkhorn_assign(vectors, codebooks)[0], minlength=16) / 400
    assert nearest_share.max() > 0.9
    assert sinkhorn_share.max() < 0.3 and (sinkhorn_share > 0).sum() >= 10


def test_wasserstein_is_zero_for_identical_gaussians():
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[2.0, 0.6], [0.6, 1.0]])
    assert float(gaussian_wasserstein(mean, cov, mean, cov)) < 1e-3


def test_wasserstein_matches_the_two_dimensional_closed_form():
    # For 2x2 matrices tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), with M = A^1/2 B A^1/2:
    # tr M = tr(AB) and det M = det A det B.
    mean_a, mean_b = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    cross = math.sqrt(float(torch.trace(a @ b)) + 2 * math.sqrt(float(torch.det(a) * torch.det(b))))
    expected = math.sqrt(8.0 + float(torch.trace(a) + torch.trace(b)) - 2 * cross)
    assert float(gaussian_wasserstein(mean_a.double(), a, mean_b.double(), b)) == pytest.approx(expected, rel=1e-6)


def test_wasserstein_loss_pulls_codewords_towards_the_latents():
    vectors, codebooks = mismatched_case()
    codebooks = codebooks.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([codebooks], lr=0.05)
    start = float(wasserstein_loss(vectors, codebooks).detach())
    for _ in range(200):
        optimizer.zero_grad()
        wasserstein_loss(vectors, codebooks).backward()
        optimizer.step()
    assert float(wasserstein_loss(vectors, codebooks).detach()) < 0.1 * start


def test_dead_codewords_move_onto_latents():
    torch.manual_seed(0)
    model = VQCodec(ModelConfig("vq", N=8, M=8, dim=4, codebook_size=8))
    counts = torch.ones(2, 8)
    counts[0, 3] = 0
    counts[1, :2] = 0
    before = model.quantizer.codebooks.detach().clone()
    assert reactivate_dead_codewords(model, counts, torch.rand(1, 3, 32, 32), step=1) == 3
    after = model.quantizer.codebooks.detach()
    changed = (after != before).any(-1)
    assert changed.tolist() == [[False, False, False, True, False, False, False, False], [True, True] + [False] * 6]
    latents = model.quantizer.to_vectors(model.analysis(torch.rand(1, 3, 32, 32)))
    assert latents.shape[1] == 4


def test_usage_statistics():
    indices = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 2]])
    utilization, perplexity = codebook_usage(index_counts(indices, 4))
    assert utilization == [0.5, 0.25]
    assert perplexity == pytest.approx([2.0, 1.0])


def test_lattice_init_puts_the_most_frequent_rounded_latents_first(tmp_path):
    from PIL import Image

    from codec.training.config import TrainConfig
    from codec.data.crops import CropSampler
    from codec.training.codebook_init import init_codebooks_from_latents
    from tests.helpers import random_image

    for index in range(2):
        Image.fromarray(random_image(32, 32, seed=index)).save(tmp_path / f"{index}.png")
    config = TrainConfig(N=8, M=8, dim=4, codebook_size=64, crop=32, batch=2, codebook_init="lattice")
    torch.manual_seed(0)
    model = VQCodec(ModelConfig("vq", N=8, M=8, dim=4, codebook_size=64))
    with torch.no_grad():
        model.g_a[-1].weight.mul_(20)  # spread latents over several integers
    sampler = CropSampler(tmp_path, 32, seed=0)
    init_codebooks_from_latents(model, sampler, config)
    steps = model.quantizer.codebooks - model.quantizer.codebooks[:, :1]  # one shifted integer lattice per group
    assert torch.allclose(steps, torch.round(steps), atol=1e-4)
    probs = torch.softmax(model.entropy.logits, dim=1)
    assert (probs[:, 0] >= probs.max(dim=1).values - 1e-6).all()


def test_lattice_codebook_puts_frequent_points_first_then_the_nearest_free_lattice_points():
    from codec.training.codebook_init import lattice_codebook

    vectors = torch.tensor([[0.1, 0.2]] * 5 + [[1.2, -0.1]] * 3 + [[0.4, 0.9]] * 1)
    codewords, counts = lattice_codebook(vectors, 12)
    median = torch.tensor([0.1, 0.2])  # the lattice is shifted to the latents' median, as a uq codec rounds
    assert torch.allclose(codewords[:3] - median, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert counts.tolist() == [5, 3, 1] + [0] * 9
    assert len(torch.unique(codewords, dim=0)) == 12
    assert torch.allclose(codewords - median, torch.round(codewords - median), atol=1e-6)
    mean = vectors.mean(0)
    distances = (codewords[3:] - mean).norm(dim=1)
    assert (distances <= 2.5).all()


def test_lattice_offsets_measure_how_far_codewords_left_their_shifted_lattice():
    torch.manual_seed(3)
    lattice = torch.randint(-5, 6, (2, 50, 4)).float() + torch.tensor([0.3, -0.45, 0.0, 0.25])
    assert float(lattice_offsets(lattice).max()) < 1e-5
    moved = lattice.clone()
    moved[1, 7, 2] += 0.2
    offsets = lattice_offsets(moved)
    assert offsets[1, 7, 2] == pytest.approx(0.2, abs=0.01)
    assert float(offsets[0].max()) < 1e-5

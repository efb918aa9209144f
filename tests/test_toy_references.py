"""Toy sources' moments, ECVQ on a case with a known answer, Blahut-Arimoto against the Gaussian R(D)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from codec.toy import bounds
from codec.toy.ecvq import initial_quantizer, lagrangian_lloyd, rate_distortion
from codec.data.sources import boomerang, gaussian, laplace


def test_source_moments():
    generator = torch.Generator().manual_seed(0)
    g = gaussian(400_000, generator)
    assert abs(float(g.mean())) < 0.01 and float(g.var()) == pytest.approx(1.0, abs=0.01)
    lap = laplace(200_000, generator)
    assert lap.shape == (200_000, 8)
    assert float(lap.abs().mean()) == pytest.approx(1.0, abs=0.01)  # E|X| = b
    assert float(lap.var()) == pytest.approx(2.0, abs=0.03)  # Var = 2 b^2
    b = boomerang(400_000, generator)
    assert float(b[:, 1].var()) == pytest.approx(1.0, abs=0.01)
    assert float(b[:, 0].mean()) == pytest.approx(0.0, abs=0.01)  # E[z2 + 1 - z1^2] = 0
    assert float(b[:, 0].var()) == pytest.approx(3.0, abs=0.03)  # Var(z2) + Var(z1^2) = 1 + 2


def test_laplace_samples_are_always_finite():
    # With seed 1 the earlier inverse-CDF sampler drew an infinite value among these 20 million.
    assert torch.isfinite(laplace(2_500_000, torch.Generator().manual_seed(1))).all()


def test_ecvq_on_a_uniform_source_finds_the_uniform_quantizer():
    samples = torch.rand(200_000, 1, generator=torch.Generator().manual_seed(1)).double()
    quantizer = lagrangian_lloyd(samples, lmbda=1e-4, start=initial_quantizer(samples, 4), iterations=100)
    centres = sorted(quantizer.codebook[:, 0].tolist())
    assert centres == pytest.approx([0.125, 0.375, 0.625, 0.875], abs=0.005)
    rate, mse = rate_distortion(samples, quantizer, 1e-4)
    assert rate == pytest.approx(2.0, abs=0.01) and mse == pytest.approx(1 / 12 / 16, rel=0.02)


def test_shannon_lower_bound_constants():
    assert bounds.laplace_shannon_lower_bound(1.0) == pytest.approx(0.3956, abs=1e-4)
    assert bounds.boomerang_shannon_lower_bound(2.0**-4) == pytest.approx(-0.5990 + 2.0, abs=1e-4)


def test_blahut_arimoto_matches_the_gaussian_rate_distortion_function():
    grid = np.linspace(-5, 5, 301)[:, None]
    weights = np.exp(-grid[:, 0] ** 2 / 2)
    weights /= weights.sum()
    rates, distortions = bounds.blahut_arimoto(grid, weights, slopes=np.array([4.0, 16.0, 64.0]), iterations=400)
    for rate, mse in zip(rates, distortions):
        assert rate == pytest.approx(bounds.gaussian_rd(mse), abs=0.02)
    assert np.all(np.diff(rates) > 0) and np.all(np.diff(distortions) < 0)


def test_a_toy_curve_trains_evaluates_and_its_bitstream_matches_the_ideal_rate(tmp_path, monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "gaussian", 20_000)
    monkeypatch.setitem(study.CODEBOOK_SIZES, 1, 32)
    curve = study.ToyCurve("ours", 1, start="uq-aun")  # as the study trains it: a fine-tune of uq-aun
    measured = {}
    points, check = study.learned_curve("gaussian", curve, [30.0, 90.0], 150, tmp_path / "runs", (0, 1), measured)
    assert len(measured) == 4
    for point in points:
        assert 0.5 < point["bpd"] < 8 and point["psnr"] > 3.0
        assert point["bpd"] == pytest.approx(np.mean(point["bpd_per_seed"])) and len(set(point["psnr_per_seed"])) == 2
    assert points[1]["bpd"] > points[0]["bpd"]
    assert check["file_bpd"] == pytest.approx(check["ideal_bpd"], rel=0.01)
    path = study.write_curve(tmp_path, "gaussian", curve.name, "test", points, bitstream=check)
    assert path.name == "gaussian_ours-1d.json"
    assert len(study.trained_stacks("gaussian", curve, [30.0, 90.0], 150, tmp_path / "runs", (0, 1))) == 2  # one per seed
    shutil.rmtree(tmp_path / "runs")  # a later session has only the measured points: nothing retrains
    assert not study.trained_stacks("gaussian", curve, [30.0, 90.0], 150, tmp_path / "runs", (0, 1))
    assert study.learned_curve("gaussian", curve, [30.0, 90.0], 150, tmp_path / "runs", (0, 1), measured) == (points, check)
    assert not (tmp_path / "runs").exists()
    assert study.missing_stacks("gaussian", curve, [30.0, 90.0], 151, tmp_path / "runs", (0, 1), measured)  # another recipe




def test_curve_names_follow_the_result_file_convention():
    from codec.toy.study import ToyCurve

    assert ToyCurve("uq-aun").name == "uq-aun"
    assert ToyCurve("vq-ste", 2).name == "vq-ste-2d"
    assert ToyCurve("ours", 4, "sphere").name == "ours-4d-sphere"


def test_vq_ste_follows_the_slope_through_its_entropy_constrained_search(tmp_path, monkeypatch):
    from codec.model_file import load_exported
    from codec.toy import study
    from codec.toy.evaluate import evaluate_toy

    monkeypatch.setitem(study.CODEBOOK_SIZES, 1, 32)
    samples = study.test_set("gaussian", 20_000)
    rates = []
    for slope in (1.0, 60.0):
        exported = load_exported(study.train_point("gaussian", study.ToyCurve("vq-ste", 1), slope, 80, tmp_path))
        assert exported.model.config.rate_weight == pytest.approx(1.0 / slope)
        rates.append(evaluate_toy(exported, samples)["bpd"])
    assert rates[0] < rates[1] - 1.0


def test_encoder_gradient_reports_the_training_gradient_without_changing_the_model(tmp_path, monkeypatch):
    from codec.model_file import load_exported
    from codec.toy import study
    from codec.toy.figures import encoder_gradient

    monkeypatch.setitem(study.CODEBOOK_SIZES, 1, 16)
    exported = load_exported(study.train_point("gaussian", study.ToyCurve("vq-ste", 1), 10.0, 20, tmp_path))
    before = {k: v.clone() for k, v in exported.model.state_dict().items()}
    x = torch.randn(256, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    y, gradient = encoder_gradient(exported, x)
    assert y.shape == gradient.shape == (256,)
    assert gradient.abs().sum() > 0
    assert all(torch.equal(before[k], v) for k, v in exported.model.state_dict().items())


def test_uq_aun_s_sampled_encoder_gradient_follows_the_paper_s_eq_5(tmp_path):
    """Under additive uniform noise the expected encoder gradient of a 1-D codec is l(y + 1/2) - l(y - 1/2)
    (paper 004, Eq. 5): the gradient training sends, averaged in bins of y, must match it."""
    import numpy as np

    from codec.model_file import load_exported
    from codec.toy import study
    from codec.toy.figures import _binned_mean, analytical_encoder_gradient, encoder_gradient

    exported = load_exported(study.train_point("gaussian", study.ToyCurve("uq-aun"), 10.0, 60, tmp_path))
    x = torch.randn(200_000, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    y, sampled = encoder_gradient(exported, x)
    y_analytical, analytical = analytical_encoder_gradient(exported, x)
    assert torch.allclose(y, y_analytical, atol=1e-5)
    edges = np.quantile(y.numpy(), np.linspace(0.02, 0.98, 13))
    (_, sampled), (_, analytical) = _binned_mean(y, sampled, edges), _binned_mean(y, analytical, edges)
    assert np.ptp(analytical) > 0.3  # a gradient that varies along y, not a flat zero
    assert np.abs(sampled - analytical).max() < 0.05 * np.ptp(analytical)


def test_the_assignment_check_compares_both_sinkhorn_plans_with_the_nearest_codeword(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from codec.toy import study

    monkeypatch.setitem(study.CODEBOOK_SIZES, 2, 64)
    model = study.train_point("boomerang", study.ToyCurve("ours", 2), 16.0, 20, tmp_path)
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "scripts" / "toy_assignments.py"), str(model), "--samples", "256"],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    record = json.loads(out)
    assert record["nearest_not_nearest"] == 0.0
    for plan in ("sinkhorn_uniform", "sinkhorn_entropy"):
        assert 0.0 <= record[f"{plan}_not_nearest"] <= 1.0
        assert record[f"{plan}_mse"] >= record["nearest_mse"]
    assert record["sinkhorn_uniform_not_nearest"] > 0  # 64 codewords, 256 vectors: the uniform plan spreads them


def test_psnr_differences_interpolate_the_anchor_at_equal_rate(tmp_path):
    from codec.toy.study import write_curve
    from codec.toy.targets import psnr_differences

    write_curve(tmp_path, "gaussian", "a", "", [{"bpd": 1.0, "psnr": 10.0}, {"bpd": 3.0, "psnr": 20.0}])
    write_curve(tmp_path, "gaussian", "b", "", [{"bpd": 2.0, "psnr": 16.0}, {"bpd": 4.0, "psnr": 30.0}, {"bpd": 0.5, "psnr": 1.0}])
    assert psnr_differences(tmp_path, "gaussian", "b", "a").tolist() == pytest.approx([1.0])


def test_ecvq_curve_on_the_gaussian_stays_above_the_bound(monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "gaussian", 50_000)
    points = study.ecvq_curve("gaussian", slopes=[5.0, 50.0], codebook_size=64, training_samples=50_000)
    for point in points:
        assert point["bpd"] >= bounds.gaussian_rd(10 ** (-point["psnr"] / 10)) - 0.01
    assert points[0]["bpd"] > points[1]["bpd"]


def test_scalar_quantization_of_the_laplace_meets_its_high_rate_gap_and_the_d4_line_lies_0_37_db_above(monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "laplace", 20_000)
    point, = study.ecsq_curve("laplace", slopes=[40.0], codebook_size=256, training_samples=20_000)
    assert 3.0 < point["bpd"] < 4.5
    # at high rate, entropy-coded scalar quantization sits 1.53 dB under the Shannon lower bound
    scalar_psnr = -10 * np.log10(2 ** (2 * (np.log2(2 * np.e) - point["bpd"])) / 12)
    assert point["psnr"] == pytest.approx(scalar_psnr, abs=0.1)
    mse = 10 ** (-point["psnr"] / 10)
    assert bounds.laplace_high_rate_lattice(mse, "Z") == pytest.approx(point["bpd"], abs=0.03)
    assert bounds.high_rate_gap_db("Z") - bounds.high_rate_gap_db("D4") == pytest.approx(0.37, abs=0.005)


def test_scalar_quantization_of_the_boomerang_quantizes_each_coordinate_alone(monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "boomerang", 20_000)
    scalar, = study.ecsq_curve("boomerang", slopes=[16.0], codebook_size=128, training_samples=20_000)
    joint, = study.ecvq_curve("boomerang", slopes=[16.0], codebook_size=512, training_samples=20_000)
    # the coordinates are dependent: a joint quantizer needs fewer bits for the same distortion
    mse = lambda point: 10 ** (-point["psnr"] / 10)
    assert scalar["bpd"] + 16.0 * mse(scalar) > joint["bpd"] + 16.0 * mse(joint)


def test_a_point_with_more_bits_and_fewer_db_than_a_cheaper_one_is_reported(tmp_path):
    from codec.toy.study import write_curve
    from codec.toy.targets import dominated_points, monotone_table

    points = [{"bpd": 1.0, "psnr": 10.0}, {"bpd": 2.0, "psnr": 14.0}, {"bpd": 3.0, "psnr": 12.0}, {"bpd": 4.0, "psnr": 15.0}]
    write_curve(tmp_path, "laplace", "ours-4d", "", points, seeds=[0])
    write_curve(tmp_path, "laplace", "ecvq", "", points[:2])
    assert dominated_points(tmp_path, "laplace", "ours-4d") == [(3.0, 12.0)]
    table = monotone_table(tmp_path)
    assert "| laplace_ours-4d | 4 | 1 | (3.000, 12.00) |" in table and "ecvq" not in table


def test_a_target_counts_only_curves_trained_for_the_study_s_steps_and_inside_its_rates(tmp_path):
    from codec.toy.study import write_curve
    from codec.toy.targets import psnr_differences, target_table

    anchor = [{"bpd": 0.0, "psnr": 0.0}, {"bpd": 5.0, "psnr": 25.0}]
    write_curve(tmp_path, "laplace", "uq-aun", "", anchor, seeds=[0], steps=20_000)
    test = [{"bpd": 1.0, "psnr": 4.0}, {"bpd": 3.0, "psnr": 15.5}, {"bpd": 4.0, "psnr": 20.3}]
    write_curve(tmp_path, "laplace", "ours-4d", "", test, seeds=[0], steps=20_000)
    # the point at 1 bpd (1 dB under) lies outside the target's rates (>= 2 bpd) and does not count
    assert psnr_differences(tmp_path, "laplace", "ours-4d", "uq-aun", (2.0, np.inf)).tolist() == pytest.approx([0.5, 0.3])
    assert "| laplace | ours-4d | uq-aun | min dB | +0.300 | 2 | >= +0.2 dB over uq-aun at every rate >= 2 bpd | yes |" in target_table(tmp_path, 20_000)
    write_curve(tmp_path, "laplace", "ours-4d", "", test, seeds=[0], steps=1_500)
    assert "| laplace | ours-4d | uq-aun | min dB | not run at 20000 steps (only 1500 steps) | 0 |" in target_table(tmp_path, 20_000)


def test_targets_md_is_generated_again_and_keeps_its_hand_written_findings(tmp_path):
    from codec.toy.study import write_curve
    from codec.toy.targets import FINDINGS, write_targets

    write_curve(tmp_path, "laplace", "uq-aun", "", [{"bpd": 0.0, "psnr": 0.0}, {"bpd": 5.0, "psnr": 25.0}], seeds=[0], steps=20_000)
    path = write_targets(tmp_path, 20_000)
    assert "| laplace | ours-4d | uq-aun | min dB | not run |" in path.read_text() and FINDINGS not in path.read_text()
    path.write_text(path.read_text() + f"\n{FINDINGS}\n\nThe 4-D curve is capped by its codebook's support.\n")
    write_curve(tmp_path, "laplace", "ours-4d", "", [{"bpd": 2.0, "psnr": 10.5}, {"bpd": 3.0, "psnr": 15.3}], seeds=[0], steps=20_000)
    text = write_targets(tmp_path, 20_000).read_text()
    assert "| laplace | ours-4d | uq-aun | min dB | +0.300 | 2 |" in text
    assert text.endswith(f"{FINDINGS}\n\nThe 4-D curve is capped by its codebook's support.\n") and text.count(FINDINGS) == 1


def test_a_lattice_start_for_ecvq_takes_the_high_rate_cell_and_lloyd_only_improves_it():
    from codec.data.sources import SOURCES
    from codec.toy.ecvq import lattice_quantizer

    samples = SOURCES["laplace"](25_000, torch.Generator().manual_seed(0)).double().reshape(-1, 4)
    lmbda = 1 / 8.0  # about 2.3 bpd: 4096 codewords cover the source (at 2.9 bpd they clip its tails)
    start = lattice_quantizer(samples, 4096, "D4", lmbda)
    rate, mse = rate_distortion(samples, start, lmbda)
    # high-rate theory: MSE per dimension lmbda / (2 ln 2) on any lattice
    assert mse == pytest.approx(lmbda / (2 * np.log(2)), rel=0.1)
    refined = lagrangian_lloyd(samples, lmbda, start, iterations=5)
    refined_rate, refined_mse = rate_distortion(samples, refined, lmbda)
    assert refined_mse + lmbda * refined_rate <= mse + lmbda * rate + 1e-9


def test_a_lattice_codebook_too_small_for_the_laplace_s_tails_loses_quality_that_more_codewords_keep(monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "laplace", 20_000)
    monkeypatch.setitem(study.ECVQ_TRAINING, "laplace", 50_000)
    (small,), (large,) = (study.lattice_curve("laplace", [9.0], "D4", size) for size in (1024, 16384))
    # about 2.4 bpd asks for some 7,000 cells: 1,024 codewords clip the tails, 16,384 cover them
    assert large["psnr"] > small["psnr"] + 0.5
    assert abs(large["bpd"] - small["bpd"]) < 0.25

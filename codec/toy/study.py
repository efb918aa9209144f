"""RD curves on toy sources: learned methods, ECVQ in the source space, and the R(D) references.

A learned curve trains one model per slope s, where the loss per dimension is
bpd + s * MSE (so TrainConfig's lmbda = s * D / 255^2). Curves are written in CompressAI's layout:
{"name", "description", "results": {"bpd": [...], "psnr": [...]}} with psnr = -10 log10(MSE/dim).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from codec.checkpoint import load_exported
from codec.toy import bounds
from codec.toy.data import test_set
from codec.toy.ecvq import initial_quantizer, lagrangian_lloyd, rate_distortion
from codec.toy.evaluate import evaluate_toy
from codec.toy.sources import DIMENSIONS, SOURCES
from codec.training.config import TrainConfig
from codec.training.loop import train

CODEBOOK_SIZES = {1: 256, 2: 4096, 4: 32768}
TEST_SAMPLES = {"gaussian": 1_000_000, "boomerang": 1_000_000, "laplace": 100_000}


def curve_name(method: str, dim: int) -> str:
    return method if method.startswith("uq") else f"{method}-{dim}d"


def write_curve(folder: Path, source: str, name: str, description: str, points: list[dict]) -> Path:
    points = sorted(points, key=lambda p: p["bpd"])
    results = {key: [p[key] for p in points] for key in points[0]}
    path = Path(folder) / f"{source}_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "description": description, "results": results}, indent=2) + "\n")
    return path


def learned_curve(source: str, method: str, dim: int, slopes: list[float], steps: int, runs: Path, **options) -> list[dict]:
    """Train and evaluate one model per slope; the first point is also coded into a real bitstream."""
    samples = test_set(source, TEST_SAMPLES[source])
    points = []
    for index, slope in enumerate(slopes):
        config = TrainConfig(
            method=method, source=source, out=str(runs / f"{source}_{curve_name(method, dim)}_{slope:g}"),
            N=64, M=DIMENSIONS[source], dim=dim, codebook_size=CODEBOOK_SIZES[dim], batch=1024, steps=steps,
            lr=1e-3, lmbda=slope * DIMENSIONS[source] / 255.0**2, checkpoint_seconds=60, log_every=100, **options,
        )
        exported = load_exported(train(config).exported)
        point = evaluate_toy(exported, samples, bitstream=index == 0)
        points.append({"slope": slope, **point})
    return points


def ecvq_curve(source: str, slopes: list[float], codebook_size: int = 4096, training_samples: int = 200_000) -> list[dict]:
    """ECVQ in the source space, warm-started from one slope to the next (high rate to low)."""
    generator = torch.Generator().manual_seed(1)
    training = SOURCES[source](training_samples, generator).double()
    samples = test_set(source, TEST_SAMPLES[source]).flatten(1).double()
    dim = training.shape[1]
    quantizer = initial_quantizer(training, codebook_size)
    points = []
    for slope in sorted(slopes, reverse=True):
        lmbda = dim / slope  # argmin |x-c|^2 + lmbda (-log2 p): per-dim MSE + bits/dim / slope
        quantizer = lagrangian_lloyd(training, lmbda, quantizer)
        rate, mse = rate_distortion(samples, quantizer, lmbda)
        points.append({"slope": slope, "bpd": rate, "psnr": -10 * math.log10(mse)})
    return points


def bound_curves(source: str, psnr_range: tuple[float, float] = (1.0, 26.0)) -> dict[str, list[dict]]:
    """The R(D) references of a source as curves: name -> points."""
    psnrs = np.linspace(*psnr_range, 60)
    mses = 10 ** (-psnrs / 10)
    references = {
        "gaussian": {"rd-bound": bounds.gaussian_rd},
        "laplace": {"rd-slb": bounds.laplace_shannon_lower_bound, "rd-gaussian-upper": bounds.laplace_gaussian_upper_bound},
        "boomerang": {"rd-slb": bounds.boomerang_shannon_lower_bound},
    }[source]
    return {
        name: [{"bpd": function(float(m)), "psnr": float(p)} for m, p in zip(mses, psnrs) if function(float(m)) > 0]
        for name, function in references.items()
    }

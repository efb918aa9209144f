"""Training cost per step of every method, relative to uq-aun at the same size.

Usage: python scripts/bench_training_cost.py [--data ../shared/train] [--steps 10]
Writes results/training/cost.json ({method: seconds_per_step / uq-aun's}) and
results/training/cost.seconds.json (the absolute medians and the setup).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from codec.models import VQCodec, build_model
from codec.training.config import TrainConfig
from codec.training.data import CropSampler
from codec.training.codebook_init import init_codebooks_from_latents
from codec.training.loop import model_config
from codec.training.methods import STEPS, make_optimizers

SIZE = dict(N=64, M=64, dim=4, codebook_size=4096, crop=128, batch=8)
VARIANTS = {
    "uq-aun": dict(method="uq-aun"),
    "uq-ste": dict(method="uq-ste"),
    "vq-ste": dict(method="vq-ste"),
    "vq-ste-sinkhorn": dict(method="vq-ste", sinkhorn=True),
    "ours": dict(method="ours"),
    "ours-sphere": dict(method="ours", rate_gradient="sphere"),
    "ours-sinkhorn": dict(method="ours", sinkhorn=True),
    "ours-wasserstein": dict(method="ours", wasserstein=True),
    "soft-to-hard": dict(method="soft-to-hard"),
    "gumbel": dict(method="gumbel"),
    "no-alternation": dict(method="no-alternation"),
}


def seconds_per_step(config: TrainConfig, sampler: CropSampler, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(model_config(config))
    if isinstance(model, VQCodec):
        init_codebooks_from_latents(model, sampler, config)
    optimizers = make_optimizers(model, config)
    timings = []
    for step in range(steps + 3):
        batch = sampler.batch(step, config.batch)
        started = time.perf_counter()
        STEPS[config.method](model, batch, optimizers, config)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/train")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    sampler = CropSampler(args.data, SIZE["crop"], seed=0)
    seconds = {}
    for name, options in VARIANTS.items():
        seconds[name] = seconds_per_step(TrainConfig(data=args.data, **SIZE, **options), sampler, args.steps)
        print(f"{name:18s} {seconds[name]:.3f} s/step  {seconds[name] / seconds['uq-aun']:.2f}x uq-aun", flush=True)
    out = Path("results/training")
    out.mkdir(parents=True, exist_ok=True)
    ratios = {name: round(value / seconds["uq-aun"], 3) for name, value in seconds.items()}
    (out / "cost.json").write_text(json.dumps(ratios, indent=2) + "\n")
    setup = {
        "size": SIZE,
        "steps_timed": args.steps,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "seconds_per_step": {name: round(value, 4) for name, value in seconds.items()},
    }
    (out / "cost.seconds.json").write_text(json.dumps(setup, indent=2) + "\n")


if __name__ == "__main__":
    main()

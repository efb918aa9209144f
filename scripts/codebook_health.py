"""Codebook utilization and perplexity on Kodak for vq-ste and ours, with and without Sinkhorn.

Every run fine-tunes from the same uq-aun pretrain (codebooks start at its latents) at one lambda,
with the same number of steps; runs resume when the script is re-run.

Usage: python scripts/codebook_health.py --init runs/default/uq-aun/checkpoint.pt [--steps 600]
Writes results/training/codebook.json ({run: {utilization, perplexity, quantization_mse}}).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codec.model_file import load_exported
from codec.evaluation.codebooks import codebook_statistics
from codec.training.config import TrainConfig
from codec.training.loop import train

RUNS = {
    "vq-ste-4d": dict(method="vq-ste", rate_weight=0.05),
    "vq-ste-4d-sinkhorn": dict(method="vq-ste", rate_weight=0.05, sinkhorn=True),
    "ours-4d": dict(method="ours"),
    "ours-4d-sinkhorn": dict(method="ours", sinkhorn=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="training checkpoint of the uq-aun pretrain")
    parser.add_argument("--data", default="../shared/train")
    parser.add_argument("--kodak", default="../shared/kodak")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lmbda", type=float, default=0.013)
    parser.add_argument("--out", default="runs/codebook-health")
    args = parser.parse_args()
    results = {}
    for name, options in RUNS.items():
        config = TrainConfig(
            data=args.data, out=f"{args.out}/{name}", init_from=args.init, steps=args.steps, lmbda=args.lmbda,
            N=64, M=64, dim=4, codebook_size=4096, crop=128, batch=8, lr=1e-4, codebook_init="lattice", **options,
        )
        exported = load_exported(train(config).exported)
        results[name] = codebook_statistics(exported, Path(args.kodak))
        results[name]["steps"] = args.steps
        print(name, results[name], flush=True)
    target = Path("results/training/codebook.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

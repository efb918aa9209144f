"""Train and evaluate Kodak RD curves under the shared recipe (codec/evaluation/recipe.py).

For each curve and lambda: fine-tune from the uq-aun pretrain (resumable, finished runs are
reused), then compress and decompress every Kodak image for real and write
results/kodak/<curve>.json (CompressAI layout) with <curve>.per-image.json beside it.

    python scripts/kodak_sweep.py --curves uq-aun
    python scripts/kodak_sweep.py --curves vq-ste-4d ours-4d --images ../shared/kodak
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from codec.checkpoint import load_exported
from codec.evaluation.recipe import CURVES, Recipe
from codec.evaluation.rd import evaluate_folder, summary, write_results
from codec.training.loop import exported_model


def run_curve(curve: str, recipe: Recipe, images: Path, runs: Path, out: Path) -> None:
    results = {}
    for index, lmbda in enumerate(recipe.lambdas):
        model = exported_model(recipe.config(curve, lmbda, runs / f"{curve}-q{index + 1}"))
        results[f"{curve}-q{index + 1}"] = evaluate_folder(load_exported(model), images, label=f"{curve} lambda={lmbda}")
        point = summary(results[f"{curve}-q{index + 1}"])
        print(f"{curve} lambda={lmbda}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB", flush=True)
    description = f"{CURVES[curve].description}; {recipe.base.steps} fine-tuning steps from {recipe.base.init_from}, lambdas {list(recipe.lambdas)}"
    write_results(out / f"{curve}.json", curve, description, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", nargs="+", required=True, choices=list(CURVES))
    parser.add_argument("--images", type=Path, default=Path("../shared/kodak"))
    parser.add_argument("--runs", type=Path, default=Path("runs/kodak"))
    parser.add_argument("--out", type=Path, default=Path("results/kodak"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for curve in args.curves:
        run_curve(curve, Recipe(), args.images, args.runs, args.out)


if __name__ == "__main__":
    main()

"""Train and evaluate Kodak RD curves under the shared recipe (codec/training/recipe.py).

For each lambda: the uq-aun base (stage 1), then each curve's fine-tune from it (stage 2); runs
resume and finished ones are reused. Then every Kodak image is compressed and decompressed for
real with each model, and results/kodak/<curve>.json (CompressAI layout) is written with
<curve>.per-image.json beside it.

    python scripts/kodak_sweep.py --curves uq-aun
    python scripts/kodak_sweep.py --curves vq-ste-4d ours-4d --images ../shared/kodak
    python scripts/kodak_sweep.py --curves uq-aun --points 0 2 --train-only   # split over processes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from codec.model_file import load_exported
from codec.training.recipe import CURVES, Recipe
from codec.evaluation.rd import evaluate_model, summary, write_results
from codec.training.loop import exported_model


def trained_point(curve: str, index: int, recipe: Recipe) -> Path:
    """The exported model of one rate point, training its base and itself where missing."""
    exported_model(recipe.base_config(index))
    return exported_model(recipe.config(curve, index))


def run_curve(curve: str, recipe: Recipe, images: Path, out: Path) -> None:
    results, codebooks = {}, {}
    for index, lmbda in enumerate(recipe.lambdas):
        name = recipe.point_name(curve, index)
        model = load_exported(trained_point(curve, index, recipe))
        results[name], statistics = evaluate_model(model, images, label=f"{curve} lambda={lmbda}")
        if statistics:
            codebooks[name] = statistics
        point = summary(results[name])
        print(f"{curve} lambda={lmbda}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB", flush=True)
    write_results(out / f"{curve}.json", curve, recipe.describe(curve), results, codebooks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", nargs="+", required=True, choices=list(CURVES))
    parser.add_argument("--images", type=Path, default=Path("../shared/kodak"))
    parser.add_argument("--runs", type=Path, default=Path("runs/kodak"))
    parser.add_argument("--out", type=Path, default=Path("results/kodak"))
    parser.add_argument("--points", type=int, nargs="+", help="only these rate points (0 = lowest lambda, q0)")
    parser.add_argument("--train-only", action="store_true", help="train the points, evaluate nothing")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    if args.points and not args.train_only:
        parser.error("--points only applies with --train-only (a curve is evaluated at all its points)")
    torch.set_num_threads(args.threads)
    recipe = Recipe(runs=args.runs)
    if args.train_only:
        for curve in args.curves:
            for point in args.points or range(len(recipe.lambdas)):
                trained_point(curve, point, recipe)
        return
    for curve in args.curves:
        run_curve(curve, recipe, args.images, args.out)


if __name__ == "__main__":
    main()

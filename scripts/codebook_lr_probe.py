"""Do the Kodak sweep's codebooks leave the integer lattice, and does a faster codebook help?

Retrains one rate point of a curve under results/kodak/RECIPE.md with the codewords' learning rate
scaled (`TrainConfig.codebook_lr_scale`), evaluates it on Kodak for real, and writes
results/kodak/codebook-lr-probe.json: bpp, PSNR-RGB and how far the codewords moved off the lattice
(`lattice_offsets`: median, 99th percentile, max), for the sweep's own model (scale 1) and each scale.

    python scripts/codebook_lr_probe.py --curve ours-4d --point 2 --scales 30 300
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from codec.model_file import load_exported
from codec.evaluation.codebooks import lattice_offsets
from codec.evaluation.rd import evaluate_folder, summary
from codec.training.recipe import CURVES, Recipe
from codec.training.loop import exported_model


def measure(model_path: Path, images: Path, label: str) -> dict:
    exported = load_exported(model_path)
    point = summary(evaluate_folder(exported, images, label))
    offsets = lattice_offsets(exported.model.quantizer.codebooks).flatten()
    return {
        "bpp": point["bpp"], "psnr-rgb": point["psnr-rgb"],
        "lattice_offset": {"median": float(offsets.median()), "p99": float(offsets.quantile(0.99)), "max": float(offsets.max())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curve", default="ours-4d", choices=[name for name in CURVES if name != "uq-aun"])
    parser.add_argument("--point", type=int, default=2, help="rate point (0 = lowest lambda)")
    parser.add_argument("--scales", type=float, nargs="+", default=[30.0, 300.0])
    parser.add_argument("--images", type=Path, default=Path("../shared/kodak"))
    parser.add_argument("--out", type=Path, default=Path("results/kodak/codebook-lr-probe.json"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = Recipe()
    sweep = recipe.config(args.curve, args.point)
    name = recipe.point_name(args.curve, args.point)
    results = {"curve": args.curve, "point": name, "lambda": sweep.lmbda, "recipe": recipe.describe(args.curve), "scales": {}}
    results["scales"]["1"] = measure(exported_model(sweep), args.images, f"{name} (sweep)")
    for scale in args.scales:
        config = replace(sweep, codebook_lr_scale=scale, out=str(Path("runs/kodak-probe") / f"{name}-codebook-lr-{scale:g}"))
        results["scales"][f"{scale:g}"] = measure(exported_model(config), args.images, f"{name} codebook lr x{scale:g}")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for scale, point in results["scales"].items():
        print(f"x{scale}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB, lattice offset p99 {point['lattice_offset']['p99']:.4f}")


if __name__ == "__main__":
    main()

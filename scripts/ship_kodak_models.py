"""Ship the Kodak sweep's models as named models and choose the default for `vqcodec compress`.

Copies each rate point's exported model (runs/kodak/<curve>-q<i>/model.pt, made by
`python scripts/kodak_sweep.py --curves <curve>`) into codec/weights/ as `<curve>-q<i>`, registers
it, and writes codec/weights/KODAK.md: how each was trained (from the record inside the file) and
what it measured on Kodak (from results/kodak/<curve>.json).

    python scripts/ship_kodak_models.py --curves uq-aun ours-4d --default ours-4d-q2
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from codec import zoo
from codec.model_file import load_exported
from codec.training.recipe import CURVES, Recipe
from codec.training.loop import EXPORTED

TABLE = zoo.WEIGHTS / "KODAK.md"


def ship_point(recipe: Recipe, curve: str, index: int, make_default: bool, kodak: dict[str, tuple[float, float]]) -> dict:
    """Copy and register one rate point; returns its row for KODAK.md."""
    name = recipe.point_name(curve, index)
    target = zoo.WEIGHTS / f"{name}.pt"
    shutil.copyfile(recipe.runs / name / EXPORTED, target)
    exported = load_exported(target)
    training = exported.record["training"]
    facts = {
        "method": training["method"],
        "dim": training["dim"] if exported.model.config.quantizer == "vq" else None,
        "kodak_bpp": round(kodak[name][0], 4),
        "kodak_psnr": round(kodak[name][1], 2),
    }
    zoo.register(name, target.name, exported.model_id, facts, make_default=make_default)
    return {
        "name": name, "curve": curve, "lambda": training["lmbda"], "steps": training["steps"],
        "seconds": exported.record["wall_seconds"], "machine": exported.record["machine"],
        "megabytes": target.stat().st_size / 1e6,
    }


def measured(results: Path, curve: str) -> dict[str, tuple[float, float]]:
    """Kodak bpp and PSNR-RGB per model name, as results/kodak/<curve>.json lists them."""
    content = json.loads((results / f"{curve}.json").read_text())
    points = zip(content["results"]["bpp"], content["results"]["psnr-rgb"])
    return dict(zip(content["models"], points))


def write_table(rows: list[dict], results: Path, recipe: Recipe, default: str) -> None:
    kodak = {name: point for curve in {row["curve"] for row in rows} for name, point in measured(results, curve).items()}
    lines = [
        "# Shipped Kodak-sweep models",
        "",
        "Written by `python scripts/ship_kodak_models.py`. Each model is one rate point of a curve of the",
        "Kodak comparison, trained by `python scripts/kodak_sweep.py --curves <curve>` under",
        "`results/kodak/RECIPE.md`: a uq-aun pretrain (7000 steps, lambda 0.013), a uq-aun base per lambda",
        f"({recipe.base.steps} steps), then this model's own fine-tune, whose steps and wall time are below.",
        "All on `../shared/train` (128x128 crops, batch 8), N = M = 64, fp16 weights.",
        f"The default for `vqcodec compress` is `{default}`.",
        "",
        "| model | lambda | fine-tune steps | fine-tune wall s | machine | MB | Kodak bpp | Kodak PSNR-RGB (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        bpp, quality = kodak[row["name"]]
        lines.append(
            f"| `{row['name']}` | {row['lambda']:g} | {row['steps']} | {row['seconds']:.0f} | {row['machine']} "
            f"| {row['megabytes']:.1f} | {bpp:.4f} | {quality:.2f} |"
        )
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", nargs="+", required=True, choices=list(CURVES))
    parser.add_argument("--default", required=True, help="the model name that becomes the default, e.g. ours-4d-q2")
    parser.add_argument("--runs", type=Path, default=Path("runs/kodak"))
    parser.add_argument("--results", type=Path, default=Path("results/kodak"))
    args = parser.parse_args()
    recipe = Recipe(runs=args.runs)
    names = [recipe.point_name(curve, index) for curve in args.curves for index in range(len(recipe.lambdas))]
    if args.default not in names:
        parser.error(f"--default must be one of the shipped points: {', '.join(names)}")
    kodak = {name: point for curve in args.curves for name, point in measured(args.results, curve).items()}
    rows = [
        ship_point(recipe, curve, index, recipe.point_name(curve, index) == args.default, kodak)
        for curve in args.curves
        for index in range(len(recipe.lambdas))
    ]
    write_table(rows, args.results, recipe, args.default)
    print(f"shipped {', '.join(names)}; default {args.default}; wrote {TABLE}")


if __name__ == "__main__":
    main()

"""bf16 against fp32 training: the four models of scripts/plans/bf16-parity.toml on held-out Kodak crops.

Usage: python scripts/bf16_parity.py [--cores 2] [--kodak ../shared/kodak]

Runs (or resumes) the plan, then codes 96 held-out 256x256 crops (the four corners of the 24 Kodak
images, which no training run sees) with real files and writes results/training/bf16-parity.json:
per model bpp and PSNR, and per pair (uq-aun, ours-4d) the bf16 - fp32 differences in dB and in % bpp.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from codec.model_file import load_exported
from codec.evaluation.rd import evaluate_folder, summary
from codec.images import image_paths
from codec.training.campaign import exported_job, load_plan, run_campaign

PLAN = Path("scripts/plans/bf16-parity.toml")
CROP = 256


def held_out_crops(kodak: Path, target: Path) -> None:
    """The four 256x256 corners of every Kodak image, as PNG files."""
    for path in image_paths(kodak):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        h, w = pixels.shape[:2]
        for name, (top, left) in {"tl": (0, 0), "tr": (0, w - CROP), "bl": (h - CROP, 0), "br": (h - CROP, w - CROP)}.items():
            Image.fromarray(pixels[top : top + CROP, left : left + CROP]).save(target / f"{path.stem}-{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--kodak", type=Path, default=Path("../shared/kodak"))
    parser.add_argument("--out", type=Path, default=Path("results/training/bf16-parity.json"))
    args = parser.parse_args()
    plan = load_plan(PLAN)
    if run_campaign(plan, args.cores) != 0:
        raise SystemExit("the parity campaign stopped before it was done; run this again to resume it")
    points = {}
    with tempfile.TemporaryDirectory() as folder:
        held_out_crops(args.kodak, Path(folder))
        for job in plan.jobs:
            points[job] = summary(evaluate_folder(load_exported(exported_job(plan, job)), Path(folder), job))
    comparison = {}
    for method in ("uq-aun", "ours-4d"):
        fp32, bf16 = points[f"{method}-fp32"], points[f"{method}-bf16"]
        comparison[method] = {
            "psnr_bf16_minus_fp32_db": round(bf16["psnr-rgb"] - fp32["psnr-rgb"], 4),
            "bpp_bf16_over_fp32_percent": round(100 * (bf16["bpp"] / fp32["bpp"] - 1), 3),
            "within_0.1_db_and_2_percent": abs(bf16["psnr-rgb"] - fp32["psnr-rgb"]) <= 0.1 and abs(bf16["bpp"] / fp32["bpp"] - 1) <= 0.02,
        }
    result = {
        "held_out": f"{4 * len(image_paths(args.kodak))} crops {CROP}x{CROP}: the four corners of each Kodak image",
        "plan": str(PLAN),
        "points": {job: {"bpp": p["bpp"], "psnr-rgb": p["psnr-rgb"]} for job, p in points.items()},
        "comparison": comparison,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(comparison, indent=2))


if __name__ == "__main__":
    main()

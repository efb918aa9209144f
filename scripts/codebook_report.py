"""How far the VQ jobs of a campaign moved their codebooks: off the integer lattice, and from their start.

For every VQ job with a milestone, per codeword (a d-vector): its distance from its group's shifted
integer lattice (`lattice_offsets`, the issue's test that a codebook left the cubic cells of uniform
quantization) and the distance it moved from the codebook the job started with (rebuilt as the job
built it: `init_from`'s transforms, codewords from their latents). Each as median, 99th percentile
and the share of codewords over 0.1, over all codewords and over those the held-out crops select.
Codebooks started on a denser lattice than Z^d (D4) sit off the integer lattice from the start, so
the movement is the measure of what training did.

    python scripts/codebook_report.py scripts/plans/kodak-192-probe.toml --out results/kodak/probe-192/codebooks.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from codec.evaluation.codebooks import lattice_offsets
from codec.models import build_model
from codec.training.campaign import load_plan
from codec.training.config import TrainConfig
from codec.training.heldout import BATCH, HeldOutCrops
from codec.training.loop import make_sampler, model_config, model_from_checkpoint, start_model

FAR = 0.1
"""Distance (in latent units, a quantization step of uq) beyond which a codeword counts as moved."""


def spread(distances: torch.Tensor) -> dict:
    return {
        "median": round(float(distances.median()), 4),
        "p99": round(float(distances.quantile(0.99)), 4),
        f"share_over_{FAR}": round(float((distances > FAR).double().mean()), 4),
    }


@torch.no_grad()
def report(config: TrainConfig, milestone: Path, crops: HeldOutCrops) -> dict:
    start = build_model(model_config(config))
    start_model(start, make_sampler(config), config)
    saved = torch.load(milestone, map_location="cpu", weights_only=True)
    trained = model_from_checkpoint(config, saved).eval()
    codebooks = trained.quantizer.codebooks
    off_lattice = lattice_offsets(codebooks).norm(dim=-1)
    moved = (codebooks - start.quantizer.codebooks).norm(dim=-1)
    used = torch.zeros_like(moved, dtype=torch.bool)
    for batch in crops.crops.split(BATCH):
        indices = trained.to_symbols(trained.analysis(batch))
        used.scatter_(1, indices, True)
    return {
        "step": int(saved["step"]),
        "codewords": list(codebooks.shape[:2]),
        "used_on_heldout": round(float(used.double().mean()), 4),
        "off_integer_lattice": {"all": spread(off_lattice.flatten()), "used": spread(off_lattice[used])},
        "moved_from_start": {"all": spread(moved.flatten()), "used": spread(moved[used])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(args.plan)
    result = {"held_out": None, "jobs": {}}
    crops_of: dict[str, HeldOutCrops] = {}  # jobs share their held-out folder: read it once
    for job, spec in plan.jobs.items():
        config = TrainConfig(**spec.fields)
        if config.quantizer != "vq" or not plan.milestone(job).exists():
            continue
        if config.heldout not in crops_of:
            crops_of[config.heldout] = HeldOutCrops(config.heldout)
        crops = crops_of[config.heldout]
        result["held_out"] = crops.description
        result["jobs"][job] = report(config, plan.milestone(job), crops)
        print(job, json.dumps(result["jobs"][job]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

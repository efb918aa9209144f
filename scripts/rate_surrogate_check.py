"""How the encoder's mixture rate surrogate prices codewords against their actual rate, on held-out crops.

'ours' with `rate_gradient = "mixture"` gives the encoder the rate -log2 sum_k p_k exp(-|v - c_k|^2 /
2 s^2) over each vector's nearest codewords (codec/training/losses.py), with s^2 the group's mean
squared distance to the nearest codeword. For a VQ job's milestone this evaluates that surrogate at
the held-out crops' latent vectors and sets it beside the actual rate -log2 p of the codeword each
vector takes, per band of actual bits. Where the surrogate spans fewer bits than the actual rate, the
encoder sees moving a latent to a rarer codeword as cheaper than it is.

    python scripts/rate_surrogate_check.py scripts/plans/kodak-192-probe.toml ours-4d-k4096-cb1 \\
        --out results/kodak/probe-192/rate-surrogate.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from codec.training.campaign import load_plan
from codec.training.config import TrainConfig
from codec.training.heldout import BATCH, HeldOutCrops
from codec.training.losses import MIXTURE_NEIGHBOURS
from codec.training.loop import model_from_checkpoint
from codec.training.methods import mean_squared_radius

BANDS = ((0, 2), (2, 5), (5, 8), (8, 12), (12, 64))
"""Bands of actual bits per vector."""


@torch.no_grad()
def surrogate_and_actual_bits(model, crops: HeldOutCrops) -> tuple[torch.Tensor, torch.Tensor]:
    """Per latent vector of the crops (flattened over groups and positions): (mixture bits, actual bits)."""
    quantizer = model.quantizer
    log2_p = model.entropy.log2_probs()
    groups = torch.arange(quantizer.groups)[:, None, None]
    surrogate, actual = [], []
    for batch in crops.crops.split(BATCH):
        vectors = quantizer.to_vectors(model.analysis(batch))
        indices = quantizer.nearest(vectors)
        scale_sq = mean_squared_radius(vectors, quantizer.lookup(indices))
        neighbours = quantizer.k_nearest(vectors, MIXTURE_NEIGHBOURS)
        squared = ((vectors.unsqueeze(2) - quantizer.codebooks[groups, neighbours]) ** 2).sum(-1)
        log_mixture = torch.logsumexp(log2_p[groups, neighbours] * math.log(2.0) - squared / (2 * scale_sq), dim=-1)
        surrogate.append((-log_mixture / math.log(2.0)).flatten())
        actual.append((-log2_p.gather(1, indices)).flatten())
    return torch.cat(surrogate), torch.cat(actual)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("job", help="a VQ job of the plan with a milestone")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(args.plan)
    if args.job not in plan.jobs or not plan.milestone(args.job).exists():
        raise SystemExit(f"{args.plan} has no job {args.job!r} with a milestone")
    config = TrainConfig(**plan.jobs[args.job].fields)
    if config.quantizer != "vq" or not config.heldout:
        raise SystemExit(f"job {args.job} is not a VQ job with a held-out folder")
    saved = torch.load(plan.milestone(args.job), map_location="cpu", weights_only=True)
    model = model_from_checkpoint(config, saved).eval()
    crops = HeldOutCrops(config.heldout)
    surrogate, actual = surrogate_and_actual_bits(model, crops)
    bands = []
    for low, high in BANDS:
        chosen = (actual >= low) & (actual < high)
        if chosen.any():
            bands.append({"actual_bits": [low, high], "vectors": int(chosen.sum()),
                          "mean_actual_bits": round(float(actual[chosen].mean()), 3),
                          "mean_surrogate_bits": round(float(surrogate[chosen].mean()), 3)})
    slope = float(torch.cov(torch.stack([actual, surrogate]))[0, 1] / actual.var())
    report = {"plan": str(args.plan), "job": args.job, "step": int(saved["step"]), "heldout": crops.description,
              "mixture_neighbours": MIXTURE_NEIGHBOURS, "bands": bands,
              "surrogate_bits_per_actual_bit": round(slope, 4),
              "note": "least-squares slope of surrogate on actual bits over all vectors; 1 = the encoder prices rarer codewords as they cost"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("bands", "surrogate_bits_per_actual_bit")}, indent=1))


if __name__ == "__main__":
    main()

"""A VQ job's start, rebuilt with one setting at several values, scored on held-out crops before any training.

The job's start (its `init_from` transforms, codewords and logits from their latents as `codebook_init`
builds them) is rebuilt for each value of `--vary FIELD` (a TrainConfig field) and measured on the
held-out crops through actual quantization: loss, bpp and PSNR (codec/training/heldout.py), and the
share of latent vectors whose codeword differs from the one the last value picks.

- Codebook size: with the lattice starts a smaller K keeps the lattice points most latents fall
  nearest to, so what it loses are the vectors out in the tails. Training moves codewords little at
  the paper's codebook learning rate (results/kodak/RECIPE.md, "Stage 3 probe"), so the start's
  distortion shows what each size can represent; its rate does not settle it, as every codeword no
  latent fell on starts with a pseudo-count that training then lowers.
- The search's rate weight (entropy-constrained VQ, vq-ste): the weight the base's own latents
  trade best at is the latent-space slope of its operating point.

    python scripts/start_probe.py scripts/plans/kodak-192-probe.toml ours-4d-k4096-cb1 \\
        --vary codebook_size 1024 4096 32768 --out results/kodak/probe-192/codebook-size.json
    python scripts/start_probe.py scripts/plans/kodak-192-probe.toml vq-ste-4d-enc01-rw005 \\
        --vary rate_weight 0 0.0025 0.005 0.01 0.02 0.05 0.1 0.2 0.4 --out results/kodak/probe-192/rate-weight.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from codec.models import VQCodec, build_model
from codec.training.campaign import load_plan
from codec.training.config import TrainConfig
from codec.training.heldout import BATCH, HeldOutCrops
from codec.training.loop import make_sampler, model_config, start_model


@torch.no_grad()
def codeword_choices(model: VQCodec, crops: HeldOutCrops) -> torch.Tensor:
    """The codeword (its coordinates) each latent vector of the crops takes: (G, P, d), P over all crops."""
    model.eval()
    chosen = []
    for batch in crops.crops.split(BATCH):
        vectors = model.quantizer.to_vectors(model.analysis(batch))
        chosen.append(model.quantizer.lookup(model.quantizer.nearest(vectors, model.search_penalty())))
    return torch.cat(chosen, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("job", help="a VQ job of the plan: its start is rebuilt for each value")
    parser.add_argument("--vary", nargs="+", required=True, metavar=("FIELD", "VALUE"), help="a TrainConfig field and its values")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(args.plan)
    if args.job not in plan.jobs:
        raise SystemExit(f"{args.plan} has no job {args.job!r}")
    field, *texts = args.vary
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if field not in fields or not texts:
        raise SystemExit(f"--vary needs a TrainConfig field and at least one value (got {' '.join(args.vary)!r})")
    kind = type(getattr(TrainConfig(), field))
    try:
        values = [kind(text) for text in texts]
    except ValueError:
        raise SystemExit(f"--vary {field}: values must be {kind.__name__}s (got {' '.join(texts)})") from None
    base = TrainConfig(**plan.jobs[args.job].fields)
    if base.quantizer != "vq" or not base.heldout:
        raise SystemExit(f"job {args.job} is not a VQ job with a held-out folder")
    crops = HeldOutCrops(base.heldout)
    sampler = make_sampler(base)
    results, choices = {}, {}
    for value in values:
        config = dataclasses.replace(base, **{field: value})
        torch.manual_seed(config.seed)
        model = build_model(model_config(config))
        start_model(model, sampler, config)
        results[value] = crops.measure(model, config.lmbda)
        choices[value] = codeword_choices(model, crops)
    last = values[-1]
    for value in results:
        differs = (choices[value] != choices[last]).any(-1)
        results[value][f"share_of_vectors_on_another_codeword_than_{field}_{last}"] = round(float(differs.double().mean()), 6)
    report = {"plan": str(args.plan), "job": args.job, "heldout": crops.description, "lambda": base.lmbda,
              "at": "the job's start (no training)", "field": field, "values": {str(v): r for v, r in results.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["values"], indent=1))


if __name__ == "__main__":
    main()

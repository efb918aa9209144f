"""Toy-source points under the study's recipe with some TrainConfig fields changed: a probe of a hypothesis.

Usage: python scripts/toy_probe.py --source laplace --method ours --dim 1 --slope 9 16 [--seeds 3] --steps 10000 \
           [--set encoder_lr_scale=0.1 --set rate_gradient=sphere] [--label NAME] [--out results/toy/probes.json]

Trains (or resumes) the points, stacked, in runs/toy-probes/<label> (one thread unless --threads),
measures each on the study's fixed test set (bits per dimension from the frozen tables, PSNR per
dimension), and adds to `--out` a record per slope and seed: the label, the settings, bpd, PSNR,
the training seconds, the drawdown (the largest fall of the logged held-out PSNR below its best
so far: a collapse on the way, set log_every small to see short ones) and, for the Laplace, the PSNR the scalar high-rate estimate
D = 2^(2(h - R)) / 12 (h = log2(2e), unit scale) gives at the point's rate.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import torch
from codec.model_file import load_exported
from codec.toy import study
from codec.toy.convergence import drawdown, member_series
from codec.toy.evaluate import evaluate_toy
from codec.data.toy import test_set
from codec.training.run_folder import LOG


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def scalar_high_rate_psnr(bpd: float) -> float:
    """PSNR (unit-scale Laplace, per dimension) of entropy-coded uniform scalar quantization at high rate."""
    entropy = math.log2(2 * math.e)
    return -10 * math.log10(2 ** (2 * (entropy - bpd)) / 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, choices=sorted(study.SOURCES))
    parser.add_argument("--method", required=True)
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--slope", type=float, nargs="+", required=True, help="one point per slope (and seed)")
    parser.add_argument("--seeds", type=int, default=1, help="models per slope, from seeds 0, 1, ...")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field to change")
    parser.add_argument("--label", help="run name (default: built from the settings)")
    parser.add_argument("--out", type=Path, default=Path("results/toy/probes.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one leaves the other cores to other runs)")
    parser.add_argument("--trace", type=Path, help="also copy the training log to TRACE/<label>.jsonl (results/toy/traces keeps the evidence)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    changes = dict(item.split("=", 1) for item in args.set)
    changes = {key: _value(value) for key, value in changes.items()}
    curve = study.ToyCurve(args.method, args.dim)
    slopes = "s" + ",".join(f"{s:g}" for s in args.slope)
    label = args.label or "_".join([args.source, curve.name, slopes, f"{args.steps}"] + [f"{k}={v}" for k, v in changes.items()])
    runs = Path("runs/toy-probes") / label
    seeds = tuple(range(args.seeds))
    files = study.train_points(args.source, curve, args.slope, args.steps, runs, seeds, changes)
    drawdowns = {}
    for config, members in study.curve_stacks(args.source, curve, args.slope, args.steps, runs, seeds, changes):
        psnr = member_series(Path(config.out) / LOG, "psnr")[1]
        drawdowns.update({member: round(drawdown(psnr[:, index]), 2) for index, member in enumerate(members)})
    samples = test_set(args.source, study.TEST_SAMPLES[args.source])
    records = json.loads(args.out.read_text()) if args.out.exists() else []
    for (slope, seed), path in files.items():
        exported = load_exported(path)
        point = evaluate_toy(exported, samples)
        record = {
            "label": label, "source": args.source, "method": args.method, "dim": args.dim, "slope": slope, "seed": seed,
            "steps": args.steps, "changes": changes, "bpd": round(point["bpd"], 4), "psnr": round(point["psnr"], 3),
            "train_seconds": exported.record.get("wall_seconds"), "drawdown_db": drawdowns[slope, seed],
        }
        if args.source == "laplace":
            record["scalar_high_rate_psnr"] = round(scalar_high_rate_psnr(point["bpd"]), 3)
        key = (label, slope, seed)
        records = [r for r in records if (r["label"], r["slope"], r.get("seed", 0)) != key] + [record]
        print(json.dumps(record))
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        logs = sorted(runs.glob(f"*/{LOG}"))  # one per stack
        for log in logs:
            name = label if len(logs) == 1 else f"{label}_{log.parent.name}"
            shutil.copyfile(log, args.trace / f"{name}.jsonl")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()

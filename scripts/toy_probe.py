"""One toy-source point under the study's recipe with some TrainConfig fields changed: a probe of a hypothesis.

Usage: python scripts/toy_probe.py --source laplace --method ours --dim 1 --slope 16 --steps 10000 \
           [--set encoder_lr_scale=0.1 --set rate_gradient=sphere] [--label NAME] [--out results/toy/probes.json]

Trains (or resumes) the point in runs/toy-probes/<label> (one thread unless --threads), measures it on the study's fixed test set
(bits per dimension from the frozen tables, PSNR per dimension), and appends to `--out` a record:
the label, the settings, bpd, PSNR, the training seconds and, for the Laplace, the PSNR the scalar
high-rate estimate D = 2^(2(h - R)) / 12 (h = log2(2e), unit scale) gives at the point's rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
from pathlib import Path

import torch
from codec.model_file import load_exported
from codec.toy import study
from codec.toy.evaluate import evaluate_toy
from codec.data.toy import test_set
from codec.training.loop import exported_model
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
    parser.add_argument("--slope", type=float, required=True)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig field to change")
    parser.add_argument("--label", help="run name (default: built from the settings)")
    parser.add_argument("--out", type=Path, default=Path("results/toy/probes.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one leaves the other cores to other runs)")
    parser.add_argument("--trace", type=Path, help="also copy the run's training log to TRACE/<label>.jsonl (results/toy/traces keeps the evidence)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    changes = dict(item.split("=", 1) for item in args.set)
    changes = {key: _value(value) for key, value in changes.items()}
    curve = study.ToyCurve(args.method, args.dim)
    label = args.label or "_".join([args.source, curve.name, f"s{args.slope:g}", f"{args.steps}"] + [f"{k}={v}" for k, v in changes.items()])
    config = dataclasses.replace(curve.config(args.source, args.slope, args.steps, Path("runs/toy-probes") / label), **changes)
    exported = load_exported(exported_model(config))
    point = evaluate_toy(exported, test_set(args.source, study.TEST_SAMPLES[args.source]))
    record = {
        "label": label, "source": args.source, "method": args.method, "dim": args.dim, "slope": args.slope,
        "steps": args.steps, "changes": changes, "bpd": round(point["bpd"], 4), "psnr": round(point["psnr"], 3),
        "train_seconds": exported.record.get("wall_seconds"),
    }
    if args.source == "laplace":
        record["scalar_high_rate_psnr"] = round(scalar_high_rate_psnr(point["bpd"]), 3)
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(config.out) / LOG, args.trace / f"{label}.jsonl")
    records = json.loads(args.out.read_text()) if args.out.exists() else []
    records = [r for r in records if r["label"] != label] + [record]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()

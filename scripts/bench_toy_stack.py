"""Member-steps per second of stacked toy codecs against lone ones, measured in the same run.

Usage: python scripts/bench_toy_stack.py [--threads 1] [--steps 100] [--members 1 7 21]

For each toy curve below, trains a lone codec and stacks of `--members` codecs (codec/toy/stack.py)
on the 8-D Laplace with the study's recipe, on `--threads` threads, and times the training steps
after the first ten (the codebook start and warm-up left out). Writes results/training/toy-stack.json:
{"<curve>": {"<members>": {"ms_per_step", "ms_per_member_step", "speedup"}}, "setup": {...}};
"speedup" is the lone codec's ms per step over the stack's ms per member-step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from codec.toy import study
from codec.toy.stack import stacked
from codec.training.loop import train

CURVES = [study.ToyCurve("uq-aun"), study.ToyCurve("ours", 1)]
"""The 1-D curves, where stacking is what can help: a 4-D step's time goes to the codeword search."""
WARM_UP = 10


def seconds_per_step(curve: study.ToyCurve, members: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = curve.config("laplace", 9.0, WARM_UP + steps, Path(folder) / "run")
        if members > 1:
            config = stacked(config, [(config.lmbda * (1 + k / members), k) for k in range(members)])
        times = []
        train(config, stop=lambda step: times.append(time.perf_counter()) or False)
        return (times[-1] - times[WARM_UP - 1]) / (len(times) - WARM_UP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--members", type=int, nargs="+", default=[7, 21])
    parser.add_argument("--out", type=Path, default=Path("results/training/toy-stack.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for curve in CURVES:
        lone = seconds_per_step(curve, 1, args.steps)
        results[curve.name] = {"1": {"ms_per_step": round(1000 * lone, 2), "ms_per_member_step": round(1000 * lone, 2), "speedup": 1.0}}
        for members in args.members:
            seconds = seconds_per_step(curve, members, args.steps)
            results[curve.name][str(members)] = {
                "ms_per_step": round(1000 * seconds, 2),
                "ms_per_member_step": round(1000 * seconds / members, 2),
                "speedup": round(lone * members / seconds, 2),
            }
        print(curve.name, json.dumps(results[curve.name]), flush=True)
    load = os.getloadavg()[0]
    results["setup"] = {"threads": args.threads, "steps": args.steps, "source": "laplace", "machine": platform.processor() or platform.machine(),
                        "cores": os.cpu_count(), "load_average_at_end": round(load, 2), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

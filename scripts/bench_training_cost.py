"""Training steps per hour of each method at two widths, fp32 against the default precision, with where the time goes.

Usage: python scripts/bench_training_cost.py [--threads 1] [--steps 12] [--before PATH] [--bf16] [--compile]
       [--only KEY ...] [--out PATH]

Every (method, width, precision) is measured in its own process (`--worker`), one after the other in
the same run, on `--threads` threads (1 = a campaign's one job per core). `--before PATH` also
measures the engine of another checkout (e.g. `git worktree add /tmp/before <commit>`) in the same
run, so the speed-up of a change is a ratio on one machine at one time. Writes
results/training/cost.json: {"<method>@<N>x<M>": {"fp32_steps_per_hour", "default_steps_per_hour",
"precision" (what the default resolved to), "before_steps_per_hour", "phases" (seconds per step of
the default path: data, transforms forward, search, backward, optimizer, other)}, "setup": {...}}.
`--compile` adds the default precision with the transforms compiled (TrainConfig.compile_transforms):
"compiled_steps_per_hour", "compiled_over_default" and "compile_seconds" (what its warm-up steps
took beyond the default's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"64x64": dict(N=64, M=64), "128x192": dict(N=128, M=192)}
VARIANTS = {
    "uq-aun": dict(method="uq-aun"),
    "ours-4d": dict(method="ours", dim=4, codebook_size=4096),
    "ours-4d-k32768": dict(method="ours", dim=4, codebook_size=32768),
    "vq-ste-4d": dict(method="vq-ste", dim=4, codebook_size=4096),
}
COMMON = dict(crop=128, batch=8, codebook_init="lattice")


class PhaseTimer:
    """Seconds spent in the step's phases, by wrapping the functions that do them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def wrap(self, owner, name: str, phase: str) -> None:
        original = getattr(owner, name)
        timer = self

        def timed(*args, **kwargs):
            if timer._depth:
                return original(*args, **kwargs)
            timer._depth += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timer.seconds[phase] = timer.seconds.get(phase, 0.0) + time.perf_counter() - started
                timer._depth -= 1

        setattr(owner, name, timed)


def worker(options: dict, steps: int, data: str) -> dict:
    """Median seconds per step of one configuration, and its phases; runs in the code on sys.path."""
    import torch

    from codec import models, quantizers
    from codec.models import VQCodec, build_model
    try:
        from codec.data import crops as data_module
    except ImportError:  # an engine from before codec/data
        from codec.training import data as data_module
    from codec.training.codebook_init import init_codebooks_from_latents
    from codec.training.config import TrainConfig
    from codec.training.loop import model_config
    from codec.training import methods

    known = TrainConfig.__dataclass_fields__
    precision = options.pop("precision")
    config = TrainConfig(data=data, **{k: v for k, v in options.items() if k in known})
    sampler = data_module.CropSampler(data, config.crop, seed=0)
    torch.manual_seed(0)
    model = build_model(model_config(config))
    if isinstance(model, VQCodec):
        init_codebooks_from_latents(model, sampler, config)
    if hasattr(methods, "METHODS"):  # the registry
        optimizers, step = methods.METHODS[config.method].optimizers(model, config), methods.METHODS[config.method].step
    else:  # an engine from before it
        optimizers, step = methods.make_optimizers(model, config), methods.STEPS[config.method]
    memory_format = torch.contiguous_format
    resolved = "fp32 (before)"
    if "precision" in known:  # this engine: channels-last transforms, precision as configured
        from codec.training.precision import autocast_dtype, resolve_precision

        resolved = resolve_precision(precision, torch.device("cpu"), config.N)
        model.transform_dtype = autocast_dtype(resolved)
        memory_format = torch.channels_last
        model.to(memory_format=memory_format)
    model.train()
    if config.compile_transforms:
        model.compile_transforms()
    timer = PhaseTimer()
    timer.wrap(data_module.CropSampler, "batch", "data")
    timer.wrap(models._TransformCodec, "analysis", "transforms forward")
    timer.wrap(models._TransformCodec, "synthesis", "transforms forward")
    timer.wrap(quantizers.ChannelSplitVQ, "nearest", "search")
    if hasattr(quantizers.ChannelSplitVQ, "k_nearest"):
        timer.wrap(quantizers.ChannelSplitVQ, "k_nearest", "search")
    else:
        from codec import search

        timer.wrap(search, "k_nearest", "search")
        import codec.training.losses as losses

        timer.wrap(losses.search, "k_nearest", "search")
    timer.wrap(torch.Tensor, "backward", "backward")
    timer.wrap(torch.optim.Adam, "step", "optimizer")
    timings, phases = [], []
    warmup = 3
    for index in range(steps + warmup):
        timer.seconds = {}
        started = time.perf_counter()
        batch = sampler.batch(index, config.batch).contiguous(memory_format=memory_format)
        step(model, batch, optimizers, config)
        timings.append(time.perf_counter() - started)
        phases.append(dict(timer.seconds))
    median = statistics.median(timings[warmup:])
    mean_phases = {
        phase: round(statistics.mean(p.get(phase, 0.0) for p in phases[warmup:]), 4)
        for phase in ("data", "transforms forward", "search", "backward", "optimizer")
    }
    mean_phases["other"] = round(statistics.mean(timings[warmup:]) - sum(mean_phases.values()), 4)
    warmup_extra = sum(timings[:warmup]) - warmup * median
    return {"seconds_per_step": median, "precision": resolved, "phases": mean_phases, "warmup_extra_seconds": warmup_extra}


def measure(tree: Path, options: dict, args: argparse.Namespace) -> dict:
    """Run `worker` for `options` in a fresh process importing the code of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, __file__, "--worker", json.dumps(options), "--steps", str(args.steps), "--data", args.data]
    command += ["--threads", str(args.threads)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"worker failed for {options}: {result.stderr.strip().splitlines()[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/train")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per configuration (after 3 warm-up steps)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measured process")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier engine to measure in the same run")
    parser.add_argument("--only", nargs="*", help="measure only these <method>@<size> entries")
    parser.add_argument("--bf16", action="store_true", help="also measure bf16 forced (bf16_steps_per_hour), whatever 'auto' picks")
    parser.add_argument("--compile", action="store_true", help="also measure the default precision with the transforms compiled")
    parser.add_argument("--out", type=Path, default=Path("results/training/cost.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(worker(json.loads(args.worker), args.steps, args.data)))
        return
    here = Path(__file__).resolve().parents[1]
    load_before = os.getloadavg()
    results: dict = {}
    for size_name, size in SIZES.items():
        for name, variant in VARIANTS.items():
            key = f"{name}@{size_name}"
            if args.only and key not in args.only:
                continue
            options = {**COMMON, **size, **variant}
            fp32 = measure(here, {**options, "precision": "fp32"}, args)
            default = measure(here, {**options, "precision": "auto"}, args)
            entry = {
                "fp32_steps_per_hour": round(3600 / fp32["seconds_per_step"]),
                "default_steps_per_hour": round(3600 / default["seconds_per_step"]),
                "precision": default["precision"],
                "phases": default["phases"],
            }
            if args.bf16:
                bf16 = measure(here, {**options, "precision": "bf16"}, args)
                entry["bf16_steps_per_hour"] = round(3600 / bf16["seconds_per_step"])
                entry["bf16_over_fp32"] = round(fp32["seconds_per_step"] / bf16["seconds_per_step"], 2)
            if args.compile:
                compiled = measure(here, {**options, "precision": "auto", "compile_transforms": True}, args)
                entry["compiled_steps_per_hour"] = round(3600 / compiled["seconds_per_step"])
                entry["compiled_over_default"] = round(default["seconds_per_step"] / compiled["seconds_per_step"], 2)
                entry["compile_seconds"] = round(compiled["warmup_extra_seconds"] - default["warmup_extra_seconds"])
                entry["compiled_phases"] = compiled["phases"]
            if args.before:
                before = measure(args.before.resolve(), {**options, "precision": "fp32"}, args)
                entry["before_steps_per_hour"] = round(3600 / before["seconds_per_step"])
                entry["before_phases"] = before["phases"]
                entry["default_over_before"] = round(before["seconds_per_step"] / default["seconds_per_step"], 2)
            entry["default_over_fp32"] = round(fp32["seconds_per_step"] / default["seconds_per_step"], 2)
            results[key] = entry
            print(key, json.dumps({k: v for k, v in entry.items() if "phases" not in k}), flush=True)
    import torch

    from codec.training.precision import cpu_name

    results["setup"] = {
        **COMMON,
        "steps_timed": args.steps,
        "threads": args.threads,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores",
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "before": str(args.before) if args.before else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

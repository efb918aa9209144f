"""A campaign's RD curves on Kodak, with real files, and their report.

For each curve of the plan's `[curves]` table whose jobs are all done, every job's exported model
(made from its milestone on a fresh clone) compresses and decompresses every image of `--images`
(`codec.evaluation.rd.evaluate_model`, the code of `vqcodec eval`), and `<out>/<curve>.json`
(CompressAI's layout, one point per job, sorted by rate) is written with `<curve>.per-image.json`.
A curve with an unfinished job is named and skipped. Then `scripts/kodak_report.py`'s plots and
BD-rate table are drawn over `<out>`, with the baselines and published curves of `--baselines`.

    python scripts/campaign_curves.py scripts/plans/kodak-192.toml --out results/kodak/m192
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from codec.evaluation.rd import evaluate_model, summary, write_results
from codec.model_file import load_exported
from codec.training.campaign import exported_job, load_plan, progress
from codec.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from kodak_report import report  # noqa: E402  (a sibling script)


def describe(plan, jobs: tuple[str, ...], steps_run: dict[str, int]) -> str:
    """The training of a curve's jobs: the fields they share, then each job's lambda, the steps it ran
    (fewer than `steps` where its plateau ended it) and its start."""
    configs = [asdict(TrainConfig(**plan.jobs[job].fields)) for job in jobs]
    shared = {k: v for k, v in configs[0].items() if all(c[k] == v for c in configs) and k not in ("out", "init_from")}
    points = ", ".join(f"{job} (lambda {c['lmbda']}, {steps_run[job]} steps from {c['init_from'] or 'scratch'})" for job, c in zip(jobs, configs))
    return f"campaign {plan.path}: {shared}; {points}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--curves", nargs="*", help="only these curves (default: every curve of the plan)")
    parser.add_argument("--images", type=Path, default=Path("../shared/kodak"))
    parser.add_argument("--baselines", type=Path, default=Path("results/kodak"), help="holds jpeg/webp/hevc-444.json and reference/")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(args.plan)
    unknown = set(args.curves or ()) - set(plan.curves)
    if unknown:
        parser.error(f"{args.plan} has no curve {sorted(unknown)[0]!r} (it has: {', '.join(plan.curves)})")
    for curve in args.curves or plan.curves:
        jobs = plan.curves[curve]
        unfinished = [job for job in jobs if not progress(plan, job).done]
        if unfinished:
            print(f"{curve}: skipped, {len(unfinished)} of its {len(jobs)} jobs are not done ({', '.join(unfinished)})")
            continue
        results, codebooks, steps_run = {}, {}, {}
        for job in jobs:
            exported = load_exported(exported_job(plan, job))
            steps_run[job] = exported.record.get("steps_run", plan.jobs[job].steps)
            results[job], statistics = evaluate_model(exported, args.images, label=job)
            if statistics:
                codebooks[job] = statistics
            point = summary(results[job])
            print(f"{job}: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB", flush=True)
        write_results(args.out / f"{curve}.json", curve, describe(plan, jobs, steps_run), results, codebooks)
    report(args.out, list(plan.curves), args.baselines, f"python scripts/campaign_curves.py {args.plan} --out {args.out}")


if __name__ == "__main__":
    main()

"""The held-out loss of a campaign's jobs against their steps: how long each took to plateau.

Jobs log their held-out loss while they train (`heldout` in the plan, codec/training/heldout.py). For
the steps a job ran before it did, this measures the job's milestones as git history kept them (every
session commits them), on the same crops. Writes `<out>.json` ({job: [{step, loss, bpp, psnr, from}]},
sorted by step) and `<out>.png`, one panel per job with the plateau test's window marked.

    python scripts/heldout_curves.py scripts/plans/kodak-192.toml --out results/kodak/heldout-192
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import torch

from codec.training.campaign import log_entries, load_plan
from codec.training.config import TrainConfig
from codec.training.heldout import HeldOutCrops, measurements, relative_change
from codec.training.loop import model_from_checkpoint


def committed_versions(path: Path) -> list[str]:
    """Commits that changed `path`, oldest first; none (and a line saying so) outside a git checkout."""
    log = subprocess.run(["git", "log", "--format=%H", "--", str(path)], capture_output=True, text=True, check=False)
    if log.returncode:
        print(f"no git history for {path} (only its log is measured): {log.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        return []
    return log.stdout.split()[::-1]


def history(config: TrainConfig, milestone: Path, crops: HeldOutCrops, known: set[int]) -> list[dict]:
    """The held-out measurement of every committed version of a milestone whose step is not in `known`."""
    points = []
    for commit in committed_versions(milestone):
        blob = subprocess.run(["git", "show", f"{commit}:{milestone}"], capture_output=True, check=True).stdout
        saved = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        if saved["step"] in known:
            continue
        model = model_from_checkpoint(config, saved)
        points.append({"step": saved["step"], **crops.measure(model, config.lmbda), "from": f"milestone {commit[:7]}"})
        known.add(saved["step"])
    return points


def plot(curves: dict[str, list[dict]], path: Path, drops: dict[str, int]) -> None:
    """One panel per job; `drops`: the step where a job's plateau test dropped its learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for panel, (job, points) in zip(axes[0], curves.items()):
        steps, losses = [p["step"] for p in points], [p["loss"] for p in points]
        panel.plot(steps, losses, marker=".")
        if steps:
            panel.axvspan(0.8 * steps[-1], steps[-1], color="0.9", label="last 20% of steps")
            if job in drops:
                panel.axvline(drops[job], color="C3", linestyle="--", label=f"plateau found, lr / 10 (step {drops[job]:,})")
            change = relative_change([{"step": s, "heldout": {"loss": v}} for s, v in zip(steps, losses)])
            fall = f", fell {100 * change:.2f}% over the last 20%" if change is not None else ""
            panel.set_title(f"{job}{fall}", fontsize=8)
        panel.set(xlabel="step", ylabel="held-out loss, bpp + lambda 255^2 MSE")
        panel.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix: writes .json and .png")
    parser.add_argument("--jobs", nargs="*", help="only these jobs (default: every job that has measurements)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(args.plan)
    curves, drops = {}, {}
    crops_of: dict[str, HeldOutCrops] = {}  # jobs share their held-out folder: read it once
    for job in args.jobs or plan.jobs:
        config = TrainConfig(**plan.jobs[job].fields)
        if not config.heldout:
            raise SystemExit(f"job {job} of {args.plan} has no held-out folder (`heldout`)")
        entries = log_entries(plan, job, last=None)
        logged = {e["step"]: {"step": e["step"], **e["heldout"], "from": "log"} for e in measurements(entries)}
        drops.update({job: e["plateau"]["drop_from"] for e in entries if "plateau" in e})
        if config.heldout not in crops_of:
            crops_of[config.heldout] = HeldOutCrops(config.heldout)
        crops = crops_of[config.heldout]
        points = list(logged.values()) + history(config, plan.milestone(job), crops, set(logged))
        if points:
            curves[job] = sorted(points, key=lambda p: p["step"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(curves, indent=1) + "\n")
    plot(curves, args.out.with_suffix(".png"), drops)
    print(f"wrote {args.out}.json and .png ({', '.join(f'{job}: {len(p)} points' for job, p in curves.items())})")


if __name__ == "__main__":
    main()

"""Ship a campaign's RD curve as named models, and write codec/weights/KODAK.md for every shipped model.

Each job of the plan's curve (its exported model; a fresh clone makes it from the job's milestone)
is copied into codec/weights/ as `<as>-q<i>` (i from 1, in the curve's order), registered with its
Kodak bpp and PSNR from `<results>/<curve>.json` (written by scripts/campaign_curves.py), and
KODAK.md is written anew from the record inside every shipped model file, the earlier models
included. Nothing shipped before is removed, so files made by any shipped model keep decoding.

    python scripts/ship_kodak_models.py scripts/plans/kodak-192.toml --curve uq-aun --as uq-aun-m192 \\
        --results results/kodak/m192 --default uq-aun-m192-q3
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from codec import zoo
from codec.model_file import load_exported
from codec.training.campaign import exported_job, load_plan, progress

def measured(results: Path, curve: str) -> dict[str, tuple[float, float]]:
    """Kodak bpp and PSNR-RGB per job, as `<results>/<curve>.json` lists them."""
    content = json.loads((results / f"{curve}.json").read_text())
    points = zip(content["results"]["bpp"], content["results"]["psnr-rgb"])
    return dict(zip(content["models"], points))


def row(name: str, entry: dict) -> str:
    """KODAK.md's line for one shipped model, from the record inside its file."""
    path = zoo.WEIGHTS / entry["file"]
    exported = load_exported(path)
    record, config = exported.record, exported.model.config
    training = record.get("training", {})
    method = training.get("method", "?") + (f", d={config.dim}" if config.quantizer == "vq" else "")
    hours = f"{record['wall_seconds'] / 3600:.2f}" if "wall_seconds" in record else "-"
    kodak = f"{entry['kodak_bpp']:.4f} | {entry['kodak_psnr']:.2f}" if entry.get("kodak_bpp") is not None else "- | -"
    return (
        f"| `{name}` | {config.N}/{config.M} | {method} | {training.get('lmbda', '-')} | {record.get('steps_run', training.get('steps', '-'))} "
        f"| `{training.get('init_from') or 'scratch'}` | {record.get('precision', 'fp32')} | {hours} | {record.get('machine', '-')} "
        f"| {path.stat().st_size / 1e6:.1f} | {kodak} |"
    )


def write_table() -> Path:
    """KODAK.md anew, one row per shipped model; returns its path."""
    index = json.loads(zoo.INDEX.read_text())
    lines = [
        "# Shipped models",
        "",
        "Written by `python scripts/ship_kodak_models.py` from the record inside each model file (fp16 weights),",
        "all trained on 128x128 crops (with flips) of the 680 photographs of `../shared/train`, batch 8, and",
        "measured on the 24 Kodak images with real files. The N = M = 64 models are the sweep of",
        "`scripts/kodak_sweep.py` (steps and wall time of their own fine-tune; `results/kodak/RECIPE.md`); the",
        "N = 128 / M = 192 models are jobs of a campaign plan (`scripts/plans/`), whose steps and wall time",
        "count from their start, across the sessions and machines that resumed them (`results/kodak/RECIPE.md`).",
        f"The default for `vqcodec compress` is `{index['default']}`.",
        "",
        "| model | N/M | method | lambda | steps | start | precision | wall h | machine | MB | Kodak bpp | Kodak PSNR-RGB (dB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(name, entry) for name, entry in sorted(index["models"].items())]
    table = zoo.WEIGHTS / "KODAK.md"
    table.write_text("\n".join(lines) + "\n")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--curve", required=True, help="a curve of the plan's [curves] table")
    parser.add_argument("--as", dest="prefix", required=True, help="the shipped names: <as>-q1, <as>-q2, ...")
    parser.add_argument("--results", type=Path, required=True, help="where campaign_curves.py wrote <curve>.json")
    parser.add_argument("--default", help="a shipped name that becomes the default for `vqcodec compress`")
    args = parser.parse_args(argv)
    plan = load_plan(args.plan)
    if args.curve not in plan.curves:
        parser.error(f"{args.plan} has no curve {args.curve!r} (it has: {', '.join(plan.curves)})")
    jobs = plan.curves[args.curve]
    unfinished = [job for job in jobs if not progress(plan, job).done]
    if unfinished:
        parser.error(f"curve {args.curve} has unfinished jobs: {', '.join(unfinished)}")
    if not (args.results / f"{args.curve}.json").exists():
        parser.error(f"no {args.results / (args.curve + '.json')}: run scripts/campaign_curves.py first")
    kodak = measured(args.results, args.curve)
    missing = [job for job in jobs if job not in kodak]
    if missing:
        parser.error(f"{args.results / (args.curve + '.json')} has no Kodak point for {', '.join(missing)}: run campaign_curves.py")
    names = [f"{args.prefix}-q{i}" for i in range(1, len(jobs) + 1)]
    if args.default and args.default not in names + zoo.names():
        parser.error(f"--default must be a shipped model: one of {', '.join(names + zoo.names())}")
    taken = [name for name in names if name in zoo.names()]
    if taken:
        parser.error(f"{', '.join(taken)} already shipped: files made by it must keep decoding, so choose another --as")
    for name, job in zip(names, jobs):
        target = zoo.WEIGHTS / f"{name}.pt"
        shutil.copyfile(exported_job(plan, job), target)
        exported = load_exported(target)
        facts = {
            "method": exported.record["training"]["method"],
            "dim": exported.model.config.dim if exported.model.config.quantizer == "vq" else None,
            "kodak_bpp": round(kodak[job][0], 4),
            "kodak_psnr": round(kodak[job][1], 2),
        }
        zoo.register(name, target.name, exported.model_id, facts)
    if args.default:
        zoo.set_default(args.default)
    table = write_table()
    print(f"shipped {', '.join(names)}; default {json.loads(zoo.INDEX.read_text())['default']}; wrote {table}")


if __name__ == "__main__":
    main()

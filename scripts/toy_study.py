"""Run the whole toy-source study (paper 004, Sec. 3 and 5.2.1): every learned curve, ECVQ, the
R(D) references, then the figures and the target table. Resumable: each stack's measured points go to
results/toy/points.json as it finishes (keyed by a digest of the recipe), and only missing ones train;
results/toy/carried keeps the checkpoints of unfinished stacks, of the stacks others start from
(uq-aun) and of those whose models the figures draw, so a fresh clone goes on where a session
stopped (`--carry` refreshes them before a commit).

    python scripts/toy_study.py                       # everything, results under results/toy/
    python scripts/toy_study.py --sources gaussian    # one source
    python scripts/toy_study.py --sources laplace --curves ours-4d   # one curve
    python scripts/toy_study.py --workers 2           # two stacks at a time (one per core)
    python scripts/toy_study.py --status              # what is measured, and how long a stack took
    python scripts/toy_study.py --carry               # milestones of unfinished and start stacks, to commit
    python scripts/toy_study.py --figures-only        # rewrite the measured curves from points.json, train
                                                      # the figures' missing models (--workers of them at once), redraw
    python scripts/toy_study.py --references          # only the R(D) bounds, ECVQ and ECSQ, then redraw
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import torch
from tqdm import tqdm

from codec.toy import convergence, figures, study, targets
from codec.training.milestones import milestone_step, restore_milestone, write_milestone
from codec.training.run_folder import CHECKPOINT

CARRIED = "carried"
"""Folder of `out` (tracked) with the milestones a fresh clone resumes the study from."""


def chosen_curves(sources: list[str], curves: list[str] | None) -> list[tuple[str, study.ToyCurve]]:
    """The study's curves of `sources` named in `curves` (all when None), and the curves those start from."""
    def named(curve: study.ToyCurve) -> bool:
        return curves is None or curve.name in curves

    return [
        (source, curve) for source in sources for curve in study.STUDY[source]
        if named(curve) or any(named(other) and other.start == curve.name for other in study.STUDY[source])
    ]


def measured_points(out: Path) -> dict:
    record = out / "points.json"
    return json.loads(record.read_text()) if record.exists() else {}


def carried_files(out: Path, config) -> tuple[Path, Path]:
    """(milestone, log) of a stack in `out`/carried."""
    name = Path(config.out).name
    return out / CARRIED / f"{name}.pt", out / CARRIED / f"{name}.log.jsonl"


def study_stacks(sources: list[str], curves: list[str] | None, runs: Path, steps: int, measured: dict) -> list[tuple]:
    """(config, whether a fresh clone needs it) for every stack of the chosen curves and of the
    figures: it does where its points are not all in `measured`, where another curve starts from it,
    or where a figure draws one of its models (figures.figure_stacks)."""
    stacks = {}
    for source, curve in chosen_curves(sources, curves):
        is_start = any(other.start == curve.name for other in study.STUDY[source])
        missing = study.missing_stacks(source, curve, curve.slopes(source), steps, runs, curve.seeds, measured)
        for config, members in study.curve_stacks(source, curve, curve.slopes(source), steps, runs, curve.seeds):
            stacks[config.out] = config, is_start or (config, members) in missing
    for config, _ in figures.figure_stacks(runs, steps):
        stacks[config.out] = config, True
    return list(stacks.values())


def restore(stacks: list[tuple], out: Path) -> None:
    """Start the run folder of every needed stack (`study_stacks`) without a checkpoint from its milestone in `out`/carried."""
    for config, needed in stacks:
        if needed and restore_milestone(*carried_files(out, config), Path(config.out)):
            print(f"resuming {Path(config.out).name} from its milestone in {out / CARRIED}")


def carry(sources: list[str], curves: list[str] | None, out: Path, runs: Path, steps: int, measured: dict) -> list[Path]:
    """Copy into `out`/carried the last checkpoint (weights, without Adam's state) and log of every
    stack a fresh clone needs (`study_stacks`) where the copy is behind; drop the copies it no longer
    needs. Returns the milestones written. Committing `out` then carries the study to another machine."""
    written = []
    for config, needed in study_stacks(sources, curves, runs, steps, measured):
        milestone, log = carried_files(out, config)
        checkpoint = Path(config.out) / CHECKPOINT
        if not needed:
            milestone.unlink(missing_ok=True)
            log.unlink(missing_ok=True)
        elif checkpoint.exists() and milestone_step(milestone) < milestone_step(checkpoint):
            write_milestone(checkpoint, milestone, log, cap_mb=0)
            written.append(milestone)
    return written


def run_learned(sources: list[str], curves: list[str] | None, out: Path, runs: Path, steps: int, workers: int, remeasure: bool = False) -> None:
    """Train and measure every stack whose points `out`/points.json lacks (in `workers` processes of
    one thread each), recording each stack's points as it finishes and writing each curve once all
    its points are in. With `remeasure`, measure again instead every stack whose models `runs` holds."""
    measured = measured_points(out)
    restore(study_stacks(sources, curves, runs, steps, measured), out)
    for fine_tunes in (False, True):  # a fine-tune's start must be finished before it begins, not trained beside it
        jobs = [
            (source, curve, config, members, steps, runs, study.checked_member(curve.slopes(source), curve.seeds))
            for source, curve in chosen_curves(sources, curves)
            if bool(curve.start) == fine_tunes
            for config, members in (
                study.trained_stacks(source, curve, curve.slopes(source), steps, runs, curve.seeds) if remeasure
                else study.missing_stacks(source, curve, curve.slopes(source), steps, runs, curve.seeds, measured)
            )
        ]
        jobs.sort(key=lambda job: job[1].dim != 4)  # a 4-D stack (32,768 codewords a group) takes hours: first, not alone at the end
        with _pool(workers) as pool:
            for points in tqdm(pool.imap_unordered(_measure_stack, jobs), total=len(jobs), desc="stacks"):
                measured.update(points)
                out.mkdir(parents=True, exist_ok=True)
                (out / "points.json").write_text(json.dumps(dict(sorted(measured.items())), indent=1) + "\n")
                write_curves(sources, curves, out, runs, steps, measured)
                carry(sources, curves, out, runs, steps, measured)


def write_curves(sources: list[str], curves: list[str] | None, out: Path, runs: Path, steps: int, measured: dict) -> None:
    """`<source>_<curve>.json` for every chosen curve whose points are all in `measured`."""
    for source, curve in chosen_curves(sources, curves):
        slopes = curve.slopes(source)
        if study.missing_stacks(source, curve, slopes, steps, runs, curve.seeds, measured):
            continue
        points, check = study.curve_points(source, curve, slopes, steps, curve.seeds, measured)
        length = f"{curve.training_steps(steps)} steps from the {steps}-step {curve.start} models" if curve.start else f"{steps} steps"
        description = f"{curve.method}, d={curve.dim}, {curve.rate_gradient} rate gradient, {length} per point, mean of {len(curve.seeds)} seeds"
        study.write_curve(out, source, curve.name, description, points, bitstream=check, seeds=list(curve.seeds), steps=steps)


def print_status(sources: list[str], curves: list[str] | None, out: Path, runs: Path, steps: int) -> None:
    """Per curve: its stacks measured of all, and the wall time of the measured ones."""
    measured = measured_points(out)
    print(f"{'source':10} {'curve':16} {'stacks':>7} {'seconds per stack':>18}")
    for source, curve in chosen_curves(sources, curves):
        slopes = curve.slopes(source)
        stacks = study.curve_stacks(source, curve, slopes, steps, runs)
        missing = study.missing_stacks(source, curve, slopes, steps, runs, curve.seeds, measured)
        seconds = [
            measured[study.point_key(source, curve, members[0][0], members[0][1], steps)].get("stack_seconds")
            for config, members in stacks
            if (config, members) not in missing
        ]
        seconds = [s for s in seconds if s is not None]
        shown = f"{sum(seconds) / len(seconds):.0f}" if seconds else "-"
        print(f"{source:10} {curve.name:16} {len(stacks) - len(missing):>3}/{len(stacks):<3} {shown:>18}")


def _pool(workers: int):
    """`workers` fresh processes of one thread each (spawned: a forked torch may hang)."""
    return multiprocessing.get_context("spawn").Pool(workers, initializer=torch.set_num_threads, initargs=(1,))


def _measure_stack(job: tuple) -> dict:
    return study.measure_stack(*job)


def _train_point(job: tuple) -> Path:
    return study.train_point(*job)


def train_figure_models(out: Path, runs: Path, steps: int, workers: int) -> None:
    """Train the models (seed 0) of the figures `figures.draw_all` will draw that `runs` lacks, in
    `workers` processes of one thread each, so that drawing them waits on no training."""
    jobs = [(source, study.named_curve(source, name), slope, steps, runs) for source, name, slope in figures.due_points(out, steps)]
    missing = [job for job in jobs if not study.member_file(runs, job[0], job[1], job[2], 0, steps).exists()]
    for fine_tunes in (False, True):  # a start (the Gaussian's uq-aun) must not train beside its fine-tune
        phase = [job for job in missing if bool(job[1].start) == fine_tunes]
        if phase:
            with _pool(workers) as pool:
                for path in tqdm(pool.imap_unordered(_train_point, phase), total=len(phase), desc="figure models"):
                    print(f"trained {path}")


def write_references(source: str, out: Path) -> None:
    for name, (description, points) in study.bound_curves(source).items():
        study.write_curve(out, source, name, description, points)
    ecvq = study.ecvq_curve(source, study.SLOPES[source])
    block = study.ECVQ_BLOCK.get(source)
    blocks = f", on {block}-D blocks of the i.i.d. source" if block else ""
    start = f"started on {study.ECVQ_LATTICE_START[source]} at the top slope" if source in study.ECVQ_LATTICE_START else "k-means++ start"
    study.write_curve(out, source, "ecvq", f"ECVQ in the source space (Lagrangian Lloyd, {study.ECVQ_CODEBOOK[source]} codewords, {start}, warm start between slopes{blocks})", ecvq)
    for lattice, size in study.LATTICE_REFERENCES.get(source, ()):
        points = study.lattice_curve(source, study.SLOPES[source], lattice, size)
        description = f"entropy-coded {lattice} lattice quantizer, untrained: the {size} lattice points most training blocks fall on, at the high-rate cell of each slope{blocks}"
        study.write_curve(out, source, f"{lattice.lower()}-lattice-{size}", description, points)
    if source != "gaussian":  # on the 1-D Gaussian ECVQ is scalar already
        scalar = study.ecsq_curve(source, study.SLOPES[source])
        study.write_curve(out, source, "ecsq", "entropy-coded scalar quantization (ECVQ of one dimension, 1024 codewords)", scalar)


def draw_convergence(out: Path, steps: int) -> list[Path]:
    """`<source>_convergence.png` from the measured points: each curve's held-out loss against steps
    at its low, middle and high slope (seed 0), where all three are measured."""
    measured = measured_points(out)
    runs = {}
    for source, curves in study.STUDY.items():
        for curve in curves:
            slopes = curve.slopes(source)
            probes = [(s, measured.get(study.point_key(source, curve, s, curve.seeds[0], steps), {})) for s in (slopes[0], slopes[len(slopes) // 2], slopes[-1])]
            if all("loss" in record for _, record in probes):
                runs.setdefault(source, {})[curve.name] = probes
    return convergence.plot(runs, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", nargs="+", default=list(study.STUDY), choices=list(study.STUDY))
    parser.add_argument("--curves", nargs="+", help="only these learned curves (e.g. ours-1d uq-aun); the references are left as they are")
    parser.add_argument("--steps", type=int, default=study.STEPS)
    parser.add_argument("--out", type=Path, default=Path("results/toy"))
    parser.add_argument("--runs", type=Path, default=Path("runs/toy"))
    parser.add_argument("--workers", type=int, default=1, help="stacks trained at once, one process of one thread each")
    parser.add_argument("--figures-only", action="store_true")
    parser.add_argument("--references", action="store_true", help="only write the references of --sources (R(D) bounds, ECVQ, ECSQ), then redraw")
    parser.add_argument("--remeasure", action="store_true", help="measure again every point whose model --runs holds, training nothing (after a change to what a point records)")
    parser.add_argument("--status", action="store_true", help="only list each curve's measured stacks and their wall time")
    parser.add_argument("--carry", action="store_true", help=f"only copy into <out>/{CARRIED} the checkpoints a fresh clone resumes from (before a commit)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.status:
        print_status(args.sources, args.curves, args.out, args.runs, args.steps)
        return
    if args.carry:
        for path in carry(args.sources, args.curves, args.out, args.runs, args.steps, measured_points(args.out)):
            print(f"wrote {path}")
        return
    if args.references:
        for source in args.sources:
            write_references(source, args.out)
    elif not args.figures_only:
        if args.curves is None:
            for source in args.sources:
                write_references(source, args.out)
        run_learned(args.sources, args.curves, args.out, args.runs, args.steps, args.workers, args.remeasure)
    write_curves(args.sources, args.curves, args.out, args.runs, args.steps, measured_points(args.out))
    restore([(config, True) for config, _ in figures.figure_stacks(args.runs, args.steps)], args.out)
    train_figure_models(args.out, args.runs, args.steps, args.workers)
    for path in [*draw_convergence(args.out, args.steps), *figures.draw_all(args.out, args.runs, args.steps)]:
        print(f"wrote {path}")
    table = targets.write_targets(args.out, args.steps)
    print(f"wrote {table}")


if __name__ == "__main__":
    main()

"""Campaigns: a plan of training jobs, run on every core, resumed from checkpoints, carried across machines.

A plan is a TOML file:

    name = "kodak-192"
    runs = "runs/kodak-192"            # working folder, not tracked: checkpoints every 2 minutes
    state = "results/kodak/campaign"   # tracked folder: milestones that a fresh clone resumes from
    milestone_minutes = 30             # how often a running job refreshes its milestone
    milestone_cap_mb = 40              # a milestone over this size drops its optimizer state

    [defaults]                         # TrainConfig fields shared by every job
    N = 128
    M = 192

    [jobs.pretrain]                    # a job: TrainConfig fields (steps included)
    method = "uq-aun"
    steps = 20000

    [jobs.uq-aun-q3]
    after = ["pretrain"]               # starts when these are done, from the first one's final weights
    lmbda = 0.025

    [presets.fine-tune]                # TrainConfig fields that the jobs naming it share
    lr = 1e-4
    steps = 3000

    [jobs.ours-4d-q3]
    presets = ["fine-tune"]            # merged over [defaults], in order; the job's own fields last
    after = ["uq-aun-q3"]
    method = "ours"
    lmbda = 0.025

    [curves]                           # RD curves: one job per rate point (scripts/campaign_curves.py)
    uq-aun = ["uq-aun-q3"]
    ours-4d = ["ours-4d-q3"]

Each job runs in its own process (`python -m codec.training.campaign job ...`) with its share of the
cores: one job per core gives more steps per hour than one job on all of them (two one-thread uq-aun
jobs make 1.39x the steps of one two-thread job at N=M=64, 1.36x at N=128/M=192: results/training/
cost-threads.json). A job
that runs alone gets every core and is restarted with fewer threads when another job becomes ready.

A job's milestone, `state/<job>.pt`, is its training checkpoint (weights, optimizer state, step)
written every `milestone_minutes`, when it is stopped and when it ends; `state/<job>.log.jsonl` is its
log. A job with no checkpoint in `runs` resumes from its milestone, so committing `state` carries the
campaign to a fresh clone on another machine. A milestone over `milestone_cap_mb` keeps the weights
and drops the optimizer state, which the resumed job re-warms (then it is no longer bit-identical).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from codec.training import milestones
from codec.training.run_folder import CHECKPOINT, EXPORTED, LOG, STDERR

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PLAN_KEYS = {"name", "runs", "state", "milestone_minutes", "milestone_cap_mb", "defaults", "presets", "jobs", "curves"}
POLL_SECONDS = 2.0


class CampaignError(ValueError):
    """A plan or campaign state that cannot be run; the message names what is wrong."""


@dataclass(frozen=True)
class Job:
    name: str
    fields: dict
    """TrainConfig fields of the job (defaults merged in, `out` and `init_from` filled in)."""
    after: tuple[str, ...]

    @property
    def steps(self) -> int:
        return int(self.fields["steps"])


@dataclass(frozen=True)
class Plan:
    path: Path
    name: str
    runs: Path
    state: Path
    milestone_minutes: float
    milestone_cap_mb: float
    jobs: dict[str, Job]
    """In an order where every job comes after the jobs it starts from."""
    curves: dict[str, tuple[str, ...]]
    """RD curves the plan's jobs make: curve name -> its jobs, one per rate point."""

    def milestone(self, job: str) -> Path:
        return self.state / f"{job}.pt"

    def milestone_log(self, job: str) -> Path:
        return self.state / f"{job}.log.jsonl"


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan: unknown keys, fields, methods or dependencies, and cycles, are errors."""
    from codec.training.config import TrainConfig

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CampaignError(f"cannot read plan {path}: {error}") from None
    unknown = set(raw) - PLAN_KEYS
    if unknown:
        raise CampaignError(f"{path}: unknown plan key {sorted(unknown)[0]!r} (known: {', '.join(sorted(PLAN_KEYS))})")
    if not raw.get("jobs"):
        raise CampaignError(f"{path}: the plan has no [jobs.<name>] table")
    name = raw.get("name", path.stem)
    runs = Path(raw.get("runs", f"runs/{name}"))
    state = Path(raw.get("state", runs / "state"))
    known = {field.name for field in fields(TrainConfig)} - {"out", "init_from"}
    defaults, presets = raw.get("defaults", {}), raw.get("presets", {})
    jobs: dict[str, Job] = {}
    for job_name, own in raw["jobs"].items():
        own = dict(own)
        table = dict(defaults)
        for preset in own.pop("presets", ()):
            if preset not in presets:
                raise CampaignError(f"{path}: job {job_name!r} names unknown preset {preset!r}")
            table.update(presets[preset])
        table.update(own)
        after = tuple(table.pop("after", ()))
        for key in table:
            if key not in known and key != "init_from":
                raise CampaignError(f"{path}: job {job_name!r} has unknown field {key!r}")
        for dependency in after:
            if dependency not in raw["jobs"]:
                raise CampaignError(f"{path}: job {job_name!r} starts after unknown job {dependency!r}")
        table["out"] = str(runs / job_name)
        if after and "init_from" not in table:
            table["init_from"] = str(state / f"{after[0]}.pt")
        try:
            TrainConfig(**table)
        except (TypeError, ValueError) as error:
            raise CampaignError(f"{path}: job {job_name!r}: {error}") from None
        jobs[job_name] = Job(job_name, table, after)
    curves = {curve: tuple(members) for curve, members in raw.get("curves", {}).items()}
    for curve, members in curves.items():
        stray = [member for member in members if member not in jobs]
        if stray or not members:
            raise CampaignError(f"{path}: curve {curve!r} " + (f"names unknown job {stray[0]!r}" if stray else "has no jobs"))
    return Plan(
        path=path,
        name=name,
        runs=runs,
        state=state,
        milestone_minutes=float(raw.get("milestone_minutes", 30)),
        milestone_cap_mb=float(raw.get("milestone_cap_mb", 40)),
        jobs={job: jobs[job] for job in _dependency_order(jobs, path)},
        curves=curves,
    )


def _dependency_order(jobs: dict[str, Job], path: Path) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(job: str) -> None:
        if job in order:
            return
        if job in visiting:
            raise CampaignError(f"{path}: jobs depend on each other in a cycle through {job!r}")
        visiting.add(job)
        for dependency in jobs[job].after:
            visit(dependency)
        visiting.discard(job)
        order.append(job)

    for job in jobs:
        visit(job)
    return order


# One job (its own process) ------------------------------------------------------------------------


def write_milestone(plan: Plan, job: str, checkpoint: Path) -> None:
    """Copy a job's checkpoint and log into the tracked state folder (without optimizer state over the cap)."""
    milestones.write_milestone(checkpoint, plan.milestone(job), plan.milestone_log(job), plan.milestone_cap_mb)


def run_job(plan: Plan, job: str, threads: int, deadline: float, max_steps: int, signalled: list | None = None) -> int:
    """Train one job until it ends, a signal or the deadline stops it, or it ran `max_steps` steps (0 = no limit).

    `signalled` (appended to on SIGTERM or SIGINT) may carry signals that arrived before the call.
    Returns 0 when the job is done, 3 when it was stopped with a checkpoint and milestone written.
    """
    import torch

    from codec.training.config import TrainConfig
    from codec.training.loop import train

    torch.set_num_threads(threads)
    config = TrainConfig(**plan.jobs[job].fields)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    milestones.restore_milestone(plan.milestone(job), plan.milestone_log(job), out)
    signalled = [] if signalled is None else signalled
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: signalled.append(True))
    first_step: list[int] = []  # where this run resumed: `stop` is first asked right after that step's successor

    def stop(step: int) -> bool:
        if not first_step:
            first_step.append(step - 1)
        return bool(signalled) or time.time() > deadline or (max_steps > 0 and step - first_step[0] >= max_steps)

    last_milestone = [time.monotonic()]

    def on_checkpoint(path: Path, step: int) -> None:
        if time.monotonic() - last_milestone[0] > plan.milestone_minutes * 60 or stop(step):
            write_milestone(plan, job, path)
            last_milestone[0] = time.monotonic()

    run = train(config, stop=stop, on_checkpoint=on_checkpoint)
    if run.exported is None:
        return STOPPED
    write_milestone(plan, job, out / CHECKPOINT)  # the last step's, at `steps` or where a plateau ended it
    return 0


STOPPED = 3
"""Exit status of a job process stopped before its last step (checkpoint and milestone written)."""


# The campaign (the parent process) ----------------------------------------------------------------


@dataclass
class JobProgress:
    """What a job's log and milestone say of it: steps done, its recent speed, whether it is done."""

    step: int
    total: int
    steps_per_hour: float | None
    done: bool

    @property
    def eta_hours(self) -> float | None:
        if self.done or not self.steps_per_hour:
            return None
        return (self.total - self.step) / self.steps_per_hour


def log_entries(plan: Plan, job: str, last: int | None = 200) -> list[dict]:
    """The last `last` lines (None = all) of a job's log: its run folder's, else its milestone's."""
    for log in (plan.runs / job / LOG, plan.milestone_log(job)):
        if log.exists():
            lines = log.read_text().splitlines()[-last if last else 0 :]
            return [json.loads(line) for line in lines if line.strip()]
    return []


def heldout_summary(plan: Plan, job: str) -> str:
    """The job's latest held-out loss and how much it fell over the last 20% of its steps ("-" when
    not measured yet): the plateau test of a long run (codec/training/heldout.py)."""
    from codec.training.heldout import measurements, relative_change  # imports torch: not for the campaign's parent

    entries = measurements(log_entries(plan, job, last=None))
    if not entries:
        return "-"
    change = relative_change(entries)
    return f"{entries[-1]['heldout']['loss']:.4f}" + (f" ({100 * change:+.2f}%)" if change is not None else "")


def progress(plan: Plan, job: str) -> JobProgress:
    entries = [e for e in log_entries(plan, job) if "seconds" in e]
    restarts = [i for i in range(1, len(entries)) if entries[i]["step"] <= entries[i - 1]["step"]]
    if restarts:  # a resumed job logs again from its checkpoint: measure speed since then only
        entries = entries[restarts[-1]:]
    step = entries[-1]["step"] if entries else 0
    speed = None
    if len(entries) >= 2:
        first, last = entries[max(0, len(entries) - 40)], entries[-1]
        if last["seconds"] > first["seconds"] and last["step"] > first["step"]:
            speed = (last["step"] - first["step"]) / (last["seconds"] - first["seconds"]) * 3600
    milestone, early_end = milestones.milestone_progress(plan.milestone(job))
    if early_end is None:  # a plateau its last milestone has not seen yet: the log says where the job ends
        early_end = next((e["plateau"]["end"] for e in reversed(log_entries(plan, job, last=None)) if "plateau" in e), None)
    total = early_end or plan.jobs[job].steps  # a job that plateaued ends early (TrainConfig.plateau)
    return JobProgress(max(step, milestone), total, speed, milestone >= total)


def _running_elsewhere(plan: Plan) -> set[str]:
    """The jobs a campaign in another process is running: while it holds the lock, those whose log
    moved in the last RUNNING_SECONDS."""
    lock = plan.runs / ".lock"
    if not lock.exists():
        return set()
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return set()
        except BlockingIOError:
            pass
    recent = time.time() - RUNNING_SECONDS
    logs = {job: plan.runs / job / LOG for job in plan.jobs}
    return {job for job, log in logs.items() if log.exists() and log.stat().st_mtime > recent}


RUNNING_SECONDS = 300


def status_table(plan: Plan, running: set[str] | None = None) -> str:
    """Per job: state, steps done/total, steps per hour (recent), ETA."""
    running = _running_elsewhere(plan) if running is None else running
    rows = [
        f"campaign {plan.name}  ({plan.path})",
        f"{'job':28s} {'state':8s} {'steps':>17s} {'steps/h':>9s} {'ETA':>8s}  held-out loss (fall over the last 20%)",
    ]
    infos = {job: progress(plan, job) for job in plan.jobs}
    done = {job for job, info in infos.items() if info.done}
    for job, info in infos.items():
        if info.done:
            state = "done"
        elif job in running:
            state = "running"
        elif all(dependency in done for dependency in plan.jobs[job].after):
            state = "ready"
        else:
            state = "waiting"
        speed = f"{info.steps_per_hour:,.0f}" if info.steps_per_hour else "-"
        eta = f"{info.eta_hours:.1f} h" if info.eta_hours is not None else "-"
        steps = f"{info.step:,}/{info.total:,}"
        rows.append(f"{job:28s} {state:8s} {steps:>17s} {speed:>9s} {eta:>8s}  {heldout_summary(plan, job)}")
    return "\n".join(rows)


class _Lock:
    """An exclusive lock on the plan's run folder: a second campaign on it refuses to start."""

    def __init__(self, runs: Path) -> None:
        runs.mkdir(parents=True, exist_ok=True)
        self.path = runs / ".lock"
        self.handle = open(self.path, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise CampaignError(f"another campaign is running on {runs} (lock {self.path})") from None

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def run_campaign(plan: Plan, cores: int, minutes: float = 0.0, max_steps: int = 0, show: bool = True) -> int:
    """Run every job of the plan that is not done, as many at once as there are cores (dependencies
    first), until all are done, a signal stops them, `minutes` pass, or each ran `max_steps` steps.

    Returns 0 when every job is done, 3 when stopped with checkpoints and milestones written, 1 when a job failed.
    """
    from tqdm import tqdm

    lock = _Lock(plan.runs)
    deadline = time.time() + minutes * 60 if minutes else float("inf")
    running: dict[str, tuple[subprocess.Popen, int]] = {}
    finished: set[str] = {job for job in plan.jobs if progress(plan, job).done}
    stopped: set[str] = set()
    failed: dict[str, int] = {}
    signalled: list[int] = []
    signalled_jobs: set[str] = set()
    previous = {s: signal.signal(s, lambda signum, frame: signalled.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    bars = {
        job: tqdm(total=plan.jobs[job].steps, desc=job, position=i, disable=not show, leave=True)
        for i, job in enumerate(plan.jobs)
    }
    try:
        while True:
            for job, (process, _) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[job]
                if code == 0:
                    finished.add(job)
                elif code == STOPPED:
                    stopped.add(job)
                elif code == -signal.SIGTERM and job in signalled_jobs:
                    # stopped by our signal before it could write its own (while starting): keep its last checkpoint
                    checkpoint = plan.runs / job / CHECKPOINT
                    if checkpoint.exists():
                        write_milestone(plan, job, checkpoint)
                    stopped.add(job)
                else:
                    failed[job] = code
                    lines = (plan.runs / job / STDERR).read_text().strip().splitlines() or ["(no message)"]
                    print(f"job {job} failed (exit {code}): {lines[-1]}", file=sys.stderr)
            out_of_time = bool(signalled) or time.time() > deadline
            ready = [
                job
                for job in plan.jobs
                if job not in finished | set(running) | set(failed)
                and not (max_steps and job in stopped)
                and all(dependency in finished for dependency in plan.jobs[job].after)
            ]
            if out_of_time:
                ready = []
            share = max(1, cores // max(1, min(cores, len(running) + len(ready))))
            for job, (process, threads) in running.items():
                if threads > share and ready:
                    process.send_signal(signal.SIGTERM)  # restarted below with its share of the cores
                    signalled_jobs.add(job)
                    stopped.discard(job)
            for job in ready[: max(0, cores - len(running))]:
                command = [sys.executable, "-m", "codec.training.campaign", "job", str(plan.path), job]
                command += ["--threads", str(share), "--deadline", str(deadline), "--max-steps", str(max_steps)]
                (plan.runs / job).mkdir(parents=True, exist_ok=True)
                with open(plan.runs / job / STDERR, "a") as errors:
                    running[job] = (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors), share)
                stopped.discard(job)
            if out_of_time:
                for job, (process, _) in running.items():
                    process.send_signal(signal.SIGTERM)
                    signalled_jobs.add(job)
            for job, bar in bars.items():
                info = progress(plan, job)
                bar.n = info.step
                bar.set_postfix_str(f"{info.steps_per_hour:,.0f} steps/h" if info.steps_per_hour else "", refresh=True)
            if not running and (out_of_time or not ready):
                break
            time.sleep(POLL_SECONDS)
    finally:
        for process, _ in running.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in running.values():
            process.wait()
        for bar in bars.values():
            bar.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        (plan.runs / "status.txt").write_text(status_table(plan, running=set()) + "\n")
        lock.release()
    if failed:
        return 1
    return 0 if finished == set(plan.jobs) else STOPPED


def exported_job(plan: Plan, job: str) -> Path:
    """The exported model file of a finished job: its run's, or made from its milestone on a fresh clone."""
    import torch

    from codec.model_file import export_model
    from codec.training.config import TrainConfig
    from codec.training.loop import Schedule, describe_history, model_from_checkpoint, precision_history

    path = plan.runs / job / EXPORTED
    if path.exists():
        return path
    if not progress(plan, job).done:
        raise CampaignError(f"job {job!r} of {plan.path} is not done")
    config = TrainConfig(**plan.jobs[job].fields)
    saved = torch.load(plan.milestone(job), map_location="cpu", weights_only=True)
    model = model_from_checkpoint(config, saved)
    path.parent.mkdir(parents=True, exist_ok=True)
    drop = Schedule(config, saved.get("plateau_at")).drop
    record = {"training": saved["config"], "steps_run": saved["step"], "lr_drop_from": math.ceil(drop),
              "wall_seconds": round(saved["elapsed"], 1), "machine": describe_history(saved.get("machines", [])),
              "precision": describe_history(precision_history(saved)), "from": str(plan.milestone(job))}
    export_model(model, path, record)
    return path


def export_state(plan: Plan, target: Path) -> None:
    """Copy the plan's milestones and logs to `target` (how a lent GPU machine brings them back)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(plan.state.glob("*")):
        shutil.copyfile(path, target / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="campaign", description="Run a training campaign plan (see codec/training/campaign.py).")
    parser.add_argument("plan", help="the plan's TOML file")
    parser.add_argument("--status", action="store_true", help="print each job's steps, speed and ETA, and start nothing")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="jobs at once, one core each (default: all cores)")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop every job (checkpoints and milestones written) after this long")
    parser.add_argument("--max-steps", type=int, default=0, help="stop each job after this many more steps")
    parser.add_argument("--export", type=Path, help="afterwards, copy the milestones here (e.g. $OUT on a lent GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["job"]:
        return _job_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        plan = load_plan(args.plan)
        if args.status:
            _print_to_pipe(status_table(plan))
            return 0
        code = run_campaign(plan, args.cores, args.minutes, args.max_steps, show=not args.quiet)
    except CampaignError as error:
        print(f"campaign: {error}", file=sys.stderr)
        return 2
    if args.export:
        export_state(plan, args.export)
    print(status_table(plan))
    return code


def _print_to_pipe(text: str) -> None:
    """Print `text`; a reader that stops early (`--status | head`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit


def _job_main(argv: list[str]) -> int:
    signalled_early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):  # before the slow imports: run_job installs its own
        signal.signal(signum, lambda number, frame: signalled_early.append(number))
    parser = argparse.ArgumentParser(prog="campaign job")
    parser.add_argument("plan")
    parser.add_argument("job")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=float("inf"))
    parser.add_argument("--max-steps", type=int, default=0)
    args = parser.parse_args(argv)
    return run_job(load_plan(args.plan), args.job, args.threads, args.deadline, args.max_steps, signalled_early)


if __name__ == "__main__":
    sys.exit(main())

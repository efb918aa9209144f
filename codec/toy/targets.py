"""The toy study's targets (issue 17 and paper 004) checked on the committed curves, as a table.

A learned curve counts only when trained for the study's step count (its file's `steps`); curves
trained for another length (`results/toy/steps-1500/`) are history, not evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


class StaleCurve(Exception):
    """A learned curve trained for another step count than the study's."""


def load_points(folder: Path, source: str, name: str, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bpd, psnr) of `<source>_<name>.json`, sorted by rate. With `steps`, a learned curve (one
    with per-seed values) trained for another number of steps raises StaleCurve."""
    data = json.loads((Path(folder) / f"{source}_{name}.json").read_text())
    if steps is not None and "seeds" in data and data.get("steps") != steps:
        raise StaleCurve(f"{data.get('steps')} steps")
    results = data["results"]
    order = np.argsort(results["bpd"])
    return np.asarray(results["bpd"])[order], np.asarray(results["psnr"])[order]


def psnr_differences(folder: Path, source: str, test: str, anchor: str, rates: tuple[float, float] = (0.0, np.inf),
                     steps: int | None = None) -> np.ndarray:
    """PSNR of `test` minus the anchor's PSNR at the same rate (linear interpolation of the anchor),
    at each of the test curve's points inside the anchor's rate range and inside `rates` (bpd)."""
    rate, quality = load_points(folder, source, test, steps)
    anchor_rate, anchor_quality = load_points(folder, source, anchor, steps)
    inside = (rate >= max(anchor_rate.min(), rates[0])) & (rate <= min(anchor_rate.max(), rates[1]))
    return quality[inside] - np.interp(rate[inside], anchor_rate, anchor_quality)


@dataclass(frozen=True)
class Target:
    source: str
    test: str
    """the curve measured"""
    anchor: str
    """the curve it is measured against, at equal rate"""
    statistic: str
    """a key of STATISTICS, over the PSNR differences"""
    goal: str
    """the goal in words, as the issue states it"""
    check: Callable[[np.ndarray], bool] | None = None
    """whether the differences meet the goal; None for a comparison without a goal"""
    rates: tuple[float, float] = (0.0, np.inf)
    """only the test curve's points in this rate range (bpd) count"""


def _targets_of_both_rate_gradients() -> list[Target]:
    """Issue 17's targets, each for ours with the mixture and with the sphere rate gradient (the
    study decides between them by these measurements)."""
    goals = [
        ("gaussian", "ours-1d", "ecvq", "max |dB|", "within 0.1 dB of ECVQ from 0.5 to 4 bpd", lambda d: np.abs(d).max() <= 0.1, (0.5, 4.0)),
        ("boomerang", "ours-2d", "uq-aun", "mean dB", ">= +0.3 dB over uq-aun on average", lambda d: d.mean() >= 0.3, (0.0, np.inf)),
        ("boomerang", "ours-1d", "uq-aun", "mean dB", "within 0.2 dB of uq-aun", lambda d: d.mean() >= -0.2, (0.0, np.inf)),
        ("laplace", "ours-4d", "uq-aun", "min dB", ">= +0.2 dB over uq-aun at every rate >= 2 bpd", lambda d: d.min() >= 0.2, (2.0, np.inf)),
        ("laplace", "ours-1d", "uq-aun", "mean dB", "within 0.2 dB of uq-aun", lambda d: d.mean() >= -0.2, (0.0, np.inf)),
    ]
    return [
        Target(source, test + suffix, anchor, statistic, goal, check, rates)
        for source, test, anchor, statistic, goal, check, rates in goals
        for suffix in ("", "-sphere")
    ]


TARGETS = [
    *_targets_of_both_rate_gradients(),
    Target("gaussian", "ours-1d", "uq-aun", "mean dB", "very close to uq-aun (paper)"),
    Target("gaussian", "vq-ste-1d", "uq-aun", "mean dB", "1-D VQ-STE against scalar quantization"),
    Target("boomerang", "vq-ste-1d", "uq-aun", "mean dB", "below uq-aun (paper)", lambda d: d.mean() < 0.0),
    Target("laplace", "vq-ste-1d", "uq-aun", "mean dB", "1-D VQ-STE against scalar quantization"),
    Target("boomerang", "vq-ste-2d", "ours-2d", "mean dB", "below ours-2d (paper)", lambda d: d.mean() < 0.0),
    Target("laplace", "vq-ste-4d", "ours-4d", "mean dB", "below ours-4d (paper)", lambda d: d.mean() < 0.0),
    Target("laplace", "ours-4d", "d4-lattice-32768", "mean dB", "against the untrained D4 lattice of as many codewords"),
    *(Target(source, f"{name}-sphere", name, "mean dB", "sphere against mixture rate gradient")
      for source, name in [("gaussian", "ours-1d"), ("boomerang", "ours-1d"), ("boomerang", "ours-2d"), ("laplace", "ours-1d"), ("laplace", "ours-4d")]),
]


def dominated_points(folder: Path, source: str, name: str) -> list[tuple[float, float]]:
    """The (bpd, PSNR) points of a curve that spend more bits for fewer dB than a cheaper point of
    the same curve (a monotone curve has none; a collapsed point is one)."""
    rate, quality = load_points(folder, source, name)
    return [(float(r), float(q)) for index, (r, q) in enumerate(zip(rate, quality)) if index and q < quality[:index].max()]


def monotone_table(folder: Path) -> str:
    """A markdown table: every learned curve (a file with per-seed values) and its dominated points."""
    lines = ["| curve | points | seeds | dominated points (bpd, dB) |", "|---|---|---|---|"]
    for path in sorted(Path(folder).glob("*_*.json")):
        data = json.loads(path.read_text())
        if "seeds" not in data:
            continue
        source, name = path.stem.split("_", 1)
        dominated = dominated_points(folder, source, name)
        listed = ", ".join(f"({r:.3f}, {q:.2f})" for r, q in dominated) or "none"
        lines.append(f"| {path.stem} | {len(data['results']['bpd'])} | {len(data['seeds'])} | {listed} |")
    return "\n".join(lines) + "\n"


STATISTICS = {"max |dB|": lambda d: np.abs(d).max(), "mean dB": np.mean, "min dB": np.min}


def target_table(folder: Path, steps: int) -> str:
    """A markdown table: each target, the measured statistic over the PSNR differences, and whether
    it is met; a target whose curves are missing or trained for another length than `steps` says so."""
    lines = [
        "| source | curve | against | statistic | measured | points | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in TARGETS:
        row = f"| {target.source} | {target.test} | {target.anchor} | {target.statistic} |"
        try:
            differences = psnr_differences(folder, target.source, target.test, target.anchor, target.rates, steps)
        except FileNotFoundError:
            lines.append(f"{row} not run | 0 | {target.goal} | - |")
            continue
        except StaleCurve as stale:
            lines.append(f"{row} not run at {steps} steps (only {stale}) | 0 | {target.goal} | - |")
            continue
        if not len(differences):
            lines.append(f"{row} no overlap | 0 | {target.goal} | - |")
            continue
        value = STATISTICS[target.statistic](differences)
        met = "-" if target.check is None else ("yes" if target.check(differences) else "no")
        lines.append(f"{row} {value:+.3f} | {len(differences)} | {target.goal} | {met} |")
    return "\n".join(lines) + "\n"


FINDINGS = "## Findings"
"""The heading of targets.md's hand-written part: what the measured gaps are and why, kept when the
tables above it are generated again."""


def write_targets(folder: Path, steps: int) -> Path:
    """`folder`/targets.md: the target and monotonicity tables from the curves in `folder`, followed by
    the file's own FINDINGS section as it was (written by hand from RECIPE.md's evidence)."""
    path = Path(folder) / "targets.md"
    previous = path.read_text() if path.exists() else ""
    findings = previous[previous.index(FINDINGS):] if FINDINGS in previous else ""
    path.write_text(
        "# Toy-study targets\n\nPSNR differences at equal rate (test minus anchor, anchor interpolated "
        "linearly in bpd), from the JSON files beside this one.\n\n" + target_table(folder, steps)
        + "\n## Monotone curves\n\nNo point may spend more bits for fewer dB than a cheaper point of its curve.\n\n"
        + monotone_table(folder) + ("\n" + findings if findings else "")
    )
    return path

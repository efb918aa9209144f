"""The toy study's targets (issue text and paper 004) checked on the committed curves, as a table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_points(folder: Path, source: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(bpd, psnr) of `<source>_<name>.json`, sorted by rate."""
    results = json.loads((Path(folder) / f"{source}_{name}.json").read_text())["results"]
    order = np.argsort(results["bpd"])
    return np.asarray(results["bpd"])[order], np.asarray(results["psnr"])[order]


def psnr_differences(folder: Path, source: str, test: str, anchor: str, at_least_bpd: float = 0.0) -> np.ndarray:
    """PSNR of `test` minus the anchor's PSNR at the same rate (linear interpolation of the anchor),
    at each of the test curve's points inside the anchor's rate range (and at >= `at_least_bpd`)."""
    rate, quality = load_points(folder, source, test)
    anchor_rate, anchor_quality = load_points(folder, source, anchor)
    inside = (rate >= anchor_rate.min()) & (rate <= anchor_rate.max()) & (rate >= at_least_bpd)
    return quality[inside] - np.interp(rate[inside], anchor_rate, anchor_quality)


TARGETS = [
    # (source, test, anchor, at least bpd, statistic, goal text, goal check)
    ("gaussian", "ours-1d", "ecvq", 0.0, "max |dB|", "within 0.1 dB of ECVQ at every point", lambda d: np.abs(d).max() <= 0.1),
    ("gaussian", "ours-1d", "uq-aun", 0.0, "mean dB", "very close to uq-aun (paper)", None),
    ("boomerang", "ours-1d", "uq-aun", 0.0, "mean dB", "at least matches uq-aun", lambda d: d.mean() >= 0.0),
    ("boomerang", "vq-ste-1d", "uq-aun", 0.0, "mean dB", "below uq-aun", lambda d: d.mean() < 0.0),
    ("boomerang", "vq-ste-1d", "ours-1d", 0.0, "mean dB", "below ours-1d", lambda d: d.mean() < 0.0),
    ("boomerang", "ours-2d", "uq-aun", 0.0, "mean dB", "above uq-aun", lambda d: d.mean() > 0.0),
    ("laplace", "ours-4d", "uq-aun", 2.0, "min dB", "above uq-aun by >= 0.2 dB at >= 2 bpd", lambda d: d.min() >= 0.2),
    ("laplace", "ours-1d", "uq-aun", 0.0, "mean dB", "on par with uq-aun", lambda d: abs(d.mean()) <= 0.1),
    ("gaussian", "ours-1d", "ours-1d-sphere", 0.0, "mean dB", "mixture vs sphere rate gradient", None),
    ("boomerang", "ours-1d", "ours-1d-sphere", 0.0, "mean dB", "mixture vs sphere rate gradient", None),
    ("boomerang", "ours-2d", "ours-2d-sphere", 0.0, "mean dB", "mixture vs sphere rate gradient", None),
    ("laplace", "ours-1d", "ours-1d-sphere", 0.0, "mean dB", "mixture vs sphere rate gradient", None),
    ("laplace", "ours-4d", "ours-4d-sphere", 0.0, "mean dB", "mixture vs sphere rate gradient", None),
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


def target_table(folder: Path) -> str:
    """A markdown table: each target, the measured statistic, and whether it is met."""
    lines = [
        "| source | curve | against | statistic | measured | points | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source, test, anchor, low, statistic, goal, check in TARGETS:
        try:
            differences = psnr_differences(folder, source, test, anchor, low)
        except FileNotFoundError:
            lines.append(f"| {source} | {test} | {anchor} | {statistic} | not run | 0 | {goal} | - |")
            continue
        if not len(differences):
            lines.append(f"| {source} | {test} | {anchor} | {statistic} | no overlap | 0 | {goal} | - |")
            continue
        value = STATISTICS[statistic](differences)
        met = "-" if check is None else ("yes" if check(differences) else "no")
        lines.append(f"| {source} | {test} | {anchor} | {statistic} | {value:+.3f} | {len(differences)} | {goal} | {met} |")
    return "\n".join(lines) + "\n"

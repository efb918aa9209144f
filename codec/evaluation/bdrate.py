"""Bjontegaard delta rate between two RD curves stored in CompressAI's result layout."""

from __future__ import annotations

import json
from pathlib import Path

METHODS = ("akima", "pchip", "cubic")
"""Interpolations of the BD-rate table, headline first: akima and pchip follow a short curve's points
without the overshoot of a cubic fit, which on 4-point curves gave +515% where akima gave +7.7%."""


def load_curve(path: Path, metric: str = "psnr-rgb") -> tuple[str, list[float], list[float]]:
    """(name, bpp, quality) of a result JSON, sorted by rate."""
    content = json.loads(Path(path).read_text())
    results = content["results"]
    points = sorted(zip(results["bpp"], results[metric]))
    return content.get("name", Path(path).stem), [p[0] for p in points], [p[1] for p in points]


def rd_front(rates: list[float], qualities: list[float]) -> tuple[list[float], list[float]]:
    """The points of a rate-sorted curve that no lower-rate point matches in quality.

    A point with more bits and no more quality than a cheaper one is never worth choosing, and the
    Bjontegaard interpolation needs quality to rise with rate, so BD-rates use this front.
    """
    front = [(rate, quality) for index, (rate, quality) in enumerate(zip(rates, qualities)) if quality > max(qualities[:index], default=float("-inf"))]
    return [rate for rate, _ in front], [quality for _, quality in front]


def bd_rate(anchor: Path, test: Path, method: str = "cubic", metric: str = "psnr-rgb") -> float:
    """Average bitrate difference in percent of `test` against `anchor` at equal quality (negative = better),
    over the two curves' RD fronts."""
    import bjontegaard

    rate_a, dist_a = rd_front(*load_curve(anchor, metric)[1:])
    rate_t, dist_t = rd_front(*load_curve(test, metric)[1:])
    return float(
        bjontegaard.bd_rate(rate_a, dist_a, rate_t, dist_t, method=method, require_matching_points=False, min_overlap=0.0)
    )


def bd_rate_table(anchor: Path, tests: list[Path]) -> str:
    """A Markdown table: BD-rate of each test curve against `anchor` (each of METHODS), the PSNR range
    the two curves share (the only one a BD-rate averages over; "-" and "none" where they share no
    range, as a single point does), how many of the curve's points are on
    its RD front (the rest are dominated and left out), and the mean codebook utilization and
    perplexity over the curve's models where the file records them."""
    lines = [
        "| curve | " + " | ".join(f"BD-rate {method}" for method in METHODS)
        + " | PSNR range compared (dB) | points on the RD front | codebook utilization | perplexity |",
        "|---|" + "---|" * (len(METHODS) + 4),
    ]
    anchor_quality = rd_front(*load_curve(anchor)[1:])[1]
    for test in tests:
        name, rates, qualities = load_curve(test)
        quality = rd_front(rates, qualities)[1]
        low, high = max(anchor_quality[0], quality[0]), min(anchor_quality[-1], quality[-1])
        codebooks = json.loads(Path(test).read_text()).get("codebooks")
        usage = "-", "-"
        if codebooks:
            usage = tuple(f"{sum(c[key] for c in codebooks) / len(codebooks):.3g}" for key in ("utilization", "perplexity"))
        if low < high:
            deltas, overlap = " | ".join(f"{bd_rate(anchor, test, method):+.2f}%" for method in METHODS), f"{low:.2f}-{high:.2f}"
        else:  # a single point, or curves apart: no quality range to average over
            deltas, overlap = " | ".join("-" for _ in METHODS), "none"
        lines.append(f"| {name} | {deltas} | {overlap} | {len(quality)} of {len(qualities)} | {usage[0]} | {usage[1]} |")
    return "\n".join(lines) + "\n"

"""Bjontegaard delta rate between two RD curves stored in CompressAI's result layout."""

from __future__ import annotations

import json
from pathlib import Path

METHODS = ("cubic", "akima")


def load_curve(path: Path, metric: str = "psnr-rgb") -> tuple[str, list[float], list[float]]:
    """(name, bpp, quality) of a result JSON, sorted by rate."""
    content = json.loads(Path(path).read_text())
    results = content["results"]
    points = sorted(zip(results["bpp"], results[metric]))
    return content.get("name", Path(path).stem), [p[0] for p in points], [p[1] for p in points]


def bd_rate(anchor: Path, test: Path, method: str = "cubic", metric: str = "psnr-rgb") -> float:
    """Average bitrate difference in percent of `test` against `anchor` at equal quality (negative = better)."""
    import bjontegaard

    _, rate_a, dist_a = load_curve(anchor, metric)
    _, rate_t, dist_t = load_curve(test, metric)
    return float(
        bjontegaard.bd_rate(rate_a, dist_a, rate_t, dist_t, method=method, require_matching_points=False, min_overlap=0.0)
    )

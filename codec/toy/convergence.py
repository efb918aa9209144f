"""How long toy codecs train, read from the study's own runs: every member's held-out loss against steps.

Each stacked run logs each member's held-out loss (codec/toy/stack.py); `member_record` keeps of it
what the study reports per point: the smoothed loss every RECORD_EVERY steps, the step from which
the loss had settled before the learning-rate drop, and the loss's largest rise (how far the run
collapsed on its way). A run has settled at the first logged step t from which on every
logged step t' has a smoothed loss within TOLERANCE of the smoothed loss at 0.8 t' (the issue's
"less than 0.5% change over the last 20% of steps").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TOLERANCE = 0.005
SMOOTHING = 5
"""Log lines (100 steps each) averaged before comparing losses: the held-out loss jitters with Adam's steps."""
RECORD_EVERY = 500
"""Steps between the smoothed losses kept per point (results/toy/points.json)."""


def member_series(log: Path, key: str = "loss") -> tuple[np.ndarray, np.ndarray]:
    """(steps (T,), each member's held-out `key` (T, members): "loss", "bpd" or "psnr") from a stacked run's log."""
    lines = [json.loads(line) for line in Path(log).read_text().splitlines()]
    lines = [line for line in lines if "members" in line]
    return np.array([line["step"] for line in lines]), np.array([[m[key] for m in line["members"]] for line in lines])


def drawdown(psnr: np.ndarray) -> float:
    """The largest fall (dB) of a (T,) held-out PSNR series below the best it had reached before:
    how far a run collapsed on its way, whatever it reached at the end."""
    return float((np.maximum.accumulate(psnr) - psnr).max())


def smoothed(losses: np.ndarray, width: int = SMOOTHING) -> np.ndarray:
    """Trailing moving average along the steps (the first values average what there is)."""
    cumulative = np.cumsum(losses, axis=0)
    counts = np.minimum(np.arange(1, len(losses) + 1), width)[:, None]
    shifted = np.vstack([np.zeros((width, losses.shape[1])), cumulative])[: len(losses)]
    return (cumulative - shifted) / counts


def settled_step(steps: np.ndarray, losses: np.ndarray, tolerance: float = TOLERANCE) -> int | None:
    """For a (T,) loss series: the first logged step t from which on every logged step t' has a loss
    within `tolerance` (relative) of the loss at 0.8 t'; None if the last step does not."""
    settled = None
    for index in range(len(steps) - 1, -1, -1):
        earlier = np.searchsorted(steps, 0.8 * steps[index])
        if abs(losses[index] - losses[earlier]) > tolerance * abs(losses[index]):
            break
        settled = int(steps[index])
    return settled


def member_record(steps: np.ndarray, losses: np.ndarray, drop_step: int) -> dict:
    """What the study keeps of one member's (T,) held-out loss series: the smoothed loss every
    RECORD_EVERY steps, the settled step before the learning-rate drop at `drop_step` (None if the
    loss still moved), and the loss's largest rise above the lowest it had reached (bits per
    dimension: a collapse on the way; the PSNR's drawdown would also count the falls a low slope
    rightly makes while it trades quality for rate)."""
    loss = smoothed(losses[:, None])[:, 0]
    before = steps < drop_step
    keep = (steps % RECORD_EVERY == 0) | (steps == steps[-1])
    return {
        "settled_step": settled_step(steps[before], loss[before]) if before.any() else None,
        "loss_rise": round(drawdown(-losses), 4),
        "loss_steps": steps[keep].tolist(),
        "loss": np.round(loss[keep], 5).tolist(),
    }


def plot(runs: dict, folder: Path) -> list[Path]:
    """`<source>_convergence.png` per source from {source: {curve: [(slope, member_record)] * 3}} (the
    low, middle and high slope): the smoothed held-out loss against steps, a panel per slope, each
    curve's settled step marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    positions = ("low", "middle", "high")
    for source, curves in runs.items():
        figure, panels = plt.subplots(1, len(positions), figsize=(5 * len(positions), 4), dpi=110)
        for index, (panel, position) in enumerate(zip(panels, positions)):
            shown = []
            for (name, probes), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
                slope, record = probes[index]
                panel.plot(record["loss_steps"], record["loss"], color=colour, label=f"{name} (slope {slope:g})")
                if record["settled_step"] is not None:
                    panel.axvline(record["settled_step"], color=colour, linestyle=":", linewidth=1)
                shown += record["loss"][len(record["loss"]) // 10 :]
            margin = 0.05 * (max(shown) - min(shown) + 1e-3)
            panel.set_ylim(min(shown) - margin, max(shown) + margin)
            panel.set(title=f"{source}, {position} slope", xlabel="step", ylabel="held-out loss, bpd + slope * MSE")
            panel.grid(alpha=0.3)
            panel.legend(fontsize=7)
        figure.suptitle(f"seed 0; dotted: settled before the learning-rate drop (< {TOLERANCE:.1%} change over the last 20% of steps, {SMOOTHING}-log average)")
        figure.tight_layout()
        path = Path(folder) / f"{source}_convergence.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths

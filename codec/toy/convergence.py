"""How long toy codecs must train: held-out loss against steps at a low, middle and high slope.

One stacked run per source and curve trains the three slopes together for CONVERGENCE_STEPS with the
study's recipe; its log holds each member's held-out loss (codec/toy/stack.py). A run has converged
at the first logged step t whose smoothed loss differs by less than TOLERANCE from the smoothed loss
at 0.8 t (the issue's "less than 0.5% change over the last 20% of steps").
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from codec.toy import stack
from codec.toy.study import SLOPES, STUDY, ToyCurve
from codec.training.config import TrainConfig
from codec.training.run_folder import LOG

CONVERGENCE_STEPS = 40_000
TOLERANCE = 0.005
SMOOTHING = 5
"""Log lines (100 steps each) averaged before comparing losses: the held-out loss jitters with Adam's steps."""
RECORD_EVERY = 500
"""Steps between the smoothed losses kept in results/toy/convergence.json."""


def probe_slopes(source: str) -> list[float]:
    """The low, middle and high slope of a source's curves."""
    slopes = SLOPES[source]
    return [slopes[0], slopes[len(slopes) // 2], slopes[-1]]


def convergence_config(source: str, curve: ToyCurve, runs: Path, steps: int = CONVERGENCE_STEPS, seed: int = 0) -> TrainConfig:
    """The stacked run that measures a curve's convergence: its three probe slopes, one seed, the
    study's recipe with the learning-rate drop moved past the end (the loss is watched undropped)."""
    config = dataclasses.replace(curve.config(source, 1.0, steps, Path(runs) / f"{source}_{curve.name}"), lr_drop_at=1.0)
    return stack.stacked(config, [(curve.config(source, s, steps, Path(".")).lmbda, seed) for s in probe_slopes(source)])


def member_losses(log: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (T,), held-out losses (T, members)) from a stacked run's log."""
    lines = [json.loads(line) for line in Path(log).read_text().splitlines()]
    lines = [line for line in lines if "members" in line]
    return np.array([line["step"] for line in lines]), np.array([[m["loss"] for m in line["members"]] for line in lines])


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


def summary(runs: Path, sources: list[str]) -> dict:
    """Per source and curve with a convergence run: its slopes, and per slope the settled step and the
    smoothed held-out loss every RECORD_EVERY steps (what the figure draws)."""
    result = {}
    for source in sources:
        for curve in STUDY[source]:
            log = Path(runs) / f"{source}_{curve.name}" / LOG
            if not log.exists():
                continue
            steps, losses = member_losses(log)
            if not len(steps):
                continue
            smooth = smoothed(losses)
            keep = (steps % RECORD_EVERY == 0) | (steps == steps[-1])
            result.setdefault(source, {})[curve.name] = {
                "steps": steps[keep].tolist(),
                "slopes": {
                    f"{slope:g}": {"settled_step": settled_step(steps, smooth[:, m]), "loss": np.round(smooth[keep, m], 5).tolist()}
                    for m, slope in enumerate(probe_slopes(source))
                },
            }
    return result


def plot(summary: dict, folder: Path) -> list[Path]:
    """`<source>_convergence.png` per source: smoothed held-out loss against steps, a panel per slope,
    each curve's settled step marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for source, curves in summary.items():
        slopes = [f"{s:g}" for s in probe_slopes(source)]
        figure, panels = plt.subplots(1, len(slopes), figsize=(5 * len(slopes), 4), dpi=110)
        for panel, slope in zip(panels, slopes):
            for (name, data), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
                loss = np.asarray(data["slopes"][slope]["loss"])
                panel.plot(data["steps"], loss, color=colour, label=name)
                settled = data["slopes"][slope]["settled_step"]
                if settled is not None:
                    panel.axvline(settled, color=colour, linestyle=":", linewidth=1)
            low = min(min(d["slopes"][slope]["loss"][len(d["steps"]) // 10 :]) for d in curves.values())
            high = max(max(d["slopes"][slope]["loss"][len(d["steps"]) // 10 :]) for d in curves.values())
            panel.set_ylim(low - 0.05 * (high - low + 1e-3), high + 0.05 * (high - low + 1e-3))
            panel.set(title=f"{source}, slope {slope}", xlabel="step", ylabel="held-out loss, bpd + slope * MSE")
            panel.grid(alpha=0.3)
        panels[0].legend(fontsize=8)
        figure.suptitle(f"dotted: settled (< {TOLERANCE:.1%} change over the last 20% of steps, {SMOOTHING}-log average)")
        figure.tight_layout()
        path = Path(folder) / f"{source}_convergence.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths

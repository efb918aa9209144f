"""How long toy codecs must train: held-out loss against steps at a low, middle and high slope.

The curve's stacks (one, or one per slope for vq-ste) train the three slopes for CONVERGENCE_STEPS with
the study's recipe; their logs hold each member's held-out loss (codec/toy/stack.py). A run has settled
at the first logged step t from which on every logged step t' has a smoothed loss within TOLERANCE of
the smoothed loss at 0.8 t' (the issue's "less than 0.5% change over the last 20% of steps").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from codec.toy.study import STUDY, ToyCurve, curve_stacks
from codec.training.run_folder import LOG

CONVERGENCE_STEPS = 40_000
TOLERANCE = 0.005
SMOOTHING = 5
"""Log lines (100 steps each) averaged before comparing losses: the held-out loss jitters with Adam's steps."""
RECORD_EVERY = 500
"""Steps between the smoothed losses kept in results/toy/convergence.json."""


def probe_slopes(source: str, curve: ToyCurve) -> list[float]:
    """The low, middle and high slope of a curve (vq-ste's are scaled, ToyCurve.slope_scale)."""
    slopes = curve.slopes(source)
    return [slopes[0], slopes[len(slopes) // 2], slopes[-1]]


def convergence_stacks(source: str, curve: ToyCurve, runs: Path, steps: int = CONVERGENCE_STEPS, seed: int = 0):
    """The stacked runs that measure a curve's convergence, with their members' (slope, seed): its
    three probe slopes, one seed, the study's recipe with the learning-rate drop moved past the end
    (the loss is watched undropped)."""
    return curve_stacks(source, curve, probe_slopes(source, curve), steps, Path(runs) / f"{source}_{curve.name}", (seed,), {"lr_drop_at": 1.0})


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
    """Per source and curve with convergence runs: their steps, and per probe slope the settled step
    and the smoothed held-out loss every RECORD_EVERY steps (what the figure draws)."""
    result = {}
    for source in sources:
        for curve in STUDY[source]:
            series = {}
            for config, members in convergence_stacks(source, curve, runs):
                log = Path(config.out) / LOG
                steps, losses = member_losses(log) if log.exists() else (np.array([]), None)
                if len(steps):
                    series.update({slope: (steps, smoothed(losses)[:, m]) for m, (slope, _) in enumerate(members)})
            if len(series) < len(probe_slopes(source, curve)):
                continue
            steps = min((s for s, _ in series.values()), key=len)  # stacks of one curve may have logged unequally far
            keep = (steps % RECORD_EVERY == 0) | (steps == steps[-1])
            result.setdefault(source, {})[curve.name] = {
                "steps": steps[keep].tolist(),
                "slopes": {
                    f"{slope:g}": {"settled_step": settled_step(steps, loss[: len(steps)]), "loss": np.round(loss[: len(steps)][keep], 5).tolist()}
                    for slope, (_, loss) in series.items()
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
    positions = ("low", "middle", "high")
    for source, curves in summary.items():
        figure, panels = plt.subplots(1, len(positions), figsize=(5 * len(positions), 4), dpi=110)
        for index, (panel, position) in enumerate(zip(panels, positions)):
            shown = []
            for (name, data), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
                slope, probe = list(data["slopes"].items())[index]
                panel.plot(data["steps"], probe["loss"], color=colour, label=f"{name} (slope {slope})")
                if probe["settled_step"] is not None:
                    panel.axvline(probe["settled_step"], color=colour, linestyle=":", linewidth=1)
                shown += probe["loss"][len(data["steps"]) // 10 :]
            margin = 0.05 * (max(shown) - min(shown) + 1e-3)
            panel.set_ylim(min(shown) - margin, max(shown) + margin)
            panel.set(title=f"{source}, {position} slope", xlabel="step", ylabel="held-out loss, bpd + slope * MSE")
            panel.grid(alpha=0.3)
            panel.legend(fontsize=7)
        figure.suptitle(f"dotted: settled (< {TOLERANCE:.1%} change over the last 20% of steps, {SMOOTHING}-log average)")
        figure.tight_layout()
        path = Path(folder) / f"{source}_convergence.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths

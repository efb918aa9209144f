"""Figures of the toy study (paper 004, Figs. 2-4, 6-8): RD curves per source, the 1-D Gaussian
encoder-decoder mappings with their encoder gradients, and the Boomerang cells of ours-2d."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from codec.model_file import ExportedModel, load_exported
from codec.toy import study
from codec.toy.evaluate import code_and_reconstruct
from codec.data.sources import SOURCES
from codec.training.config import TrainConfig
from codec.training.methods import method
from entropy import bottleneck

GAUSSIAN_FIGURE_SLOPE = 3.5
BOOMERANG_FIGURE_SLOPE = 16.0
MAPPING_METHODS = ("uq-aun", "uq-ste", "vq-ste-1d", "ours-1d")
FIGURE_POINTS = [*(("gaussian", name, GAUSSIAN_FIGURE_SLOPE) for name in MAPPING_METHODS), ("boomerang", "ours-2d", BOOMERANG_FIGURE_SLOPE)]
"""(source, curve, slope) of the models (seed 0) that the mappings and the cells draw."""


def figure_stacks(runs: Path, steps: int = study.STEPS) -> list[tuple[TrainConfig, list]]:
    """The stacks that train the figures' models (`study.point_stack`), and the stacks those start from."""
    stacks = []
    for source, name, slope in FIGURE_POINTS:
        curve = study.named_curve(source, name)
        config, members = study.point_stack(source, curve, slope, steps, runs)
        start = study.start_stack(source, curve, members, steps, runs)
        stacks += [(config, members), *([start] if start else [])]
    return stacks


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rd_curves(folder: Path, source: str) -> Path:
    """Every `<source>_*.json` in `folder` on one PSNR-against-bpd plot; references dashed, the
    learned curves with the range of their seeds as error bars."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 5), dpi=120)
    learned_top = 0.0
    for path in sorted(folder.glob(f"{source}_*.json")):
        curve = json.loads(path.read_text())
        results = curve["results"]
        reference = curve["name"].startswith("rd-")
        style = {"linestyle": "--", "color": "gray" if "upper" in curve["name"] else "black"} if reference else {"marker": "o", "markersize": 3}
        line, = axes.plot(results["bpd"], results["psnr"], label=curve["name"], linewidth=1.2, **style)
        if not reference:
            learned_top = max(learned_top, *results["bpd"])
        if "psnr_per_seed" in results:  # the seeds' spread: from the lowest to the highest seed, on both axes
            bpd, psnr = np.asarray(results["bpd_per_seed"]), np.asarray(results["psnr_per_seed"])
            spread = lambda values, mean: np.stack([mean - values.min(axis=1), values.max(axis=1) - mean])
            axes.errorbar(results["bpd"], results["psnr"], xerr=spread(bpd, np.asarray(results["bpd"])),
                          yerr=spread(psnr, np.asarray(results["psnr"])), fmt="none", ecolor=line.get_color(), elinewidth=0.8, capsize=2)
    axes.set_xlabel("rate (bits per dimension)")
    axes.set_ylabel("-10 log10(MSE per dimension) (dB)")
    axes.set_title(f"{source}: rate-distortion")
    axes.set_xlim(0, max(5.0, np.ceil(learned_top + 0.25)))  # every learned point shows; references run on
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    out = folder / f"{source}_rd.png"
    figure.savefig(out)
    plt.close(figure)
    return out


def encoder_gradient(exported: ExportedModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, dL/dy per sample): the gradient the model's own training method sends into the encoder output.

    One training step with learning rate 0 runs on a copy; a hook on the analysis transform keeps
    the gradient of the last output that takes part in the encoder's loss.
    """
    config = TrainConfig(**exported.record["training"])
    model = copy.deepcopy(exported.model).float().train()
    optimizers = method(config.method).optimizers(model, config)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = 0.0
    captured: list[torch.Tensor] = []

    def keep_gradient(module, inputs, output):
        if output.requires_grad:
            output.register_hook(lambda gradient: captured.append(gradient.detach().clone()))

    handle = model.g_a.register_forward_hook(keep_gradient)
    try:
        method(config.method).step(model, x, optimizers, config)
    finally:
        handle.remove()
    with torch.no_grad():
        y = model.analysis(x)
    return y.flatten(), captured[-1].flatten() * len(x)


@torch.no_grad()
def analytical_encoder_gradient(exported: ExportedModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, l(y + 1/2) - l(y - 1/2) per sample) of a 1-D uq-aun model: paper 004's Eq. 5, the expected
    encoder gradient under additive uniform noise, with l(t) = -log2 p(t) + lambda 255^2 (x - g_s(t))^2
    the per-sample loss of the noisy latent t (p: the entropy model's likelihood of t's unit interval)."""
    model = exported.model.float()
    lmbda = exported.record["training"]["lmbda"]
    y = model.analysis(x)

    def loss(t: torch.Tensor) -> torch.Tensor:
        probability = model.entropy_bottleneck.likelihood_lower_bound(bottleneck.likelihoods(model.entropy_bottleneck, t.reshape(1, -1)))
        return -torch.log2(probability).flatten() + lmbda * 255.0**2 * ((x - model.synthesis(t)) ** 2).flatten()

    return y.flatten(), loss(y + 0.5) - loss(y - 0.5)


def _binned_mean(y: torch.Tensor, values: torch.Tensor, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, mean of `values` per bin of y) over the bins of `edges` that hold samples."""
    which = np.clip(np.digitize(y.numpy(), edges) - 1, 0, len(edges) - 2)
    sums = np.bincount(which, weights=values.numpy(), minlength=len(edges) - 1)
    counts = np.bincount(which, minlength=len(edges) - 1)
    middle = (edges[1:] + edges[:-1]) / 2
    return middle[counts > 0], sums[counts > 0] / counts[counts > 0]


def plot_gaussian_mappings(folder: Path, runs: Path, steps: int = study.STEPS, slope: float = GAUSSIAN_FIGURE_SLOPE) -> Path:
    """Per method: x -> x_hat with the quantization boundaries (blue) and centres (orange), and the
    encoder gradient averaged in bins of y (paper Figs. 2, 3, 4, 6), for uq-aun with Eq. 5 over it."""
    plt = _pyplot()
    figure, axes = plt.subplots(2, len(MAPPING_METHODS), figsize=(4 * len(MAPPING_METHODS), 7), dpi=110)
    x = torch.linspace(-3, 3, 6001).reshape(-1, 1, 1, 1)
    samples = SOURCES["gaussian"](200_000, torch.Generator().manual_seed(5)).reshape(-1, 1, 1, 1)
    for column, name in enumerate(MAPPING_METHODS):
        exported = load_exported(study.train_point("gaussian", study.named_curve("gaussian", name), slope, steps, runs))
        latents, symbols, x_hat = code_and_reconstruct(exported.model, x)
        latents, symbols, x_hat, grid = (t.flatten().numpy() for t in (latents, symbols, x_hat, x))
        changes = np.nonzero(np.diff(symbols))[0]
        top = axes[0, column]
        top.plot(grid, x_hat, color="black", linewidth=1)
        for index in changes:
            top.axvline((grid[index] + grid[index + 1]) / 2, color="tab:blue", linewidth=0.6)
        centres = np.unique(x_hat)
        top.plot(centres, centres, "o", color="tab:orange", markersize=3)
        top.set_title(f"{name}: x -> x_hat")
        top.set_xlabel("x")
        y, gradient = encoder_gradient(exported, samples)
        edges = np.linspace(float(y.min()), float(y.max()), 121)
        bottom = axes[1, column]
        bottom.plot(*_binned_mean(y, gradient, edges), color="black", linewidth=1, label="sampled")
        if name == "uq-aun":
            bottom.plot(*_binned_mean(*analytical_encoder_gradient(exported, samples), edges), color="tab:red",
                        linestyle="--", linewidth=1, label="analytical (Eq. 5)")
            bottom.legend(fontsize=7)
        for index in changes:
            bottom.axvline((latents[index] + latents[index + 1]) / 2, color="tab:blue", linewidth=0.6)
        bottom.set_title(f"{name}: mean encoder gradient")
        bottom.set_xlabel("y")
    figure.suptitle(f"1-D Gaussian, slope {slope:g} (loss = bpd + slope * MSE)")
    figure.tight_layout()
    out = folder / "gaussian_mappings.png"
    figure.savefig(out)
    plt.close(figure)
    return out


def plot_boomerang_cells(folder: Path, runs: Path, steps: int = study.STEPS, slope: float = BOOMERANG_FIGURE_SLOPE) -> Path:
    """Quantization cells of ours-2d in the source space, with samples and reconstruction points (paper Fig. 7)."""
    plt = _pyplot()
    model = load_exported(study.train_point("boomerang", study.named_curve("boomerang", "ours-2d"), slope, steps, runs)).model
    samples = SOURCES["boomerang"](3000, torch.Generator().manual_seed(5))
    low, high = np.quantile(samples.numpy(), [0.002, 0.998], axis=0)  # the cells where samples fall, not the far tail's few
    a, b = np.meshgrid(np.linspace(low[0] - 0.5, high[0] + 0.5, 700), np.linspace(low[1] - 0.5, high[1] + 0.5, 400), indexing="xy")
    grid = torch.from_numpy(np.stack([a.ravel(), b.ravel()], 1)).float().reshape(-1, 2, 1, 1)
    _, symbols, _ = code_and_reconstruct(model, grid)
    cells = symbols[0].numpy().reshape(a.shape)
    shuffled = np.random.default_rng(0).permutation(int(cells.max()) + 1)[cells]
    _, _, reconstruction = code_and_reconstruct(model, samples.reshape(-1, 2, 1, 1))
    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=120)
    axes.imshow(shuffled, extent=(a.min(), a.max(), b.min(), b.max()), origin="lower", cmap="tab20", alpha=0.45, aspect="auto")
    axes.scatter(samples[:, 0], samples[:, 1], s=1, color="black", alpha=0.3)
    centres = torch.unique(reconstruction.reshape(-1, 2), dim=0)
    axes.plot(centres[:, 0], centres[:, 1], "o", color="tab:orange", markersize=3)
    axes.set_xlim(a.min(), a.max())
    axes.set_ylim(b.min(), b.max())
    axes.set_title(f"Boomerang: cells and reconstructions of ours-2d (slope {slope:g})")
    axes.set_xlabel("x1")
    axes.set_ylabel("x2")
    figure.tight_layout()
    out = folder / "boomerang_cells.png"
    figure.savefig(out)
    plt.close(figure)
    return out


def _curves_at_steps(folder: Path, source: str, steps: int) -> bool:
    """Whether every curve that `source`'s model figure shows was measured at `steps` training steps."""
    files = [folder / f"{source}_{name}.json" for s, name, _ in FIGURE_POINTS if s == source]
    return all(f.exists() and json.loads(f.read_text()).get("steps") == steps for f in files)


def due_points(folder: Path, steps: int = study.STEPS) -> list[tuple[str, str, float]]:
    """The FIGURE_POINTS that `draw_all` draws: those of the figures whose curves are all measured at `steps`."""
    return [point for point in FIGURE_POINTS if _curves_at_steps(folder, point[0], steps)]


def draw_all(folder: Path, runs: Path, steps: int = study.STEPS) -> list[Path]:
    """Every figure whose curves exist; the mappings and cells only once the curves they show were
    trained for `steps` (the study's), training their models (seed 0) where `runs` lacks them."""
    drawn = [plot_rd_curves(folder, source) for source in study.STUDY if any(folder.glob(f"{source}_*.json"))]
    if _curves_at_steps(folder, "gaussian", steps):
        drawn.append(plot_gaussian_mappings(folder, runs, steps))
    if _curves_at_steps(folder, "boomerang", steps):
        drawn.append(plot_boomerang_cells(folder, runs, steps))
    return drawn

"""RD plots (bpp against PSNR) from result JSONs."""

from __future__ import annotations

from pathlib import Path

from codec.evaluation.bdrate import load_curve


def plot_rd(curves: list[Path], out: Path, title: str = "Kodak", metric: str = "psnr-rgb", max_bpp: float | None = None) -> None:
    """One line per result file, written as a PNG; with `max_bpp`, only the points up to that rate
    (the axes then zoom onto the low rates, where CPU-scale curves live)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5), dpi=120)
    colors = plt.get_cmap("tab20").colors  # 20 distinct colours: a full comparison has more than the default 10
    for index, path in enumerate(curves):
        name, rate, quality = load_curve(path, metric)
        kept = [(r, q) for r, q in zip(rate, quality) if max_bpp is None or r <= max_bpp]
        if not kept:
            continue
        rate, quality = zip(*kept)
        dashed = "reference" in Path(path).parts
        axes.plot(rate, quality, "--" if dashed else "-", marker=None if dashed else "o", markersize=3, label=name,
                  color=colors[index % len(colors)])
    axes.set_xlabel("bits per pixel (real files)")
    axes.set_ylabel("PSNR-RGB (dB)" if metric == "psnr-rgb" else metric)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)

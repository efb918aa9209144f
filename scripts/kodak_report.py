"""Draw the Kodak RD plots and write results/kodak/bdrate.md from the result JSONs there.

Plots: rd.png (every curve, baselines and published references), rd-low-rate.png (the same up to
1 bpp) and rd-quantizers.png (the recipe's curves alone).

The tables give every learned curve and HEVC against the uq-aun anchor, like paper 004's Table 1;
every learned curve against the published factorized model (CompressAI's, in
results/kodak/reference/) and HEVC against published BPG; and every learned curve against WebP, the
classical codec a shipped default must beat.

    python scripts/kodak_report.py [--folder results/kodak]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codec.evaluation.bdrate import bd_rate_table
from codec.evaluation.plots import plot_rd
from codec.training.recipe import CURVES

BASELINES = ("hevc-444", "jpeg", "webp")


def report(folder: Path, curves: list[str], baselines: Path, command: str) -> None:
    """rd.png, rd-low-rate.png, rd-quantizers.png and bdrate.md in `folder`, from its `<curve>.json`
    files (the anchor `uq-aun.json` among them, once it exists) and the baselines and published references in `baselines`."""
    references = baselines / "reference"
    learned = [folder / f"{name}.json" for name in curves if (folder / f"{name}.json").exists()]
    others = [baselines / f"{name}.json" for name in BASELINES if (baselines / f"{name}.json").exists()]
    published = sorted(references.glob("*.json"))
    hevc = [path for path in others if path.stem == "hevc-444"]
    plot_rd(learned + others + published, folder / "rd.png", title="Kodak (real files)")
    plot_rd(learned + others + published, folder / "rd-low-rate.png", title="Kodak (real files), up to 1 bpp", max_bpp=1.0)
    plot_rd(learned, folder / "rd-quantizers.png", title="Kodak (real files): the quantizers under one recipe")
    anchor = folder / "uq-aun.json"
    webp = [path for path in others if path.stem == "webp"]
    against_anchor = (  # a campaign reports its finished curves before its anchor is done
        bd_rate_table(anchor, [c for c in learned if c != anchor] + hevc) if anchor.exists() else "Not yet: no uq-aun.json here.\n"
    )
    sections = [
        f"# Kodak BD-rates\n\nFrom the result JSONs beside this file (`{command}`); "
        "negative = fewer bits than the anchor at equal PSNR-RGB.\n",
        "## Against our uq-aun anchor (paper 004, Table 1)\n\n" + against_anchor,
        "## Our curves against the published factorized model, and HEVC against BPG\n\n"
        + bd_rate_table(references / "bmshj2018-factorized.json", learned)
        + ("\n" + bd_rate_table(references / "bpg444.json", hevc) if hevc else ""),
    ]
    if webp:  # the bar a shipped default must clear: fewer bits than WebP at equal PSNR
        sections.append("## Our curves against WebP\n\n" + bd_rate_table(webp[0], learned))
    (folder / "bdrate.md").write_text("\n".join(sections))
    print(f"wrote rd.png, rd-low-rate.png, rd-quantizers.png and bdrate.md in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path("results/kodak"))
    args = parser.parse_args()
    report(args.folder, list(CURVES), args.folder, "python scripts/kodak_report.py")


if __name__ == "__main__":
    main()

"""Evaluation tooling: real-file measurements, baselines, BD-rate, plots, result files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.cli import main
from codec.evaluation.baselines import HevcIntra, PillowCodec
from codec.evaluation.bdrate import METHODS, bd_rate, bd_rate_table
from codec.evaluation.plots import plot_rd
from codec.evaluation.rd import measure
from codec.models import psnr
from tests.helpers import random_image


def write_curve(path, bpp, quality, name="curve"):
    path.write_text(json.dumps({"name": name, "description": "", "results": {"bpp": bpp, "psnr-rgb": quality}}))
    return path


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(random_image(64, 48, seed=2)).save(path)
    return path


def test_measure_counts_the_whole_file_and_compares_decoded_pixels(photo):
    codec = PillowCodec("JPEG", 80)
    result = measure(codec, photo)
    pixels = np.asarray(Image.open(photo))
    data = codec.encode(pixels)
    assert result.file_bytes == len(data) and result.bpp == pytest.approx(8 * len(data) / (64 * 48))
    mse = np.mean((codec.decode(data).astype(float) - pixels) ** 2)
    assert result.psnr_rgb == pytest.approx(psnr(mse, 255.0))
    assert result.ms_ssim is None  # too small for five MS-SSIM scales


def test_hevc_round_trip_gets_better_with_lower_qp(photo):
    pixels = np.asarray(Image.open(photo))
    coarse, fine = measure(HevcIntra(42), photo), measure(HevcIntra(17), photo)
    assert HevcIntra(17).decode(HevcIntra(17).encode(pixels)).shape == pixels.shape
    assert fine.psnr_rgb > coarse.psnr_rgb and fine.bpp > coarse.bpp


def test_bd_rate_of_a_uniformly_cheaper_curve(tmp_path):
    rates, quality = [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0]
    anchor = write_curve(tmp_path / "a.json", rates, quality)
    cheaper = write_curve(tmp_path / "b.json", [0.9 * r for r in rates], quality)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    for method in METHODS:
        assert bd_rate(anchor, cheaper, method) == pytest.approx(-10.0, abs=1e-6)


def test_bd_rate_table_lists_each_curve_with_its_shared_range_and_codebook_usage(tmp_path):
    rates, quality = [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0]
    anchor = write_curve(tmp_path / "a.json", rates, quality)
    cheaper = write_curve(tmp_path / "b.json", [0.8 * r for r in rates[:3]], quality[:3])
    content = json.loads(cheaper.read_text())
    content["codebooks"] = [{"utilization": 0.5, "perplexity": 10.0}, {"utilization": 1.0, "perplexity": 30.0}]
    cheaper.write_text(json.dumps(content))
    rows = bd_rate_table(anchor, [anchor, cheaper]).splitlines()[2:]
    assert rows[0].split(" | ")[1:] == ["+0.00%"] * 3 + ["28.00-37.00", "4 of 4", "-", "- |"]
    assert rows[1].split(" | ")[1:] == ["-20.00%"] * 3 + ["28.00-34.00", "3 of 3", "0.75", "20 |"]
    single = write_curve(tmp_path / "c.json", [0.5], [32.0])
    apart = write_curve(tmp_path / "d.json", [2.0, 3.0], [38.0, 40.0])
    for row in bd_rate_table(anchor, [single, apart]).splitlines()[2:]:
        assert row.split(" | ")[1:5] == ["-"] * 3 + ["none"]  # no shared quality range to average over


def test_bd_rate_leaves_out_points_dominated_by_a_cheaper_one(tmp_path):
    # The fourth point costs more than the third and looks worse: the curve's BD-rate is that of
    # its first three points, where a monotone interpolation would otherwise fail.
    rates, quality = [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0]
    anchor = write_curve(tmp_path / "a.json", rates, quality)
    front = write_curve(tmp_path / "front.json", [0.9 * r for r in rates[:3]], quality[:3])
    dominated = write_curve(tmp_path / "dominated.json", [0.9 * r for r in rates[:3]] + [1.0], quality[:3] + [33.0])
    for method in METHODS:
        assert bd_rate(anchor, dominated, method) == pytest.approx(bd_rate(anchor, front, method), abs=1e-9)
    row = bd_rate_table(anchor, [dominated]).splitlines()[2]
    assert row.split(" | ")[4:6] == ["28.00-34.00", "3 of 4"]


def test_a_plot_up_to_a_rate_leaves_out_the_points_beyond_it(tmp_path):
    low = write_curve(tmp_path / "low.json", [0.2, 0.5, 3.0], [28.0, 31.0, 40.0])
    high = write_curve(tmp_path / "high.json", [2.0, 4.0], [38.0, 42.0])
    plot_rd([low, high], tmp_path / "zoom.png", max_bpp=1.0)
    plot_rd([low, high], tmp_path / "all.png")
    assert Image.open(tmp_path / "zoom.png").format == "PNG"
    assert (tmp_path / "zoom.png").read_bytes() != (tmp_path / "all.png").read_bytes()


def test_plot_writes_a_png(tmp_path):
    curve = write_curve(tmp_path / "a.json", [0.2, 0.5, 1.0], [28.0, 31.0, 34.0])
    plot_rd([curve], tmp_path / "rd.png")
    assert Image.open(tmp_path / "rd.png").format == "PNG"


def test_eval_command_writes_compressai_style_results(tmp_path, tiny_zoo, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(random_image(32, 48, seed=index)).save(folder / f"{index}.png")
    out = tmp_path / "results" / "tiny.json"
    assert main(["eval", "--images", str(folder), "--out", str(out)]) == 0
    curve = json.loads(out.read_text())
    assert curve["name"] == "tiny" and curve["models"] == ["tiny"]
    assert {"bpp", "psnr-rgb", "encoding_time", "decoding_time", "coder_overhead"} <= curve["results"].keys()
    per_image = json.loads(out.with_suffix(".per-image.json").read_text())
    sizes = [(folder / f"{i}.png") for i in range(2)]
    assert [r["image"] for r in per_image[0]["images"]] == [p.name for p in sizes]
    assert curve["results"]["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in per_image[0]["images"]]))
    (codebook,) = curve["codebooks"]
    assert 0 < codebook["utilization"] <= 1 and 1 <= codebook["perplexity"] <= 32


def test_every_kodak_curve_shares_the_recipe_and_differs_only_in_its_quantizer(tmp_path):
    from codec.training.recipe import CURVES, Recipe

    recipe = Recipe(runs=tmp_path)
    shared = ("data", "lmbda", "N", "M", "crop", "batch", "steps", "lr", "seed", "init_from", "clip_grad_norm")
    configs = {name: recipe.config(name, 2) for name in CURVES}
    reference = configs["uq-aun"]
    for name, config in configs.items():
        assert all(getattr(config, key) == getattr(reference, key) for key in shared), name
        assert config.quantizer == ("uq" if name == "uq-aun" else "vq")
    assert configs["ours-4d-sinkhorn"].sinkhorn and not configs["ours-4d"].sinkhorn
    assert (configs["vq-ste-2d"].dim, configs["ours-1d"].codebook_size) == (2, 256)
    base = recipe.base_config(2)
    assert (base.method, base.lmbda) == ("uq-aun", reference.lmbda)
    assert reference.init_from == str(tmp_path / "base-q2" / "checkpoint.pt") == str(Path(base.out) / "checkpoint.pt")
    assert len({recipe.config("ours-4d", i).out for i in range(len(recipe.lambdas))}) == len(recipe.lambdas)


def test_the_kodak_report_sets_every_learned_curve_against_the_anchor_the_published_model_and_webp(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "scripts"))
    from kodak_report import report

    rates, quality = [0.2, 0.4, 0.8, 1.6], [28.0, 31.0, 34.0, 37.0]
    baselines, folder = tmp_path / "baselines", tmp_path / "campaign"
    (baselines / "reference").mkdir(parents=True)
    folder.mkdir()
    write_curve(baselines / "webp.json", rates, quality, "webp")
    write_curve(baselines / "reference" / "bmshj2018-factorized.json", [0.8 * r for r in rates], quality, "factorized")
    write_curve(folder / "ours.json", [1.2 * r for r in rates], quality, "ours")

    def section(title: str) -> str:
        return (folder / "bdrate.md").read_text().split(f"## {title}")[1].split("##")[0]

    def rows(title: str) -> dict[str, list[str]]:
        """A section's table: curve -> its three BD-rates."""
        lines = [line.split(" | ") for line in section(title).splitlines() if line.startswith("| ") and "BD-rate" not in line]
        return {cells[0][2:]: cells[1:4] for cells in lines}

    report(folder, ["uq-aun", "ours"], baselines, "test")  # a campaign whose anchor is not done yet
    assert "Not yet" in section("Against our uq-aun anchor")
    assert rows("Our curves against WebP") == {"ours": ["+20.00%"] * 3}
    assert rows("Our curves against the published factorized")["ours"] == ["+50.00%"] * 3
    write_curve(folder / "uq-aun.json", [1.5 * r for r in rates], quality, "uq-aun")
    report(folder, ["uq-aun", "ours"], baselines, "test")
    assert rows("Against our uq-aun anchor") == {"ours": ["-20.00%"] * 3}
    assert rows("Our curves against WebP") == {"uq-aun": ["+50.00%"] * 3, "ours": ["+20.00%"] * 3}
    assert (folder / "rd.png").exists()

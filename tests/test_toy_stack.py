"""Stacked toy codecs: members that compute, learn and export exactly as lone codecs would."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from codec.model_file import load_exported
from codec.models import ModelConfig, build_model
from codec.toy import study
from codec.toy.stack import export_members, slopes, split, stacked
from codec.training.config import TrainConfig
from codec.training.loop import member_scales, model_config
from codec.training.methods import method

SLOPES, SEEDS = (2.0, 9.0), (0, 1)


def stack_config(tmp_path, method="uq-aun", dim=1, steps=4) -> TrainConfig:
    config = study.ToyCurve(method, dim).config("laplace", 9.0, steps, tmp_path / "stack")
    config = dataclasses.replace(config, batch=64, log_every=2)
    return stacked(config, [(slope * 8 / 255.0**2, seed) for slope in SLOPES for seed in SEEDS])


def _gradients_of_one_step(model, x: torch.Tensor, config: TrainConfig) -> None:
    """The method's own training step on `x` with every learning rate 0: the gradients stay, nothing moves."""
    methods = method(config.method)
    optimizers = methods.optimizers(model, config)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = 0.0
    methods.step(model.train(), x, optimizers, config)


@pytest.mark.parametrize("method_name, dim", [("uq-ste", 1), ("vq-ste", 2)])
def test_each_member_gets_the_gradient_its_lone_codec_gets_from_its_own_loss(tmp_path, method_name, dim):
    """The stack's loss is the sum of its members' losses, each at its own lambda on its own data, with
    its own search weight and VQ distance loss: so Adam, which works element by element, moves each
    member as it would move a lone codec."""
    config = stack_config(tmp_path, method_name, dim)
    torch.manual_seed(0)
    model = build_model(model_config(config))
    scales = member_scales(config)
    for transform in (model.g_a, model.g_s):
        transform.scale.copy_(torch.tensor(scales).repeat_interleave(8))
    if method_name == "vq-ste":
        with torch.no_grad():
            model.entropy.logits.normal_(0.0, 3.0)  # so that its search weighs bits, each member by its own slope
    lone = split(model)
    data = [torch.randn(32, 8, 1, 1) for _ in lone]
    _gradients_of_one_step(model, torch.cat([x * s for x, s in zip(data, scales)], 1), config)
    for index, (member, x, lmbda) in enumerate(zip(lone, data, config.stack_lmbdas)):
        alone = dataclasses.replace(config, lmbda=lmbda, stack_lmbdas=(), stack_seeds=(), rate_weight=member.config.rate_weight)
        _gradients_of_one_step(member, x, alone)
        assert torch.allclose(member.g_a.inp.weight.grad, model.g_a.stacked[0].grad[index], rtol=1e-4, atol=1e-6)
        assert torch.allclose(member.g_s.out.bias.grad, model.g_s.stacked[-1].grad[index], rtol=1e-4, atol=1e-6)
        assert member.g_s.out.bias.grad.abs().max() > 1e-3
        if method_name == "vq-ste":  # each member searches with its own slope's weight 1/s, as a lone codec would
            assert member.config.rate_weight == pytest.approx(8 / (255.0**2 * lmbda))
            groups = 8 // dim
            codebooks = model.quantizer.codebooks.grad[index * groups : (index + 1) * groups]
            assert torch.allclose(member.quantizer.codebooks.grad, codebooks, rtol=1e-4, atol=1e-7)


def test_a_stacked_run_monitors_each_member_and_exports_them_as_lone_models(tmp_path):
    config = stack_config(tmp_path)
    outs = [tmp_path / f"member-{i}" / "model.pt" for i in range(4)]
    export_members(config, outs)
    lines = [json.loads(line) for line in (tmp_path / "stack" / "log.jsonl").read_text().splitlines()]
    assert [len(line["members"]) for line in lines] == [4, 4]
    assert all(m["loss"] == pytest.approx(m["bpd"] + s * 10 ** (-m["psnr"] / 10), rel=1e-3)
               for m, s in zip(lines[-1]["members"], slopes(config)))
    for index, out in enumerate(outs):
        exported = load_exported(out)
        assert exported.model.config.transform == "mlp" and exported.model.config.M == 8
        assert (exported.record["lmbda"], exported.record["seed"]) == (config.stack_lmbdas[index], config.stack_seeds[index])
    x = torch.randn(16, 8, 1, 1)
    stack = load_exported(tmp_path / "stack" / "model.pt").model
    y = stack.analysis(x.repeat(1, 4, 1, 1) * stack.g_a.scale.view(1, -1, 1, 1))  # the file's fp16 scales
    for index, out in enumerate(outs):
        assert torch.allclose(load_exported(out).model.analysis(x), y[:, 8 * index : 8 * (index + 1)], atol=1e-5)


def test_stacks_refuse_what_would_couple_or_mislabel_their_members(tmp_path):
    config = stack_config(tmp_path)
    with pytest.raises(ValueError):
        dataclasses.replace(config, clip_grad_norm=1.0)
    with pytest.raises(ValueError):
        dataclasses.replace(config, stack_seeds=(0,))
    with pytest.raises(ValueError):
        ModelConfig(quantizer="uq", transform="mlp", M=8, members=2)


def test_a_loss_settles_where_it_stops_moving_by_more_than_the_tolerance():
    import numpy as np

    from codec.toy.convergence import settled_step, smoothed

    steps = np.arange(100, 20_001, 100)
    decaying = 1.0 + np.exp(-steps / 2000.0)  # changes by < 0.5% over the last 20% from about step 11,000 on
    settled = settled_step(steps, decaying)
    assert 9_000 < settled < 14_000
    assert settled_step(steps, 1.0 + steps / 1e4) is None  # still falling (or rising) at the end
    noisy = np.stack([decaying + 0.02 * (-1.0) ** np.arange(len(steps))], axis=1)  # Adam's jitter, averaged away
    assert abs(smoothed(noisy)[-50:, 0] - decaying[-50:]).max() < 0.02 / 4


def test_a_study_point_records_its_convergence_from_its_stack_s_log(tmp_path, monkeypatch):
    from codec.toy import study

    monkeypatch.setitem(study.TEST_SAMPLES, "gaussian", 20_000)
    monkeypatch.setitem(study.CODEBOOK_SIZES, 1, 16)
    curve = study.ToyCurve("vq-ste", 1, slope_scale=1 / 8)
    slopes = curve.slopes("gaussian")[:2]
    stacks = study.curve_stacks("gaussian", curve, slopes, 1000, tmp_path, (0,))
    (config, members), = stacks  # vq-ste's search weight is 1/s: its members share one stack
    assert members == [(s, 0) for s in slopes]
    measured = study.measure_stack("gaussian", curve, config, members, 1000, tmp_path)
    for slope, _ in members:
        record = measured[study.point_key("gaussian", curve, slope, 0, 1000)]
        assert record["loss_steps"] == [500, 1000] and len(record["loss"]) == 2
        assert record["loss_rise"] >= 0 and (record["settled_step"] is None or record["settled_step"] < 900)
        exported = load_exported(study.member_file(tmp_path, "gaussian", curve, slope, 0, 1000))
        assert exported.model.config.rate_weight == pytest.approx(1 / slope, rel=1e-3)  # the file keeps the scales in fp16


def test_a_fine_tuned_curve_trains_its_start_first_and_continues_from_its_last_checkpoint(tmp_path, monkeypatch):
    from codec.toy.convergence import member_series
    from codec.training.run_folder import LOG

    monkeypatch.setitem(study.CODEBOOK_SIZES, 1, 16)
    curve, slopes, steps = study.ToyCurve("ours", 1, start="uq-aun"), [30.0, 90.0], 120
    (config, members), = study.curve_stacks("gaussian", curve, slopes, steps, tmp_path, (1,), {"log_every": 5})
    (base, _), = study.curve_stacks("gaussian", study.ToyCurve("uq-aun"), slopes, steps, tmp_path, (1,))
    assert config.steps == steps * study.FINE_TUNE_SHARE and config.init_from == f"{base.out}/checkpoint.pt"
    files = study.export_stack("gaussian", curve, config, members, steps, tmp_path, {"log_every": 5})
    assert len(files) == 2 and all(path.exists() for path in files)
    base_steps, base_loss = member_series(f"{base.out}/{LOG}")
    tune_steps, tune_loss = member_series(f"{config.out}/{LOG}")
    assert base_steps[-1] == steps and tune_steps[0] == 5
    # five steps in, each member's held-out loss is near where its start ended, far below a fresh start's
    assert tune_loss[0] == pytest.approx(base_loss[-1], rel=0.3)
    fresh = dataclasses.replace(config, init_from="", out=str(tmp_path / "fresh"), steps=5)
    from codec.toy.stack import trained
    trained(fresh)
    assert (member_series(f"{fresh.out}/{LOG}")[1][0] > 2 * tune_loss[0]).all()
    # the point's recipe names its start by curve and digest, not by where it lies
    assert study.member_config("gaussian", curve, 30.0, 1, steps).init_from.startswith("uq-aun:")


def test_a_stack_stopped_on_one_machine_finishes_on_another_from_its_milestone(tmp_path):
    from codec.training.loop import train
    from codec.training.milestones import restore_milestone, write_milestone
    from codec.training.run_folder import CHECKPOINT, EXPORTED

    (config, _), = study.curve_stacks("gaussian", study.ToyCurve("uq-aun"), [30.0, 90.0], 40, tmp_path / "here", (0,))
    config = dataclasses.replace(config, log_every=5)
    train(config, stop=lambda step: step >= 25)
    milestone, log = tmp_path / "carried" / "stack.pt", tmp_path / "carried" / "stack.log.jsonl"
    write_milestone(Path(config.out) / CHECKPOINT, milestone, log, cap_mb=0)
    assert torch.load(milestone, weights_only=True)["optimizers"] == {}  # weights only: small enough to commit
    elsewhere = dataclasses.replace(config, out=str(tmp_path / "there" / Path(config.out).name))
    assert restore_milestone(milestone, log, Path(elsewhere.out))
    assert not restore_milestone(milestone, log, Path(elsewhere.out))  # never over a run's own checkpoint
    train(elsewhere)
    assert (Path(elsewhere.out) / EXPORTED).exists()
    steps = [json.loads(line)["step"] for line in (Path(elsewhere.out) / "log.jsonl").read_text().splitlines()]
    assert steps[0] < 25 < steps[-1] == 40  # the log carried over, and training went on from step 25


def test_a_figure_s_point_is_exported_from_the_study_s_stack_not_trained_again(tmp_path):
    """A fresh clone holds a finished stack's checkpoint only (results/toy/carried): the member a figure
    shows must come from it, not from a new stack of one that trains the whole recipe again."""
    from codec.training.run_folder import EXPORTED

    curve, steps = study.ToyCurve("uq-aun"), 20
    (config, _), = study.curve_stacks("gaussian", curve, curve.slopes("gaussian"), steps, tmp_path, (0,))
    study.train_points("gaussian", curve, curve.slopes("gaussian"), steps, tmp_path, (0,))
    member = study.member_file(tmp_path, "gaussian", curve, 3.5, 0, steps)
    for path in (member, Path(config.out) / EXPORTED):
        path.unlink()
    folders = sorted(tmp_path.iterdir())
    assert study.train_point("gaussian", curve, 3.5, steps, tmp_path) == member and member.exists()
    assert sorted(tmp_path.iterdir()) == folders


def test_the_committed_curves_are_found_under_the_recipe_digests_the_code_gives_today():
    """Measured points are filed under a digest of their whole recipe (study.point_key): a change that
    moves the digests of unchanged recipes (say, a new TrainConfig field) would silently re-train
    every finished curve of results/toy, hours of CPU. Each finished curve's points must still be found."""
    folder = Path(__file__).resolve().parents[1] / "results" / "toy"
    measured = json.loads((folder / "points.json").read_text())
    finished = 0
    for source, curves in study.STUDY.items():
        for curve in curves:
            path = folder / f"{source}_{curve.name}.json"
            if not path.exists() or json.loads(path.read_text()).get("steps") != study.STEPS:
                continue
            finished += 1
            for slope in curve.slopes(source):
                for seed in curve.seeds:
                    assert study.point_key(source, curve, slope, seed, study.STEPS) in measured, (source, curve.name, slope, seed)
    assert finished >= 3


def test_the_stacks_of_the_figures_models_are_the_ones_train_point_trains(tmp_path):
    """A fresh clone draws the figures from carried milestones (figures.figure_stacks), so those must
    be the very stacks `train_point` would train: the curve's seed-0 stack, a stack of one off the
    curve's slopes (vq-ste's mapping at the Gaussian's slope 3.5), and a fine-tune's start."""
    from codec.toy import figures

    stacks = {Path(config.out).name: members for config, members in figures.figure_stacks(tmp_path, 20)}
    for source, name, slope in figures.FIGURE_POINTS:
        curve = study.named_curve(source, name)
        config, members = study.point_stack(source, curve, slope, 20, tmp_path)
        assert stacks[Path(config.out).name] == members and (slope, 0) in members
        assert len(members) == (len(curve.slopes(source)) if slope in curve.slopes(source) else 1)
    assert any(name.startswith("boomerang_uq-aun_stack_") for name in stacks)  # ours-2d's start


def test_a_figure_s_models_train_only_once_every_curve_it_shows_is_measured_at_the_study_s_length(tmp_path):
    """The study trains the figures' models (hours of a core) just before drawing them: only for the
    figures `draw_all` will draw, so a run of some curves, or at another length, trains none."""
    from codec.toy import figures

    def measure(source: str, name: str, steps: int) -> None:
        (tmp_path / f"{source}_{name}.json").write_text(json.dumps({"steps": steps}))

    assert figures.due_points(tmp_path, 20) == []
    measure("boomerang", "ours-2d", 20)
    for name in figures.MAPPING_METHODS[:-1]:
        measure("gaussian", name, 20)
    measure("gaussian", figures.MAPPING_METHODS[-1], 10)
    assert figures.due_points(tmp_path, 20) == [p for p in figures.FIGURE_POINTS if p[0] == "boomerang"]
    measure("gaussian", figures.MAPPING_METHODS[-1], 20)
    assert figures.due_points(tmp_path, 20) == figures.FIGURE_POINTS


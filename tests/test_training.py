"""Training methods: they learn, they freeze what they must, and a resumed run equals an unbroken one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from codec.model_file import load_exported
from codec.errors import TrainingDivergedError
from codec.models import build_model
from codec.quantizers import sphere_noise, uniform_in_ball
from codec.training.config import TrainConfig
from codec.data.crops import CropSampler
from codec.training.codebook_init import init_codebooks_from_latents
from codec.training.heldout import HeldOutCrops, relative_change
from codec.training.loop import CHECKPOINT, LOG, model_config, train
from codec.training.methods import METHODS, VQ_OPTIONS
from codec.training.precision import autocast_dtype, resolve_precision
from tests.helpers import random_image

TINY = dict(N=8, M=8, dim=2, codebook_size=16, crop=32, batch=2, lmbda=0.01)
CASES = [
    ("uq-aun", {}),
    ("uq-ste", {}),
    ("vq-ste", {"rate_weight": 0.01}),
    ("vq-ste", {"sinkhorn": True, "wasserstein": True}),
    ("ours", {}),
    ("ours", {"rate_gradient": "sphere"}),
    ("ours", {"sinkhorn": True, "wasserstein": True}),
    ("ours", {"sinkhorn": True, "sinkhorn_marginal": "entropy"}),
    ("soft-to-hard", {}),
    ("gumbel", {}),
    ("no-alternation", {}),
]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for index in range(4):
        Image.fromarray(random_image(48, 40, seed=index)).save(folder / f"{index}.png")
    return folder


def tiny_setup(image_folder, method, options=None, lr=3e-3):
    config = TrainConfig(method=method, data=str(image_folder), lr=lr, **TINY, **(options or {}))
    torch.manual_seed(0)
    model = build_model(model_config(config))
    sampler = CropSampler(image_folder, config.crop, seed=0)
    if config.quantizer == "vq":
        init_codebooks_from_latents(model, sampler, config)
    return config, model, sampler, METHODS[method].optimizers(model, config)


def test_every_registered_method_is_tested_and_described():
    """A new method is one class in codec/training/methods.py and one entry in CASES."""
    assert {name for name, _ in CASES} == set(METHODS)
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    for name, method in METHODS.items():
        assert method.name == name and len(method.description) > 20 and "\n" not in method.description
        assert method.quantizer in ("uq", "vq")
        assert set(method.options) <= fields, name
    assert set(VQ_OPTIONS) <= fields


@pytest.mark.parametrize("method, options", CASES)
def test_loss_goes_down_on_a_fixed_batch(image_folder, method, options):
    # Plain Adam: what is tested is that each method's gradients lower its own loss.
    config, model, sampler, optimizers = tiny_setup(image_folder, method, {**options, "clip_grad_norm": 0.0})
    batch = sampler.batch(0, 4)
    losses = [METHODS[method].step(model, batch, optimizers, config).loss for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


@pytest.mark.parametrize("method", ["uq-aun", "ours"])
def test_bf16_steps_lower_the_loss_and_keep_rates_and_search_in_float32(image_folder, method):
    config, model, sampler, optimizers = tiny_setup(image_folder, method, {"clip_grad_norm": 0.0})
    model.transform_dtype = autocast_dtype("bf16")
    batch = sampler.batch(0, 4)
    y = model.analysis(batch)
    assert y.dtype == torch.float32 and model.synthesis(y).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the transforms' own convolutions do run in bf16
        assert model.g_a(batch).dtype == torch.bfloat16
    losses = [METHODS[method].step(model, batch, optimizers, config).loss for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


def test_a_resumed_run_resolves_its_precision_again_and_records_from_which_step_each_precision_and_machine_ran(image_folder, tmp_path, monkeypatch):
    import codec.training.loop as loop

    assert resolve_precision("fp32", torch.device("cpu"), 8) == "fp32"
    assert resolve_precision("auto", torch.device("cpu"), 8) in ("fp32", "bf16")
    with pytest.raises(ValueError, match="unknown precision"):
        TrainConfig(precision="fp16")
    config = TrainConfig(method="uq-aun", data=str(image_folder), out=str(tmp_path), steps=3, precision="auto", **TINY)
    monkeypatch.setattr(loop, "resolve_precision", lambda *args: "fp32")
    train(config)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["precisions"] == [[0, "fp32"]]
    monkeypatch.setattr(loop, "resolve_precision", lambda *args: "bf16")  # as on a machine where bf16 pays
    monkeypatch.setattr(loop.platform, "machine", lambda: "aarch64")  # ... and another machine
    resumed = train(dataclasses.replace(config, steps=5))
    assert resumed.model.transform_dtype == torch.bfloat16
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["precision"] == "bf16" and saved["precisions"] == [[0, "fp32"], [3, "bf16"]]
    assert load_exported(resumed.exported).record["precision"] == "fp32 from step 0, bf16 from step 3"
    assert [step for step, _ in saved["machines"]] == [0, 3] and saved["machines"][1][1].startswith("aarch64, ")
    assert load_exported(resumed.exported).record["machine"].endswith(", cpu from step 3")


@pytest.mark.parametrize(
    "method, options", [("ours", {}), ("ours", {"rate_gradient": "sphere"}), ("soft-to-hard", {}), ("gumbel", {})]
)
def test_alternation_freezes_the_right_parts(image_folder, method, options):
    config, model, sampler, optimizers = tiny_setup(image_folder, method, options)
    decoder_side = [*model.g_s.parameters(), *model.quantizer.parameters(), *model.entropy.parameters()]
    snapshot = lambda params: [p.detach().clone() for p in params]  # noqa: E731
    encoder_before = snapshot(model.g_a.parameters())
    seen = {}

    def spy(name, step):
        def wrapped(*args, **kwargs):
            seen[f"encoder_at_{name}"] = snapshot(model.g_a.parameters())
            seen[f"decoder_at_{name}"] = snapshot(decoder_side)
            return step(*args, **kwargs)

        return wrapped

    for name, optimizer in optimizers.items():
        optimizer.step = spy(name, optimizer.step)
    METHODS[method].step(model, sampler.batch(0, 2), optimizers, config)
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b))  # noqa: E731
    # Centers step ran first and left the encoder untouched ...
    assert same(seen["encoder_at_decoder"], encoder_before)
    assert same(seen["encoder_at_encoder"], encoder_before)
    # ... the boundaries step moved the encoder only, after the decoder side had already moved.
    assert same(snapshot(decoder_side), seen["decoder_at_encoder"])
    assert not same(snapshot(model.g_a.parameters()), encoder_before)
    assert not same(seen["decoder_at_encoder"], seen["decoder_at_decoder"])


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_ball_samples_are_uniform_in_the_ball(dim):
    torch.manual_seed(dim)
    samples = uniform_in_ball(torch.Size([200_000]), dim)
    radius = samples.norm(dim=-1)
    assert radius.max() <= 1.0
    # Uniform in the d-ball: P(|u| <= t) = t^d, so |u|^d is uniform on [0, 1].
    quantiles = torch.quantile(radius[:50_000] ** dim, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9]))
    assert torch.allclose(quantiles, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9]), atol=0.01)
    assert samples.mean(0).abs().max() < 0.01


def test_sphere_noise_stays_within_the_quantization_radius_and_passes_gradients():
    vectors = torch.randn(3, 500, 4, requires_grad=True)
    quantized = torch.randn(3, 500, 4)
    noisy = sphere_noise(vectors, quantized)
    radius = (vectors - quantized).norm(dim=-1)
    assert ((noisy - vectors).norm(dim=-1) <= radius + 1e-5).all()
    noisy.sum().backward()
    assert torch.equal(vectors.grad, torch.ones_like(vectors))


def test_a_capped_sphere_keeps_far_latents_noise_to_a_multiple_of_the_typical_radius():
    quantized = torch.zeros(2, 1000, 4)
    vectors = torch.randn(2, 1000, 4) * 0.3
    vectors[:, :5] = 1000.0  # latents that ran away from every codeword
    rms = (vectors - quantized).norm(dim=-1).square().mean(1).sqrt()
    capped = (sphere_noise(vectors, quantized, cap=3.0) - vectors).norm(dim=-1)
    assert (capped <= 3.0 * rms[:, None] + 1e-4).all()
    inside = (vectors - quantized).norm(dim=-1) < rms[:, None]
    near = sphere_noise(vectors, quantized, cap=3.0) - vectors
    assert ((near.norm(dim=-1) <= (vectors - quantized).norm(dim=-1) + 1e-5) | ~inside).all()
    assert (sphere_noise(vectors, quantized)[:, :5] - vectors[:, :5]).norm(dim=-1).max() > 3.0 * rms.max()


def test_resume_gives_the_same_parameters_as_an_unbroken_run(image_folder, tmp_path, monkeypatch):
    # fp32: "auto" times a probe, and under load two runs can resolve it differently
    base = TrainConfig(method="ours", data=str(image_folder), steps=6, lr_drop_at=0.5, checkpoint_seconds=0, precision="fp32", **TINY)
    train(dataclasses.replace(base, out=str(tmp_path / "unbroken")))
    broken = dataclasses.replace(base, out=str(tmp_path / "broken"))
    draw = CropSampler.batch

    def interrupted(self, step, size):
        if step == 4:
            raise KeyboardInterrupt
        return draw(self, step, size)

    monkeypatch.setattr(CropSampler, "batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(broken)
    monkeypatch.setattr(CropSampler, "batch", draw)
    assert torch.load(tmp_path / "broken" / CHECKPOINT, weights_only=True)["step"] == 4
    train(broken)
    one = torch.load(tmp_path / "unbroken" / CHECKPOINT, weights_only=True)["model"]
    two = torch.load(tmp_path / "broken" / CHECKPOINT, weights_only=True)["model"]
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_a_run_logs_and_exports_a_loadable_model(image_folder, tmp_path):
    config = TrainConfig(method="uq-aun", data=str(image_folder), out=str(tmp_path), steps=4, log_every=2, **TINY)
    exported = load_exported(train(config).exported)
    assert exported.record["training"]["method"] == "uq-aun"
    assert exported.record["training"]["steps"] == 4
    lines = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    assert {"loss", "bpp", "psnr"} <= lines[0].keys()


@pytest.mark.parametrize("method", ["uq-aun", "ours"])
def test_a_run_measures_its_heldout_loss_every_n_steps_and_at_the_end(image_folder, tmp_path, method):
    config = TrainConfig(method=method, data=str(image_folder), out=str(tmp_path), steps=5, log_every=100,
                         heldout=str(image_folder), heldout_every=2, checkpoint_seconds=0, **TINY)
    train(config)
    lines = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    assert [line["step"] for line in lines if "heldout" in line] == [2, 4, 5]
    model = build_model(model_config(config))
    model.load_state_dict(torch.load(tmp_path / CHECKPOINT, weights_only=True)["model"])
    # the same weights measured afresh (the run's copy is channels-last: float sums in another order)
    assert lines[-1]["heldout"] == pytest.approx(HeldOutCrops(str(image_folder)).measure(model, config.lmbda), rel=1e-4)


def test_compiled_transforms_train_as_eager_ones_do_and_save_the_same_weights(image_folder, tmp_path):
    config = TrainConfig(method="ours", data=str(image_folder), steps=3, log_every=1, precision="fp32",
                         heldout=str(image_folder), heldout_every=2, **TINY)
    runs = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        run = train(dataclasses.replace(config, out=str(tmp_path / name), compile_transforms=compiled))
        lines = [json.loads(line) for line in (tmp_path / name / LOG).read_text().splitlines()]
        runs[name] = run, lines, torch.load(tmp_path / name / CHECKPOINT, weights_only=True)["model"]
    (_, eager_lines, eager_weights), (compiled, compiled_lines, compiled_weights) = runs["eager"], runs["compiled"]
    assert [line["loss"] for line in compiled_lines] == pytest.approx([line["loss"] for line in eager_lines], rel=1e-3)
    assert compiled_lines[1]["heldout"] == pytest.approx(eager_lines[1]["heldout"], rel=1e-3)  # step 2's
    assert compiled_weights.keys() == eager_weights.keys()
    assert all(torch.allclose(compiled_weights[k], eager_weights[k], atol=1e-4) for k in eager_weights)
    assert load_exported(compiled.exported).record["training"]["compile_transforms"] is True


def test_the_heldout_loss_is_float32_whatever_the_training_precision_and_leaves_the_model_as_it_was(image_folder):
    config, model, _, _ = tiny_setup(image_folder, "uq-aun")
    crops = HeldOutCrops(str(image_folder))
    assert crops.crops.shape == (4, 3, 32, 32)  # 48x40 images: the largest multiple of 16 both sides hold
    fp32 = crops.measure(model, config.lmbda)
    model.transform_dtype = torch.bfloat16
    assert crops.measure(model, config.lmbda) == fp32
    assert model.transform_dtype == torch.bfloat16 and model.training
    more_weight = crops.measure(model, 10 * config.lmbda)
    assert more_weight["bpp"] == fp32["bpp"] and more_weight["loss"] > fp32["loss"]


def test_the_plateau_test_reads_the_fall_over_the_last_fifth_off_a_line_through_the_last_two_fifths():
    line = [{"step": s, "heldout": {"loss": 3.0 - s / 1000}} for s in range(100, 1001, 100)]
    assert relative_change(line) == pytest.approx(0.2 / 2.0)  # 0.2 lower than 200 steps back, 2.0 now
    jitter = [{"step": e["step"], "heldout": {"loss": 2.0 + 0.05 * (-1) ** (e["step"] // 100)}} for e in line]
    assert abs(relative_change(jitter)) < 0.01  # +-2.5% from one measurement to the next is no trend
    assert relative_change(line[-3:]) is None  # too few measurements
    recent = [{"step": s, "heldout": {"loss": 1.0}} for s in (850, 900, 950, 1000)]
    assert relative_change(line[:1] + recent) is None  # none as far back as step 800
    assert relative_change([{"step": 5}] + line[-5:]) == pytest.approx(0.1)  # lines without a measurement do not count
    resumed = line[:6] + [{"step": 700, "heldout": {"loss": 9.0}}, {"step": 800, "heldout": {"loss": 9.0}}] + line[6:]
    assert relative_change(resumed) == pytest.approx(0.1)  # a resumed run's re-logged steps count once, the later line


def test_the_schedule_drops_and_ends_where_the_heldout_loss_plateaus_and_not_before():
    from codec.training.loop import Schedule

    config = TrainConfig(steps=1000, lr=1e-3, lr_drop_at=0.9, heldout="x", plateau=0.005, plateau_min_steps=300)
    schedule = Schedule(config)
    assert (schedule.drop, schedule.end, schedule.learning_rate(899), schedule.learning_rate(900)) == (900, 1000, 1e-3, 1e-4)
    falling = [{"step": s, "heldout": {"loss": 2.0 - s / 1000}} for s in (100, 200, 300, 400)]
    flat = [{"step": s, "heldout": {"loss": 1.0}} for s in range(100, 401, 50)]
    assert Schedule(config).test_plateau(200, flat[:2]) is None  # before plateau_min_steps
    assert schedule.test_plateau(400, falling) is None  # fell 6% over the last fifth
    assert schedule.test_plateau(400, flat) == {"fall": 0.0, "drop_from": 400, "end": 445}
    assert (schedule.learning_rate(399), schedule.learning_rate(400), schedule.end) == (1e-3, 1e-4, 445)
    assert schedule.test_plateau(440, flat) is None  # found once
    assert Schedule(dataclasses.replace(config, plateau=0.0)).test_plateau(400, flat) is None
    with pytest.raises(ValueError, match="held-out"):
        TrainConfig(plateau=0.005)


def test_a_run_that_plateaus_ends_early_and_a_resumed_one_keeps_where_it_dropped(image_folder, tmp_path):
    # plateau = 1: any held-out loss that did not halve counts as flat, so the test fires at its first chance
    config = TrainConfig(method="uq-aun", data=str(image_folder), out=str(tmp_path), steps=40, lr_drop_at=0.5, log_every=100,
                         heldout=str(image_folder), heldout_every=1, plateau=1.0, plateau_min_steps=10, checkpoint_seconds=0,
                         precision="fp32", **TINY)
    train(config, stop=lambda step: step == 14)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["plateau_at"] == 10
    run = train(config)
    lines = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    plateaus = [line["plateau"] for line in lines if "plateau" in line]
    assert len(plateaus) == 1 and (plateaus[0]["drop_from"], plateaus[0]["end"]) == (10, 20)
    assert lines[-1]["step"] == 20
    optimizers = torch.load(tmp_path / CHECKPOINT, weights_only=True)["optimizers"]
    assert {group["lr"] for name, opt in optimizers.items() if name != "aux" for group in opt["param_groups"]} == {config.lr * 0.1}
    record = load_exported(run.exported).record
    assert (record["steps_run"], record["lr_drop_from"], record["training"]["steps"]) == (20, 10, 40)


def test_a_fine_tune_starts_from_the_pretrained_transforms_and_entropy_model(image_folder, tmp_path):
    from codec.training.loop import start_model

    pretrain = TrainConfig(method="uq-aun", data=str(image_folder), out=str(tmp_path / "pre"), steps=3, **TINY)
    train(pretrain)
    saved = torch.load(tmp_path / "pre" / CHECKPOINT, weights_only=True)["model"]
    for method in ("uq-aun", "vq-ste"):
        config = dataclasses.replace(pretrain, method=method, init_from=str(tmp_path / "pre" / CHECKPOINT))
        torch.manual_seed(1)
        model = build_model(model_config(config))
        start_model(model, CropSampler(image_folder, config.crop, seed=0), config)
        state = model.state_dict()
        carried = [k for k in saved if k in state and saved[k].shape == state[k].shape]
        assert any(k.startswith("g_a.") for k in carried)
        assert any(k.startswith("entropy_bottleneck.") for k in carried) == (method == "uq-aun")
        assert all(torch.equal(saved[k], state[k]) for k in carried)


def test_a_start_without_the_model_s_transforms_is_refused_rather_than_ignored(image_folder, tmp_path):
    from codec.training.loop import start_model

    pretrain = TrainConfig(method="uq-aun", data=str(image_folder), out=str(tmp_path / "pre"), steps=2, **TINY)
    train(pretrain)
    wider = dataclasses.replace(pretrain, N=pretrain.N * 2, init_from=str(tmp_path / "pre" / CHECKPOINT))
    with pytest.raises(ValueError, match="does not hold this model's transforms"):
        start_model(build_model(model_config(wider)), CropSampler(image_folder, wider.crop, seed=0), wider)


@pytest.mark.parametrize("method", ["ours", "vq-ste"])
def test_the_encoder_learning_rate_scale_slows_only_the_encoder(image_folder, tmp_path, method):
    config = TrainConfig(method=method, data=str(image_folder), out=str(tmp_path), steps=3, encoder_lr_scale=0.0, **TINY)
    trained = train(config).model
    torch.manual_seed(0)
    start = build_model(model_config(config))
    from codec.training.loop import start_model

    start_model(start, CropSampler(image_folder, config.crop, seed=0), config)
    assert all(torch.equal(a, b) for a, b in zip(start.g_a.parameters(), trained.g_a.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(start.g_s.parameters(), trained.g_s.parameters()))


@pytest.mark.parametrize("method", ["ours", "vq-ste"])
def test_the_codebook_learning_rate_scale_moves_only_the_codewords_further(image_folder, tmp_path, method):
    moved = {}
    for scale in (0.0, 1.0, 30.0):
        config = TrainConfig(method=method, data=str(image_folder), out=str(tmp_path / f"{method}-{scale}"), steps=3, codebook_lr_scale=scale, **TINY)
        trained = train(config).model
        torch.manual_seed(0)
        start = build_model(model_config(config))
        from codec.training.loop import start_model

        start_model(start, CropSampler(image_folder, config.crop, seed=0), config)
        moved[scale] = float((trained.quantizer.codebooks - start.quantizer.codebooks).abs().max())
        assert not all(torch.equal(a, b) for a, b in zip(start.g_s.parameters(), trained.g_s.parameters()))
    assert moved[0.0] == 0.0 and moved[30.0] > 5 * moved[1.0] > 0


def test_logged_training_distortion_is_honest_on_fresh_samples(tmp_path):
    # The noise must not be predictable from the samples: with the two sharing a seed, a Gaussian
    # uq-aun model logged 24.6 dB while fresh samples with fresh noise gave 21.6 dB.
    config = TrainConfig(method="uq-aun", source="gaussian", out=str(tmp_path), N=64, M=1, batch=1024,
                         steps=300, lr=1e-3, lmbda=200 / 255.0**2, clip_grad_norm=0.0, log_every=10)
    model = train(config).model.train()
    logged = [json.loads(line)["psnr"] for line in (tmp_path / LOG).read_text().splitlines()[-10:]]
    torch.manual_seed(12345)
    x = torch.randn(100_000, 1, 1, 1)
    with torch.no_grad():
        y_tilde, _ = model.entropy_bottleneck(model.analysis(x))
        honest = -10 * np.log10(float(((model.synthesis(y_tilde) - x) ** 2).mean()))
    assert abs(np.mean(logged) - honest) < 0.5


def test_the_aux_learning_rate_sets_how_fast_the_coded_support_moves(tmp_path):
    moved = {}
    for aux_lr in (1e-3, 5e-2):
        config = TrainConfig(method="uq-aun", source="gaussian", out=str(tmp_path / str(aux_lr)), N=16, M=1, batch=256,
                             steps=20, lmbda=0.01, aux_lr=aux_lr)
        model = train(config).model
        moved[aux_lr] = float((model.entropy_bottleneck.quantiles.detach() - torch.tensor([-10.0, 0.0, 10.0])).abs().max())
    assert moved[1e-3] < 0.05 < 0.5 < moved[5e-2]


def test_a_diverging_run_stops_before_saving_the_bad_step(tmp_path, monkeypatch):
    config = TrainConfig(method="uq-aun", source="gaussian", out=str(tmp_path), N=8, M=1, batch=64, steps=5, checkpoint_seconds=0)
    healthy = METHODS["uq-aun"].step

    def diverging(model, x, optimizers, config):
        result = healthy(model, x, optimizers, config)
        return dataclasses.replace(result, loss=float("nan")) if len((tmp_path / LOG).read_text().splitlines()) >= 2 else result

    monkeypatch.setattr(METHODS["uq-aun"], "step", diverging)
    with pytest.raises(TrainingDivergedError, match="diverged at step 3"):
        train(dataclasses.replace(config, log_every=1))
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["step"] == 2 and all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_codecs_forward_gives_the_reconstruction_and_its_bits(image_folder):
    """CompressAI's convention: model(x) is a training pass whose rate and reconstruction a loss can use."""
    for method, quantizations in (("uq-aun", ("noise", "ste")), ("vq-ste", (None,))):
        config, model, sampler, _ = tiny_setup(image_folder, method)
        x = sampler.batch(0, 2)
        for quantization in quantizations:
            model.zero_grad()
            out = model(x) if quantization is None else model(x, quantization)
            assert out.x_hat.shape == x.shape and out.bits.ndim == 0 and float(out.bits) > 0
            (out.bits + ((out.x_hat - x) ** 2).sum()).backward()
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.g_a.parameters() if p.ndim > 1)
        if method == "vq-ste":
            assert torch.equal(out.codewords, model.quantizer.lookup(out.indices))
        else:
            with pytest.raises(ValueError, match="unknown quantization"):
                model(x, "round")

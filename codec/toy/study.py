"""RD curves on toy sources: learned methods, ECVQ in the source space, and the R(D) references.

A learned curve trains one model per slope s, where the loss per dimension is
bpd + s * MSE (so TrainConfig's lmbda = s * D / 255^2). Curves are written in CompressAI's layout:
{"name", "description", "results": {"bpd": [...], "psnr": [...]}} with psnr = -10 log10(MSE/dim).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codec.model_file import load_exported
from codec.toy import bounds, convergence, stack
from codec.data.toy import test_set
from codec.toy.ecvq import initial_quantizer, lagrangian_lloyd, lattice_quantizer, rate_distortion
from codec.toy.evaluate import evaluate_toy
from codec.data.sources import DIMENSIONS, SOURCES
from codec.training.config import TrainConfig
from codec.training.methods import Alternating, method
from codec.training.run_folder import CHECKPOINT, LOG

CODEBOOK_SIZES = {1: 256, 2: 4096, 4: 32768}
TEST_SAMPLES = {"gaussian": 1_000_000, "boomerang": 1_000_000, "laplace": 100_000}
STEPS = 20_000
SEEDS = (0, 1, 2)
"""Seeds per point: a curve's points are the means over them, the spread is plotted."""
ENCODER_LR_SCALE = 0.1
"""The alternating methods' encoder learning rate relative to the decoder's (ToyCurve.config)."""
FINE_TUNE_SHARE = 0.5
"""A curve with a `start` trains this share of the study's steps, from the end of its start's run."""


@dataclass(frozen=True)
class ToyCurve:
    """One learned curve: a training method, its VQ dimension and, for 'ours', its rate gradient."""

    method: str
    dim: int = 1
    rate_gradient: str = "mixture"
    slope_scale: float = 1.0
    """Multiplies the source's slopes; vq-ste's encoder spreads its latents, so the same slope buys it
    more bits (Gaussian: 2.05-5.73 bpd over the shared slopes) and it needs lower ones to span the range."""
    seeds: tuple[int, ...] = SEEDS
    """Seeds of each point. The 4-D curves have one: their step searches 32,768 codewords per group
    and costs ~10x a 1-D step, so three seeds would cost more than the rest of the study."""
    start: str = ""
    """The curve of the same source whose converged stack (same slopes and seed) each stack of this
    one fine-tunes: its transforms, and codebooks on the lattice of its latents. From random
    transforms the alternating methods can stay at zero rate at low slopes (Gaussian ours-1d at
    slopes 1.5 and 3.5 after 20,000 steps); the Kodak recipe starts from uq-aun the same way."""

    def slopes(self, source: str) -> list[float]:
        return [self.slope_scale * slope for slope in SLOPES[source]]

    @property
    def name(self) -> str:
        if method(self.method).quantizer == "uq":
            return self.method
        suffix = "-sphere" if self.rate_gradient == "sphere" else ""
        return f"{self.method}-{self.dim}d{suffix}"

    def training_steps(self, steps: int) -> int:
        """The steps this curve's models train of the study's `steps`: FINE_TUNE_SHARE of them after a `start`."""
        return round(steps * FINE_TUNE_SHARE) if self.start else steps

    def config(self, source: str, slope: float, steps: int, out: Path) -> TrainConfig:
        """The training recipe shared by every toy curve, of `steps` (the study's; FINE_TUNE_SHARE of
        them for a curve with a `start`): residual MLPs of width 64, batch 1024, Adam 1e-3 (dropped
        10x for the last 10%), no gradient clipping, codebooks started on the densest lattice of
        their dimension (Z, A2, D4; results/toy/RECIPE.md, "Codebook starts"), fp32 on every
        machine (the study's curves compare like with like); the uq
        codecs' quantiles learn at 0.05, so their coded support can follow the latents within the run.
        The alternating methods' encoder learns at 0.1x the decoder's rate, as on images: at 1x the
        held-out PSNR of ours at the top slopes fell by 17-43 dB on its way in every run measured
        (Boomerang d=1 and d=2, Laplace d=1 and d=4), at 0.3x by up to 22 dB in some, at 0.1x by
        under 2 dB in all (results/toy/RECIPE.md, "Stability"; tests/test_toy_stability.py).

        vq-ste searches its codewords entropy-constrained (NVTC): argmin |y - c|^2 + (1/s) bits, the
        source-space trade-off of bits + s |x - x_hat|^2 carried over to the latent."""
        dim = DIMENSIONS[source]
        vq = method(self.method).quantizer == "vq"
        return TrainConfig(
            method=self.method, source=source, out=str(out), N=64, M=dim, dim=self.dim,
            codebook_size=CODEBOOK_SIZES[self.dim], batch=1024, steps=self.training_steps(steps),
            lr=1e-3, lmbda=slope * dim / 255.0**2, clip_grad_norm=0.0, aux_lr=0.05,
            codebook_init="best-lattice" if vq else "lattice",  # uq has no codebook: its runs are filed under "lattice"
            rate_gradient=self.rate_gradient, rate_weight=1.0 / slope if self.method == "vq-ste" else 0.0,
            checkpoint_seconds=60, log_every=100, precision="fp32",
            encoder_lr_scale=ENCODER_LR_SCALE if isinstance(method(self.method), Alternating) else 1.0,
        )


def _seeds(dim: int) -> tuple[int, ...]:
    return SEEDS[:1] if dim == 4 else SEEDS


def _ours_pair(dim: int) -> list[ToyCurve]:
    return [ToyCurve("ours", dim, seeds=_seeds(dim), start="uq-aun"), ToyCurve("ours", dim, "sphere", seeds=_seeds(dim), start="uq-aun")]


def _vq_ste(dim: int) -> ToyCurve:
    """vq-ste from random transforms, as NVTC trains it: fine-tuned from uq-aun at the shared slopes its
    encoder, which no rate gradient reaches, spread the latents to 3.0-5.7 bpd (uq-aun: 0.9-4.3) within
    2,000 steps (Boomerang d=1; results/toy/probes.json, ft_boomerang_vqste1d_shared_2000)."""
    return ToyCurve("vq-ste", dim, slope_scale=1 / 8, seeds=_seeds(dim))


STUDY: dict[str, list[ToyCurve]] = {
    "gaussian": [ToyCurve("uq-aun"), ToyCurve("uq-ste"), _vq_ste(1), *_ours_pair(1)],
    "boomerang": [ToyCurve("uq-aun"), ToyCurve("uq-ste"), _vq_ste(1), _vq_ste(2), *_ours_pair(1), *_ours_pair(2)],
    "laplace": [ToyCurve("uq-aun"), ToyCurve("uq-ste"), _vq_ste(1), _vq_ste(4), *_ours_pair(1), *_ours_pair(4)],
}
"""The learned curves of the study per source (paper 004, Figs. 2-4, 6-8)."""

SLOPES = {
    "gaussian": [1.5, 3.5, 8.0, 18.0, 40.0, 90.0, 200.0],
    "boomerang": [3.0, 7.0, 16.0, 36.0, 80.0, 180.0, 400.0],
    "laplace": [0.8, 1.5, 2.8, 5.0, 9.0, 16.0, 28.0],
}
"""Slopes s of bpd + s * MSE per source, chosen so the curves span about 0.5 to 4 bpd."""


def write_curve(folder: Path, source: str, name: str, description: str, points: list[dict], **extra) -> Path:
    """`<folder>/<source>_<name>.json` (or `folder` itself when it names a .json file), points sorted by
    rate; `extra` goes beside "results"."""
    points = sorted(points, key=lambda p: p["bpd"])
    results = {key: [p[key] for p in points] for key in points[0]}
    path = Path(folder) if Path(folder).suffix == ".json" else Path(folder) / f"{source}_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "description": description, "results": results, **extra}, indent=2) + "\n")
    return path


LATER_TRAIN_FIELDS = {"sinkhorn_marginal": "uniform", "heldout": "", "heldout_every": 1000, "plateau": 0.0, "plateau_min_steps": 0, "compile_transforms": False}
"""TrainConfig fields added after the study filed its points, with their defaults: a field at its
default is left out of the digest, so adding an option re-trains nothing already measured."""


def recipe_digest(config: TrainConfig) -> str:
    """A short digest of everything a run's config sets but its folder: runs and measured points are
    filed under it, so a changed recipe never reuses what an earlier one trained."""
    fields = dataclasses.asdict(dataclasses.replace(config, out=""))
    fields = {k: v for k, v in fields.items() if LATER_TRAIN_FIELDS.get(k, object()) != v}
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def named_curve(source: str, name: str) -> ToyCurve:
    """The study's curve of `source` called `name`."""
    return next(c for c in STUDY[source] if c.name == name)


def start_curve(source: str, curve: ToyCurve) -> ToyCurve | None:
    """The study's curve whose stacks `curve`'s stacks fine-tune (ToyCurve.start); None if it trains from scratch."""
    return named_curve(source, curve.start) if curve.start else None


def member_config(source: str, curve: ToyCurve, slope: float, seed: int, steps: int, changes: dict | None = None) -> TrainConfig:
    """The recipe of one (slope, seed) model of a curve, as a lone run would have it; a fine-tune's
    `init_from` names its start's model by curve and recipe digest, not by a path."""
    config = dataclasses.replace(curve.config(source, slope, steps, Path()), seed=seed, **(changes or {}))
    start = start_curve(source, curve)
    if start:
        config = dataclasses.replace(config, init_from=f"{start.name}:{recipe_digest(member_config(source, start, slope, seed, steps))}")
    return config


def member_file(runs: Path, source: str, curve: ToyCurve, slope: float, seed: int, steps: int, changes: dict | None = None) -> Path:
    digest = recipe_digest(member_config(source, curve, slope, seed, steps, changes))
    return Path(runs) / f"{source}_{curve.name}_{slope:g}_seed{seed}_{digest}" / "model.pt"


def curve_stacks(
    source: str, curve: ToyCurve, slopes: list[float], steps: int, runs: Path, seeds=None, changes: dict | None = None
) -> list[tuple[TrainConfig, list[tuple[float, int]]]]:
    """The stacked runs (codec/toy/stack.py) that train every (slope, seed) model of a curve, each with
    its members' (slope, seed): one stack per seed, or per slope and seed where the slope changes more
    than the trade-off (a search weight that is not inverse to lambda, see stack.stacked). A stack per
    seed keeps each run short enough to finish within a working session on one core. `seeds` are the
    curve's own (ToyCurve.seeds) unless given; `changes` are TrainConfig fields that differ from the
    study's recipe (a probe's)."""
    seeds = seeds or curve.seeds
    groups: dict[TrainConfig, list[tuple[float, TrainConfig]]] = {}
    for slope in slopes:
        config = dataclasses.replace(curve.config(source, slope, steps, Path(runs)), **(changes or {}))
        shared = dataclasses.replace(config, lmbda=0.0, rate_weight=float(f"{config.rate_weight * config.lmbda:.9g}"))  # as stack.stacked reads it
        groups.setdefault(shared, []).append((slope, config))
    stacks = []
    for group in groups.values():
        for seed in seeds:
            config = stack.stacked(dataclasses.replace(group[0][1], seed=seed), [(lone.lmbda, seed) for _, lone in group])
            members = [(slope, seed) for slope, _ in group]
            start = start_stack(source, curve, members, steps, runs)
            if start:
                config = dataclasses.replace(config, init_from=f"{curve.start}:{Path(start[0].out).name}")
            name = f"{source}_{curve.name}_stack_" + "_".join(f"{s:g}" for s, _ in group) + f"_seed{seed}_{recipe_digest(config)}"
            config = dataclasses.replace(config, out=str(Path(runs) / name))
            if start:
                config = dataclasses.replace(config, init_from=str(Path(start[0].out) / CHECKPOINT))
            stacks.append((config, members))
    return stacks


def start_stack(source: str, curve: ToyCurve, members: list[tuple[float, int]], steps: int, runs: Path) -> tuple | None:
    """The stack of `curve`'s start (as `curve_stacks` gives it) with the same members, whose last
    checkpoint a stack with those members fine-tunes; None for a curve trained from scratch."""
    start = start_curve(source, curve)
    if start is None:
        return None
    stacks = curve_stacks(source, start, [slope for slope, _ in members], steps, runs, (members[0][1],))
    if len(stacks) != 1 or stacks[0][1] != members:
        raise ValueError(f"{curve.start} does not train {members} in one stack, so {curve.name} cannot start from it")
    return stacks[0]


def export_stack(
    source: str, curve: ToyCurve, config: TrainConfig, members: list[tuple[float, int]], steps: int, runs: Path,
    changes: dict | None = None,
) -> list[Path]:
    """Train (or resume, or reuse) one stack of `curve_stacks`, its start's stack first, and export its
    members' model files (`member_file`)."""
    start = start_stack(source, curve, members, steps, runs)
    if start:
        export_stack(source, start_curve(source, curve), *start, steps, runs)
    outs = [member_file(runs, source, curve, slope, seed, steps, changes) for slope, seed in members]
    return stack.export_members(config, outs)


def train_points(
    source: str, curve: ToyCurve, slopes: list[float], steps: int, runs: Path, seeds=None, changes: dict | None = None
) -> dict[tuple[float, int], Path]:
    """Train (or resume, or reuse) every (slope, seed) model of a curve in its stacks (`curve_stacks`);
    returns each model file by (slope, seed)."""
    files = {}
    for config, members in curve_stacks(source, curve, slopes, steps, runs, seeds, changes):
        files.update(zip(members, export_stack(source, curve, config, members, steps, runs, changes)))
    return files


def train_point(source: str, curve: ToyCurve, slope: float, steps: int, runs: Path, seed: int = 0) -> Path:
    """The model file of one (slope, seed): exported from the study's stack that trains it (finished,
    resumed or trained), or from a stack of one at a slope the study does not train."""
    path = member_file(runs, source, curve, slope, seed, steps)
    if path.exists():
        return path
    config, members = point_stack(source, curve, slope, steps, runs, seed)
    return dict(zip(members, export_stack(source, curve, config, members, steps, runs)))[slope, seed]


def point_stack(source: str, curve: ToyCurve, slope: float, steps: int, runs: Path, seed: int = 0) -> tuple[TrainConfig, list]:
    """The stack (`curve_stacks`) that trains the (slope, seed) model of `train_point`: the curve's
    own, or a stack of one at a slope the curve does not train."""
    slopes = curve.slopes(source) if slope in curve.slopes(source) else [slope]
    return next(stack for stack in curve_stacks(source, curve, slopes, steps, runs, (seed,)) if (slope, seed) in stack[1])


def point_key(source: str, curve: ToyCurve, slope: float, seed: int, steps: int) -> str:
    """What a measured point is filed under: its curve, slope and seed, and a digest of its whole
    training recipe, so a point is measured again whenever the recipe changes."""
    return f"{source}/{curve.name}/{slope:g}/seed{seed}/{steps}/{recipe_digest(member_config(source, curve, slope, seed, steps))}"


def checked_member(slopes: list[float], seeds) -> tuple[float, int]:
    """The (slope, seed) whose test samples are also range-coded: the middle slope's first seed."""
    return slopes[len(slopes) // 2], seeds[0]


def measure_stack(
    source: str, curve: ToyCurve, config: TrainConfig, members: list[tuple[float, int]], steps: int, runs: Path,
    checked: tuple[float, int] | None = None,
) -> dict[str, dict]:
    """Train (or resume, or reuse) one stack of `curve_stacks`, then measure each member on the fixed
    test set: {point_key: {"bpd", "psnr", "stack_seconds"}}, plus "bitstream_bpd" for the `checked`
    member and what its log says of its convergence (convergence.member_record). "stack_seconds" is
    the wall time of the stack's last process (a run resumed in another session counts its last part)."""
    samples = test_set(source, TEST_SAMPLES[source])
    files = export_stack(source, curve, config, members, steps, runs)
    log = Path(config.out) / LOG
    logged, losses = convergence.member_series(log) if log.exists() else ([], None)
    measured = {}
    for index, ((slope, seed), path) in enumerate(zip(members, files)):
        exported = load_exported(path)
        point = evaluate_toy(exported, samples, bitstream=(slope, seed) == checked)
        point = {key: round(value, 6) for key, value in point.items()} | {"stack_seconds": exported.record.get("wall_seconds")}
        if len(logged):
            point.update(convergence.member_record(logged, losses[:, index], config.lr_drop_at * config.steps))
        measured[point_key(source, curve, slope, seed, steps)] = point
    return measured


def missing_stacks(source: str, curve: ToyCurve, slopes: list[float], steps: int, runs: Path, seeds, measured: dict) -> list:
    """The stacks of a curve (as `curve_stacks`) with a member not yet in `measured`."""
    return [
        (config, members)
        for config, members in curve_stacks(source, curve, slopes, steps, runs, seeds)
        if any(point_key(source, curve, slope, seed, steps) not in measured for slope, seed in members)
    ]


def trained_stacks(source: str, curve: ToyCurve, slopes: list[float], steps: int, runs: Path, seeds) -> list:
    """The stacks of a curve (as `curve_stacks`) whose members' model files `runs` holds."""
    return [
        (config, members)
        for config, members in curve_stacks(source, curve, slopes, steps, runs, seeds)
        if all(member_file(runs, source, curve, slope, seed, steps).exists() for slope, seed in members)
    ]


def curve_points(source: str, curve: ToyCurve, slopes: list[float], steps: int, seeds, measured: dict) -> tuple[list[dict], dict]:
    """(points, bitstream check) of a curve from its measured members: per slope, the mean bpd and
    PSNR over the seeds with the per-seed values beside them; the check compares the range-coded
    stream of `checked_member` with its ideal rate."""
    points = []
    for slope in slopes:
        per_seed = [measured[point_key(source, curve, slope, seed, steps)] for seed in seeds]
        points.append({
            "slope": slope,
            "bpd": float(np.mean([p["bpd"] for p in per_seed])),
            "psnr": float(np.mean([p["psnr"] for p in per_seed])),
            "bpd_per_seed": [p["bpd"] for p in per_seed],
            "psnr_per_seed": [p["psnr"] for p in per_seed],
            "settled_step_per_seed": [p.get("settled_step") for p in per_seed],
            "loss_rise_per_seed": [p.get("loss_rise") for p in per_seed],
        })
    slope, seed = checked_member(slopes, seeds)
    point = measured[point_key(source, curve, slope, seed, steps)]
    return points, {"slope": slope, "seed": seed, "ideal_bpd": point["bpd"], "file_bpd": point.get("bitstream_bpd")}


def learned_curve(
    source: str, curve: ToyCurve, slopes: list[float], steps: int, runs: Path, seeds=None, measured: dict | None = None
) -> tuple[list[dict], dict]:
    """(points, bitstream check) of a curve (`curve_points`), training and measuring the stacks whose
    members `measured` (updated in place) does not hold yet."""
    measured = {} if measured is None else measured
    seeds = seeds or curve.seeds
    checked = checked_member(slopes, seeds)
    for config, members in missing_stacks(source, curve, slopes, steps, runs, seeds, measured):
        measured.update(measure_stack(source, curve, config, members, steps, runs, checked))
    return curve_points(source, curve, slopes, steps, seeds, measured)


ECVQ_BLOCK = {"laplace": 4}
"""Dimensions per ECVQ codeword where it is less than the source's: the 8-D Laplace is i.i.d., so two
4-D ECVQs make an 8-D quantizer; one 8-D codebook of 4096 words could not pass 1.5 bpd."""
ECVQ_CODEBOOK = {"gaussian": 4096, "boomerang": 4096, "laplace": 32768}
"""ECVQ codewords per source: enough not to cap the rate in the plotted range (4096 4-D codewords
held the Laplace at 2.85 bpd where uq-aun reached 3.29)."""
ECVQ_TRAINING = {"gaussian": 200_000, "boomerang": 200_000, "laplace": 400_000}
"""Training samples per source: about 50 per 4-D codeword on the Laplace."""
LATTICE_REFERENCES = {"laplace": (("D4", 32768), ("D4", 131072))}
"""Lattice quantizers drawn as references, (lattice, codewords kept): what a 4-D codebook of the paper's
32,768 words can reach where the source's tails need more (`lattice_curve`)."""
ECVQ_LATTICE_START = {"laplace": "D4"}
"""Sources whose ECVQ starts (at its highest slope) on a lattice instead of k-means++: from k-means++
the Laplace's 32,768 4-D codewords ended under scalar quantization above 2.9 bpd (3.252 bpd /
15.33 dB, where ECSQ gives 15.69)."""


def _source_blocks(source: str, training_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, test) samples of `source` as float64 blocks of ECVQ_BLOCK dimensions (the whole
    sample where it has none): what the source-space references quantize."""
    block = ECVQ_BLOCK.get(source, DIMENSIONS[source])
    training = SOURCES[source](training_samples, torch.Generator().manual_seed(1)).double().reshape(-1, block)
    return training, test_set(source, TEST_SAMPLES[source]).double().reshape(-1, block)


def ecvq_curve(source: str, slopes: list[float], codebook_size: int | None = None, training_samples: int | None = None) -> list[dict]:
    """ECVQ in the source space (in blocks per ECVQ_BLOCK), started per ECVQ_LATTICE_START (k-means++
    otherwise) and warm-started from one slope to the next (high rate to low); codewords and training
    samples per ECVQ_CODEBOOK and ECVQ_TRAINING unless given."""
    codebook_size = codebook_size or ECVQ_CODEBOOK[source]
    training, samples = _source_blocks(source, training_samples or ECVQ_TRAINING[source])
    slopes = sorted(slopes, reverse=True)
    lattice = ECVQ_LATTICE_START.get(source)
    quantizer = lattice_quantizer(training, codebook_size, lattice, 1.0 / slopes[0]) if lattice else initial_quantizer(training, codebook_size)
    points = []
    for slope in slopes:
        lmbda = 1.0 / slope  # argmin |x-c|^2/d + lmbda (-log2 p)/d: per-dim MSE + bpd / slope
        quantizer = lagrangian_lloyd(training, lmbda, quantizer)
        rate, mse = rate_distortion(samples, quantizer, lmbda)
        points.append({"slope": slope, "bpd": rate, "psnr": -10 * math.log10(mse)})
    return points


def lattice_curve(source: str, slopes: list[float], lattice: str, codebook_size: int) -> list[dict]:
    """The untrained entropy-coded `lattice` quantizer (in blocks per ECVQ_BLOCK) at each slope: the
    `codebook_size` lattice points most training samples fall on, scaled to the high-rate cell of the
    slope (ecvq.lattice_quantizer), probabilities from the training counts."""
    training, samples = _source_blocks(source, ECVQ_TRAINING[source])
    points = []
    for slope in slopes:
        rate, mse = rate_distortion(samples, lattice_quantizer(training, codebook_size, lattice, 1.0 / slope), 1.0 / slope)
        points.append({"slope": slope, "bpd": rate, "psnr": -10 * math.log10(mse)})
    return points


IID_SOURCES = ("gaussian", "laplace")
"""Sources whose dimensions are independent and identically distributed: one scalar quantizer serves all."""


def ecsq_curve(source: str, slopes: list[float], codebook_size: int = 1024, training_samples: int = 200_000) -> list[dict]:
    """Entropy-coded scalar quantization: ECVQ on one dimension at a time (one quantizer for all
    dimensions of an i.i.d. source, one per dimension otherwise), bpd and MSE averaged over them."""
    generator = torch.Generator().manual_seed(1)
    training = SOURCES[source](training_samples, generator).double().flatten(1)
    samples = test_set(source, TEST_SAMPLES[source]).double().flatten(1)
    columns = [slice(None)] if source in IID_SOURCES else [slice(j, j + 1) for j in range(training.shape[1])]
    per_column = []
    for column in columns:
        quantizer = initial_quantizer(training[:, column].reshape(-1, 1), codebook_size)
        measured = {}
        for slope in sorted(slopes, reverse=True):
            quantizer = lagrangian_lloyd(training[:, column].reshape(-1, 1), 1.0 / slope, quantizer)
            measured[slope] = rate_distortion(samples[:, column].reshape(-1, 1), quantizer, 1.0 / slope)
        per_column.append(measured)
    points = []
    for slope in slopes:
        rate, mse = np.mean([measured[slope] for measured in per_column], axis=0)
        points.append({"slope": slope, "bpd": float(rate), "psnr": -10 * math.log10(mse)})
    return points


def boomerang_blahut_arimoto(slopes: list[float], cells: int = 48, samples: int = 1_000_000) -> list[dict]:
    """R(D) of the Boomerang discretized on a cells x cells grid (weights from a histogram): exact
    for the grid source, a good estimate of the continuous R(D) at low rates where cells are small."""
    x = test_set("boomerang", samples).flatten(1).numpy()
    low, high = np.percentile(x, 0.05, axis=0), np.percentile(x, 99.95, axis=0)
    counts, edges_a, edges_b = np.histogram2d(x[:, 0], x[:, 1], bins=cells, range=list(zip(low, high)))
    centres = np.stack(np.meshgrid((edges_a[1:] + edges_a[:-1]) / 2, (edges_b[1:] + edges_b[:-1]) / 2, indexing="ij"), -1)
    keep = counts.reshape(-1) > 0
    points, weights = centres.reshape(-1, 2)[keep], counts.reshape(-1)[keep] / counts.sum()
    rates, mses = bounds.blahut_arimoto(points, weights, np.asarray(slopes))
    return [{"slope": s, "bpd": float(r), "psnr": -10 * math.log10(m)} for s, r, m in zip(slopes, rates, mses)]


def bound_curves(source: str, psnr_range: tuple[float, float] = (1.0, 26.0)) -> dict[str, tuple[str, list[dict]]]:
    """The R(D) references of a source as curves: name -> (description, points)."""
    psnrs = np.linspace(*psnr_range, 60)
    mses = 10 ** (-psnrs / 10)
    references = {
        "gaussian": {"rd-bound": ("R(D) of N(0,1), closed form", bounds.gaussian_rd)},
        "laplace": {
            "rd-slb": ("Shannon lower bound, 0.3956 - 0.5 log2 D", bounds.laplace_shannon_lower_bound),
            "rd-gaussian-upper": ("R(D) of the Gaussian of equal variance (upper bound)", bounds.laplace_gaussian_upper_bound),
            **{
                f"rd-high-rate-{name.lower()}": (
                    f"high-rate entropy-coded {name} lattice quantizer, {bounds.high_rate_gap_db(name):.2f} dB under the bound",
                    lambda mse, name=name: bounds.laplace_high_rate_lattice(mse, name),
                )
                for name in ("Z", "D4")
            },
        },
        "boomerang": {"rd-slb": ("Shannon lower bound, -0.5990 - 0.5 log2 D", bounds.boomerang_shannon_lower_bound)},
    }[source]
    curves = {
        name: (description, [{"bpd": f(float(m)), "psnr": float(p)} for m, p in zip(mses, psnrs) if f(float(m)) > 0])
        for name, (description, f) in references.items()
    }
    if source == "boomerang":
        low_rate_slopes = [0.6, 1.0, 1.6, 2.5, 4.0, 6.0, 9.0, 14.0]
        curves["rd-blahut-arimoto"] = ("Blahut-Arimoto on a 48x48 histogram grid (low rates)", boomerang_blahut_arimoto(low_rate_slopes))
    return curves

"""Stacked toy codecs: many toy codecs (the slopes and seeds of a curve) trained at once, then split.

S codecs share every operation (block-diagonal MLPs, transforms "stacked-mlp"; per-group codebooks
and per-channel entropy models are independent already), and since Adam works element by element
and the stack's loss is the sum of the members' losses, each member follows the training a lone
codec of its own lambda and seed would (in distribution: its initialization and noise come from the
stack's streams). What it buys is one process and one log per curve, with every member's held-out
loss; in speed little, as a toy step at batch 1024 is mostly arithmetic (scripts/bench_toy_stack.py,
results/training/toy-stack.json: uq-aun 1.56x the member-steps per second at 21 members, ours-1d 0.96x).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from codec.data.toy import SourceSampler
from codec.model_file import export_model, load_exported
from codec.models import ModelConfig, UQCodec, VQCodec, build_model
from codec.training.run_folder import EXPORTED
from codec.training.config import TrainConfig
from codec.training.loop import train

VALIDATION_SEED = 2**31 - 2
"""Seed of the held-out samples the members' losses are monitored on, apart from training and test streams."""
VALIDATION_SAMPLES = 8192


def stacked(config: TrainConfig, members: list[tuple[float, int]]) -> TrainConfig:
    """`config` (a lone toy run's) as a stack of (lmbda, seed) members; `lmbda` becomes their mean.

    A search weight (`rate_weight`, vq-ste) is taken as inverse to lambda, the source-space trade-off
    1/s carried over to the latent: config's own rate_weight * lmbda fixes it for every member. The
    stack holds it at its members' share of the mean lambda, which each member's scale^2 divides back
    to its own (VQCodec._search_weights)."""
    lmbdas = tuple(lmbda for lmbda, _ in members)
    mean = sum(lmbdas) / len(lmbdas)
    return dataclasses.replace(
        config, lmbda=mean, stack_lmbdas=lmbdas, stack_seeds=tuple(seed for _, seed in members),
        rate_weight=config.rate_weight * config.lmbda * len(lmbdas) / mean,
    )


def split(model: VQCodec | UQCodec) -> list[VQCodec | UQCodec]:
    """The members of a stacked codec as lone codecs ("mlp" transforms), each computing what it did in the stack."""
    config = model.config
    members = config.members
    lone = build_model(ModelConfig(**{**dataclasses.asdict(config), "transform": "mlp", "M": config.M // members, "members": 1}))
    shapes = {name: tensor.shape for name, tensor in lone.state_dict().items()}
    result = []
    for index in range(members):
        state = {}
        for name, tensor in model.state_dict().items():
            if name.startswith(("g_a.", "g_s.")):
                continue
            share = shapes[name][0] if len(shapes[name]) else 0
            per_member = len(shapes[name]) and share * members == tensor.shape[0] and shapes[name][1:] == tensor.shape[1:]
            state[name] = tensor[index * share : (index + 1) * share].clone() if per_member else tensor.clone()
        for side in ("g_a", "g_s"):
            state.update({f"{side}.{k}": v for k, v in getattr(model, side).member(index).state_dict().items()})
        rate_weight = config.rate_weight * float(model.g_a.scale[index * config.M // members]) ** -2
        member = build_model(dataclasses.replace(lone.config, rate_weight=rate_weight))
        member.load_state_dict(state)
        result.append(member.eval())
    return result


def slopes(config: TrainConfig) -> list[float]:
    """Each member's slope s of bpd + s * MSE (the toy study's trade-off per dimension)."""
    return [lmbda * 255.0**2 / config.M for lmbda in config.stack_lmbdas]


def member_monitor(config: TrainConfig):
    """A training monitor (codec/training/loop.py) giving each member's loss bpd + s * MSE, bpd and
    PSNR on held-out samples through actual quantization, under its own entropy model ("members")."""
    samples = SourceSampler(config.source, VALIDATION_SEED).batch(0, VALIDATION_SAMPLES)
    member_slopes = slopes(config)

    @torch.no_grad()
    def monitor(model: VQCodec | UQCodec) -> dict:
        measured = []
        for member, slope in zip(split(model), member_slopes):
            out = member(samples, "ste") if isinstance(member, UQCodec) else member(samples)
            bpd, mse = float(out.bits) / samples.numel(), float(((out.x_hat - samples) ** 2).mean())
            measured.append({"loss": round(bpd + slope * mse, 5), "bpd": round(bpd, 5), "psnr": round(-10 * math.log10(mse), 4)})
        return {"members": measured}

    return monitor


def trained(config: TrainConfig) -> Path:
    """The stacked run's exported file, training (or resuming) it with its members monitored if needed."""
    path = Path(config.out) / EXPORTED
    if not path.exists():
        train(config, monitor=member_monitor(config))
    return path


def export_members(config: TrainConfig, outs: list[Path]) -> list[Path]:
    """Train (or resume, or reuse) the stacked run `config` and export its members to `outs` (model files),
    each with the stack's record, its own lambda and seed; nothing is redone when every member is exported."""
    paths = [Path(out) for out in outs]
    if all(path.exists() for path in paths):
        return paths
    exported = load_exported(trained(config))
    for index, (member, path) in enumerate(zip(split(exported.model), paths)):
        record = {**exported.record, "member": index, "lmbda": config.stack_lmbdas[index], "seed": config.stack_seeds[index]}
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            export_model(member, path, record)
    return paths

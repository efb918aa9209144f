"""The training loop: resumable checkpoints, a JSON-lines log, a progress bar, data parallelism, a learning-rate
schedule that can end a run where its held-out loss plateaus, export.

Under `torchrun --nproc_per_node K`, each process takes 1/K of every batch and gradients are
averaged across processes before each optimizer step (gloo on CPU, NCCL on CUDA). The averaging
is done per optimizer rather than by wrapping the model in DistributedDataParallel, because the
alternating methods run two forward/backward passes per step over disjoint, partly frozen
parameter sets, which DDP's one-forward-one-backward reducer does not support.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from codec.model_file import export_model
from codec.errors import ModelFileError, TrainingDivergedError
from codec.files import atomic_write
from codec.models import ModelConfig, UQCodec, VQCodec, build_model
from codec.quantizers import codebook_usage, index_counts
from codec.training.codebook_init import init_codebooks_from_latents, reactivate_dead_codewords
from codec.training.config import TrainConfig
from codec.training.heldout import HeldOutCrops, measurements, relative_change
from codec.data import Sampler
from codec.data.crops import CropSampler
from codec.data.toy import SourceSampler, StackedSourceSampler
from codec.training.methods import method
from codec.training.precision import autocast_dtype, resolve_precision
from codec.training.run_folder import CHECKPOINT, EXPORTED, LOG, PREVIOUS_CHECKPOINT


def model_config(config: TrainConfig) -> ModelConfig:
    transform = "stacked-mlp" if config.stack_lmbdas else "mlp" if config.source else "factorized"
    return ModelConfig(
        quantizer=config.quantizer,
        transform=transform,
        N=config.N,
        M=config.M * config.members,
        dim=config.dim,
        codebook_size=config.codebook_size,
        rate_weight=config.rate_weight,
        members=config.members,
    )


def member_scales(config: TrainConfig) -> list[float]:
    """The factor on each stacked member's data that weights its squared error by its own lambda."""
    return [math.sqrt(config.members * lmbda / config.lmbda) for lmbda in config.stack_lmbdas]


def start_model(model: VQCodec | UQCodec, sampler: Sampler, config: TrainConfig) -> None:
    """Transforms from `init_from` (and its entropy model where it is of the same kind), VQ codebooks
    from the latents they produce."""
    if config.init_from:
        state = torch.load(config.init_from, map_location="cpu", weights_only=True)["model"]
        own = model.state_dict()
        shared = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        missing = [k for k in own if k.startswith(("g_a.", "g_s.")) and k not in shared]
        if missing:  # loading the rest alone would train from random transforms without a word
            raise ValueError(f"{config.init_from} does not hold this model's transforms ({len(missing)} missing or of another shape, e.g. {missing[0]})")
        model.load_state_dict({**own, **shared})
    if isinstance(model, VQCodec):
        init_codebooks_from_latents(model, sampler, config)


def model_from_checkpoint(config: TrainConfig, saved: dict) -> VQCodec | UQCodec:
    """The model a training checkpoint or milestone of a run of `config` holds (`saved`: its content)."""
    model = build_model(model_config(config))
    model.load_state_dict(saved["model"])
    return model


def make_sampler(config: TrainConfig) -> Sampler:
    """Crops of the image folder, or samples of a toy source when `config.source` is set."""
    if not config.source:
        return CropSampler(config.data, config.crop, config.seed)
    if config.stack_lmbdas:
        sampler = StackedSourceSampler(config.source, list(config.stack_seeds), member_scales(config))
    else:
        sampler = SourceSampler(config.source, config.seed)
    if sampler.dim != config.M:
        raise ValueError(f"the {config.source} source has {sampler.dim} dimensions, so M must be {sampler.dim}")
    return sampler


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size): from torchrun's environment, (0, 1) in a plain run."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def _average_gradients_before_steps(optimizers: dict[str, torch.optim.Optimizer], world: int) -> None:
    """Make every optimizer average its gradients over the processes before it steps."""
    for optimizer in optimizers.values():
        step = optimizer.step

        def averaged_step(*args, _optimizer=optimizer, _step=step, **kwargs):
            for group in _optimizer.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        dist.all_reduce(parameter.grad)
                        parameter.grad /= world
            return _step(*args, **kwargs)

        optimizer.step = averaged_step


def _broadcast_parameters(model: torch.nn.Module) -> None:
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def _precisions(saved: dict | None, precision: str) -> list:
    """[from_step, precision] pairs of a run: a resumed run re-resolves its precision, because the
    machine it resumes on (a fresh clone elsewhere, a lent GPU) may train faster in another one."""
    if saved is None:
        return [[0, precision]]
    history = precision_history(saved)
    if history[-1][1] != precision:
        print(f"resuming at step {saved['step']} in {precision} (trained in {history[-1][1]} so far)", file=sys.stderr)
    return _extended(history, saved["step"], precision)


def precision_history(saved: dict) -> list:
    """A checkpoint's [from_step, precision] pairs (checkpoints before the history was kept name one)."""
    return saved.get("precisions") or [[0, saved.get("precision", "fp32")]]


def _extended(history: list, step: int, value: str) -> list:
    """A [from_step, value] history with `value` from `step` on (as it is when it ends in `value`)."""
    return history if history and history[-1][1] == value else [*history, [step, value]]


def describe_history(history: list) -> str:
    """'fp32' for a run that kept one value from step 0, else e.g. 'fp32 from step 0, bf16 from step
    15260'; 'not recorded' for none (checkpoints before machines were recorded)."""
    if not history:
        return "not recorded"
    if len(history) == 1 and history[0][0] == 0:
        return history[0][1]
    return ", ".join(f"{value} from step {step}" for step, value in history)


def _save_checkpoint(path: Path, step: int, model, optimizers: dict, schedule: Schedule, elapsed: float, counts, histories: dict) -> None:
    """Write the checkpoint atomically, keeping the one before it as PREVIOUS_CHECKPOINT."""
    if path.exists():
        os.replace(path, path.with_name(PREVIOUS_CHECKPOINT))
    buffer = io.BytesIO()
    torch.save(
        {
            "step": step,
            "elapsed": elapsed,
            "config": asdict(schedule.config),
            "precision": histories["precisions"][-1][1],
            **histories,
            "model": model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "counts": counts,
            "plateau_at": schedule.plateau_at,
            "end": schedule.end,
        },
        buffer,
    )
    atomic_write(path, buffer.getvalue())


NOISE_STREAM = 0x4E4F495345
"""Tags the stream of the methods' noise, apart from the data samplers' streams."""


def _seed_noise(config: TrainConfig, step: int, rank: int, world: int) -> None:
    """Seed the global RNG that the methods draw their noise from, per step and process.

    The data samplers seed their own generators by (seed, step); seeding the noise the same way made
    it a function of the samples (a toy model's logged PSNR was 3 dB above its honest one), so the
    noise gets its own stream.
    """
    entropy = [config.seed, step * world + rank, NOISE_STREAM]
    torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]))


@dataclass
class Schedule:
    """Where a run's learning rate drops (10x) and where the run ends: at `lr_drop_at` of its steps and
    at `steps`, or earlier where its held-out loss plateaus (TrainConfig.plateau)."""

    config: TrainConfig
    plateau_at: int | None = None
    """The step whose held-out measurement found the plateau (None: not found)."""

    @property
    def drop(self) -> float:
        return self.config.lr_drop_at * self.config.steps if self.plateau_at is None else self.plateau_at

    @property
    def end(self) -> int:
        if self.plateau_at is None or self.config.lr_drop_at <= 0:
            return self.config.steps
        return min(self.config.steps, math.ceil(self.plateau_at / self.config.lr_drop_at))

    def learning_rate(self, step: int) -> float:
        return self.config.lr * (0.1 if step >= self.drop else 1.0)

    def test_plateau(self, step: int, measured: list[dict]) -> dict | None:
        """After the held-out measurement of `step` (`measured`: the run's log lines with one, this
        step's last): when the loss has plateaued, drop from here, and say so for the log."""
        config = self.config
        if not config.plateau or self.plateau_at is not None or step < config.plateau_min_steps or step >= self.drop:
            return None
        fall = relative_change(measured)
        if fall is None or fall >= config.plateau:
            return None
        self.plateau_at = step
        return {"fall": round(fall, 5), "drop_from": step, "end": self.end}


def _shared_step(step: int | None, rank: int) -> int | None:
    """Rank 0's `step` on every process (None travels as -1)."""
    shared = torch.tensor([-1 if step is None or rank else step])
    dist.broadcast(shared, src=0)
    return None if int(shared) < 0 else int(shared)


def _measured_heldout(out: Path, upto: int) -> list[dict]:
    """The held-out measurements a resumed run's log holds up to its checkpoint's step, one per step."""
    if not (out / LOG).exists():
        return []
    return measurements([json.loads(line) for line in (out / LOG).read_text().splitlines() if line.strip()], upto)


def load_checkpoint(out: Path, device: torch.device | str = "cpu") -> dict | None:
    """The newest readable training checkpoint of run folder `out`, or None when it has none.

    A damaged last checkpoint (a crash while copying it, a truncated download) is reported in one
    line and the previous one is used; if both are damaged, that is an error.
    """
    damaged = []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = out / name
        if not path.exists():
            continue
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
            if {"step", "model", "optimizers"} <= set(saved):
                if damaged:
                    print(f"{damaged[0]} is damaged; resuming from {path} (step {saved['step']})", file=sys.stderr)
                return saved
        except Exception:  # torch.load raises many kinds on a damaged file; each means "unreadable"
            pass
        damaged.append(path)
    if damaged:
        raise ModelFileError(f"every checkpoint of {out} is damaged ({', '.join(map(str, damaged))})")
    return None


@dataclass
class TrainedRun:
    """The trained model (this process's copy) and, on rank 0, the exported model file (None when the
    run was stopped before its last step)."""

    model: VQCodec | UQCodec
    exported: Path | None


def train(
    config: TrainConfig,
    stop: Callable[[int], bool] = lambda step: False,
    on_checkpoint: Callable[[Path, int], None] = lambda path, step: None,
    monitor: Callable[[VQCodec | UQCodec], dict] | None = None,
) -> TrainedRun:
    """Run (or resume) a training run and export its model.

    `stop(step)` is asked after every step: when it answers True, the run writes a checkpoint and
    returns unfinished. `on_checkpoint(path, step)` is called after every checkpoint written.
    `monitor(model)` is called at every log line (the model in eval mode); what it returns joins the line.
    """
    device = _device(config)
    rank, world = _distributed(device)
    if config.batch % world:
        raise ValueError(f"batch {config.batch} does not split over {world} processes")
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = make_sampler(config)
    model = build_model(model_config(config)).to(device)
    if config.stack_lmbdas:
        scales = torch.tensor(member_scales(config)).repeat_interleave(config.M)
        for transform in (model.g_a, model.g_s):
            transform.scale.copy_(scales)
    optimizers = method(config.method).optimizers(model, config)
    is_vq = isinstance(model, VQCodec)
    counts = torch.zeros(model.quantizer.groups, config.codebook_size, device=device) if is_vq else None
    step, elapsed = 0, 0.0
    schedule = Schedule(config)
    checkpoint_path = out / CHECKPOINT
    saved = load_checkpoint(out, device)
    if saved is not None:
        model.load_state_dict(saved["model"])
        for name, opt in optimizers.items():
            if name in saved["optimizers"]:  # a milestone without optimizer state re-warms it
                opt.load_state_dict(saved["optimizers"][name])
        step, elapsed, counts = saved["step"], saved["elapsed"], saved.get("counts", counts)
        schedule.plateau_at = saved.get("plateau_at")
    else:
        start_model(model, sampler, config)
    precisions = _precisions(saved, resolve_precision(config.precision, device, config.N))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, {device.type}"
    histories = {"precisions": precisions, "machines": _extended(saved.get("machines", []) if saved else [], saved["step"] if saved else 0, machine)}
    model.transform_dtype = autocast_dtype(precisions[-1][1])
    memory_format = torch.channels_last if model.config.transform == "factorized" else torch.contiguous_format
    model.to(memory_format=memory_format)
    if config.compile_transforms and device.type == "cpu":
        model.compile_transforms()
    if world > 1:
        _broadcast_parameters(model)
        _average_gradients_before_steps(optimizers, world)
    model.train()
    run_step = method(config.method).step
    heldout = HeldOutCrops(config.heldout) if config.heldout and rank == 0 else None
    measured = _measured_heldout(out, step) if heldout is not None else []
    last_save = time.monotonic()
    started = time.monotonic() - elapsed
    share = config.batch // world
    with open(out / LOG, "a") if rank == 0 else open(os.devnull, "w") as log, tqdm(
        total=config.steps, initial=step, desc=f"train {config.method}", disable=rank != 0
    ) as bar:
        while step < schedule.end:
            _seed_noise(config, step, rank, world)
            for name, opt in optimizers.items():
                for group in opt.param_groups:
                    if name != "aux":
                        group["lr"] = schedule.learning_rate(step) * group.get("lr_scale", 1.0)
            batch = sampler.batch(step, config.batch)[rank * share : (rank + 1) * share].to(device, memory_format=memory_format)
            result = run_step(model, batch, optimizers, config)
            if not math.isfinite(result.loss):
                raise TrainingDivergedError(
                    f"training diverged at step {step + 1} of {out} (loss {result.loss}); nothing from this step was saved"
                )
            step += 1
            bar.update(1)
            entry = {"step": step, "loss": result.loss, "bpp": result.bpp, "psnr": result.psnr}
            entry["seconds"] = round(time.monotonic() - started, 2)
            if result.indices is not None:
                counts += index_counts(result.indices, config.codebook_size)
                if config.reactivate_every and step % config.reactivate_every == 0:
                    if world > 1:
                        dist.all_reduce(counts)
                    entry["reactivated"] = reactivate_dead_codewords(model, counts, batch, step)
                    if world > 1:
                        dist.broadcast(model.quantizer.codebooks.data, src=0)
                        dist.broadcast(model.entropy.logits.data, src=0)
                    counts.zero_()
            measure_heldout = heldout is not None and (step % config.heldout_every == 0 or step == schedule.end)
            if step % config.log_every == 0 or step == schedule.end or measure_heldout:
                entry.update(result.trace)
                if result.indices is not None:
                    entry["utilization"], entry["perplexity"] = codebook_usage(
                        index_counts(result.indices, config.codebook_size)
                    )
                if measure_heldout:
                    entry["heldout"] = heldout.measure(model, config.lmbda)
                    measured.append({"step": step, "heldout": entry["heldout"]})
                    plateau = schedule.test_plateau(step, measured)
                    if plateau is not None:
                        entry["plateau"] = plateau
                if monitor is not None and rank == 0:
                    entry.update(monitor(model.eval()))
                    model.train()
                log.write(json.dumps(entry) + "\n")
                log.flush()
                bar.set_postfix(bpp=f"{result.bpp:.3f}", psnr=f"{result.psnr:.2f}")
            if world > 1 and config.plateau and step % config.heldout_every == 0:  # rank 0 alone measured
                schedule.plateau_at = _shared_step(schedule.plateau_at, rank)
            stopping = step < schedule.end and stop(step)
            due = time.monotonic() - last_save > config.checkpoint_seconds or step == schedule.end or stopping
            if rank == 0 and due:
                _save_checkpoint(checkpoint_path, step, model, optimizers, schedule, time.monotonic() - started, counts, histories)
                on_checkpoint(checkpoint_path, step)
                last_save = time.monotonic()
            if stopping:
                return TrainedRun(model=model, exported=None)
    if rank == 0:
        record = {
            "training": asdict(config),
            "steps_run": step,
            "lr_drop_from": math.ceil(schedule.drop),
            "data": sampler.description,
            "wall_seconds": round(time.monotonic() - started, 1),
            "machine": describe_history(histories["machines"]),
            "processes": world,
            "precision": describe_history(precisions),
            "torch": torch.__version__,
        }
        export_model(model, out / EXPORTED, record)
    if world > 1:
        dist.barrier()
    return TrainedRun(model=model, exported=out / EXPORTED)


def exported_model(config: TrainConfig) -> Path:
    """The exported model of a run, training (or resuming) it only when it has not been exported yet."""
    path = Path(config.out) / EXPORTED
    return path if path.exists() else train(config).exported

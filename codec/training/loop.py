"""The training loop: resumable checkpoints, a JSON-lines log, a progress bar, data parallelism, export.

Under `torchrun --nproc_per_node K`, each process takes 1/K of every batch and gradients are
averaged across processes before each optimizer step (gloo on CPU, NCCL on CUDA). The averaging
is done per optimizer rather than by wrapping the model in DistributedDataParallel, because the
alternating methods run two forward/backward passes per step over disjoint, partly frozen
parameter sets, which DDP's one-forward-one-backward reducer does not support.
"""

from __future__ import annotations

import io
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from codec.checkpoint import export_model
from codec.files import atomic_write
from codec.models import ModelConfig, UQCodec, VQCodec, build_model
from codec.quantizers import codebook_usage, index_counts
from codec.toy.data import SourceSampler
from codec.training.config import TrainConfig
from codec.training.data import CropSampler
from codec.training.methods import STEPS, make_optimizers

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
EXPORTED = "model.pt"
CODEBOOK_INIT_BATCHES = 64


def model_config(config: TrainConfig) -> ModelConfig:
    return ModelConfig(
        quantizer=config.quantizer,
        transform="mlp" if config.source else "factorized",
        N=config.N,
        M=config.M,
        dim=config.dim,
        codebook_size=config.codebook_size,
        rate_weight=config.rate_weight,
    )


def _latent_vectors(model: VQCodec, batches: list[torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.quantizer.to_vectors(model.analysis(b)) for b in batches], dim=1)


def _sampled_codewords(vectors: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` latent vectors (G, P, d) drawn at random per group, slightly jittered: (G, count, d)."""
    picks = torch.randint(vectors.shape[1], (count,), generator=generator).to(vectors.device)
    return vectors[:, picks] + 0.01 * torch.randn(vectors.shape[0], count, vectors.shape[2], generator=generator).to(vectors)


def init_codebooks_from_latents(model: VQCodec, sampler: CropSampler | SourceSampler, config: TrainConfig) -> None:
    """Start each codebook from latent vectors of training data, so no codeword starts far away.

    'samples' draws the codewords among the latent vectors. 'lattice' takes, per group, the most
    frequent integer-rounded latent vectors with logits from their frequencies: after a uniform-
    quantization pretrain the VQ model then starts where the pretrained model was. Slots left over
    repeat the most frequent point, so the search never picks them (it takes the first of equals)
    until dead-codeword reactivation moves them.
    """
    quantizer = model.quantizer
    device = quantizer.codebooks.device
    batches = [sampler.batch(-1 - b, config.batch).to(device) for b in range(CODEBOOK_INIT_BATCHES)]
    vectors = _latent_vectors(model, batches)
    generator = torch.Generator().manual_seed(config.seed)
    if config.codebook_init == "samples":
        with torch.no_grad():
            quantizer.codebooks.copy_(_sampled_codewords(vectors, quantizer.codebook_size, generator))
        return
    with torch.no_grad():
        for group in range(quantizer.groups):
            points, counts = torch.unique(torch.round(vectors[group]), dim=0, return_counts=True)
            order = counts.argsort(descending=True)[: quantizer.codebook_size]
            found = len(order)
            quantizer.codebooks[group, :found] = points[order]
            quantizer.codebooks[group, found:] = points[order[0]]
            frequencies = torch.full((quantizer.codebook_size,), 0.5, device=device)
            frequencies[:found] = counts[order].to(frequencies)
            model.entropy.logits[group] = torch.log(frequencies / frequencies.sum())


def reactivate_dead_codewords(model: VQCodec, counts: torch.Tensor, batch: torch.Tensor, step: int) -> int:
    """Move codewords with no use in `counts` onto random latent vectors of `batch`; returns how many moved.

    A moved codeword takes its group's mean logit, so it starts with a middling probability.
    """
    vectors = _latent_vectors(model, [batch])
    dead = counts == 0
    generator = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for group in torch.nonzero(dead.any(1)).flatten().tolist():
            slots = torch.nonzero(dead[group]).flatten()
            picks = torch.randint(vectors.shape[1], (len(slots),), generator=generator).to(vectors.device)
            model.quantizer.codebooks[group, slots] = vectors[group, picks]
            model.entropy.logits[group, slots] = model.entropy.logits[group, ~dead[group]].mean()
    return int(dead.sum())


def _start(model: VQCodec | UQCodec, sampler: CropSampler | SourceSampler, config: TrainConfig) -> None:
    """Transforms from `init_from`, codebooks from the latents they produce."""
    if config.init_from:
        state = torch.load(config.init_from, map_location="cpu", weights_only=True)["model"]
        transforms = {k: v for k, v in state.items() if k.startswith(("g_a.", "g_s."))}
        model.load_state_dict({**model.state_dict(), **transforms})
    if isinstance(model, VQCodec):
        init_codebooks_from_latents(model, sampler, config)


def make_sampler(config: TrainConfig) -> CropSampler | SourceSampler:
    """Crops of the image folder, or samples of a toy source when `config.source` is set."""
    if not config.source:
        return CropSampler(config.data, config.crop, config.seed)
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


def _save_checkpoint(path: Path, step: int, model, optimizers: dict, config: TrainConfig, elapsed: float, counts) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "step": step,
            "elapsed": elapsed,
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "counts": counts,
        },
        buffer,
    )
    atomic_write(path, buffer.getvalue())


def _learning_rate(config: TrainConfig, step: int) -> float:
    return config.lr * (0.1 if step >= config.lr_drop_at * config.steps else 1.0)


@dataclass
class TrainedRun:
    """The trained model (this process's copy) and, on rank 0, the exported model file."""

    model: VQCodec | UQCodec
    exported: Path


def train(config: TrainConfig) -> TrainedRun:
    """Run (or resume) a training run and export its model."""
    device = _device(config)
    rank, world = _distributed(device)
    if config.batch % world:
        raise ValueError(f"batch {config.batch} does not split over {world} processes")
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = make_sampler(config)
    model = build_model(model_config(config)).to(device)
    optimizers = make_optimizers(model, config)
    is_vq = isinstance(model, VQCodec)
    counts = torch.zeros(model.quantizer.groups, config.codebook_size, device=device) if is_vq else None
    step, elapsed = 0, 0.0
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(saved["optimizers"][name])
        step, elapsed, counts = saved["step"], saved["elapsed"], saved.get("counts", counts)
    else:
        _start(model, sampler, config)
    if world > 1:
        _broadcast_parameters(model)
        _average_gradients_before_steps(optimizers, world)
    model.train()
    run_step = STEPS[config.method]
    last_save = time.monotonic()
    started = time.monotonic() - elapsed
    share = config.batch // world
    with open(out / LOG, "a") if rank == 0 else open(os.devnull, "w") as log, tqdm(
        total=config.steps, initial=step, desc=f"train {config.method}", disable=rank != 0
    ) as bar:
        while step < config.steps:
            torch.manual_seed(config.seed * 1_000_003 + step * world + rank)
            for name, opt in optimizers.items():
                for group in opt.param_groups:
                    if name != "aux":
                        group["lr"] = _learning_rate(config, step)
            batch = sampler.batch(step, config.batch)[rank * share : (rank + 1) * share].to(device)
            result = run_step(model, batch, optimizers, config)
            step += 1
            bar.update(1)
            entry = {"step": step, "loss": result.loss, "bpp": result.bpp, "psnr": result.psnr}
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
            if step % config.log_every == 0 or step == config.steps:
                if result.indices is not None:
                    entry["utilization"], entry["perplexity"] = codebook_usage(
                        index_counts(result.indices, config.codebook_size)
                    )
                log.write(json.dumps(entry) + "\n")
                log.flush()
                bar.set_postfix(bpp=f"{result.bpp:.3f}", psnr=f"{result.psnr:.2f}")
            due = time.monotonic() - last_save > config.checkpoint_seconds or step == config.steps
            if rank == 0 and due:
                _save_checkpoint(checkpoint_path, step, model, optimizers, config, time.monotonic() - started, counts)
                last_save = time.monotonic()
    if rank == 0:
        record = {
            "training": asdict(config),
            "data": sampler.description,
            "wall_seconds": round(time.monotonic() - started, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, {device.type}",
            "processes": world,
            "torch": torch.__version__,
        }
        export_model(model, out / EXPORTED, record)
    if world > 1:
        dist.barrier()
    return TrainedRun(model=model, exported=out / EXPORTED)

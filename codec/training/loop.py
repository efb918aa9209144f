"""The training loop: resumable checkpoints, a JSON-lines log, a progress bar, and export at the end."""

from __future__ import annotations

import io
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from codec.checkpoint import export_model
from codec.files import atomic_write
from codec.models import ModelConfig, VQCodec, build_model
from codec.training.config import TrainConfig
from codec.training.data import CropSampler
from codec.training.methods import STEPS, make_optimizers

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
EXPORTED = "model.pt"
CODEBOOK_INIT_BATCHES = 16


def model_config(config: TrainConfig) -> ModelConfig:
    return ModelConfig(
        quantizer=config.quantizer, N=config.N, M=config.M, dim=config.dim, codebook_size=config.codebook_size
    )


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """(share of codewords used, mean perplexity exp(H)) over the groups of indices (G, P)."""
    counts = torch.zeros(indices.shape[0], codebook_size).scatter_add_(1, indices, torch.ones_like(indices, dtype=torch.float))
    probs = counts / counts.sum(1, keepdim=True)
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(1)
    return float((counts > 0).float().mean()), float(entropy.exp().mean())


@torch.no_grad()
def init_codebooks_from_latents(model: VQCodec, sampler: CropSampler, config: TrainConfig) -> None:
    """Start each codebook at latent vectors drawn from training crops, so no codeword starts far away."""
    quantizer = model.quantizer
    vectors = torch.cat(
        [quantizer.to_vectors(model.analysis(sampler.batch(-1 - b, config.batch))) for b in range(CODEBOOK_INIT_BATCHES)],
        dim=1,
    )
    generator = torch.Generator().manual_seed(config.seed)
    picks = torch.randint(vectors.shape[1], (quantizer.codebook_size,), generator=generator)
    jitter = 0.01 * torch.randn(quantizer.codebooks.shape, generator=generator)
    quantizer.codebooks.copy_(vectors[:, picks] + jitter)


def _start(model, sampler: CropSampler, config: TrainConfig) -> None:
    """Transforms from `init_from`, codebooks from the latents they produce."""
    if config.init_from:
        state = torch.load(config.init_from, map_location="cpu", weights_only=True)["model"]
        transforms = {k: v for k, v in state.items() if k.startswith(("g_a.", "g_s."))}
        model.load_state_dict({**model.state_dict(), **transforms})
    if isinstance(model, VQCodec):
        init_codebooks_from_latents(model, sampler, config)


def _save_checkpoint(path: Path, step: int, model, optimizers: dict, config: TrainConfig, elapsed: float) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "step": step,
            "elapsed": elapsed,
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        },
        buffer,
    )
    atomic_write(path, buffer.getvalue())


def _learning_rate(config: TrainConfig, step: int) -> float:
    return config.lr * (0.1 if step >= config.lr_drop_at * config.steps else 1.0)


def train(config: TrainConfig) -> Path:
    """Run (or resume) a training run and export its model; returns the exported model's path."""
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = CropSampler(config.data, config.crop, config.seed)
    model = build_model(model_config(config))
    optimizers = make_optimizers(model, config)
    step, elapsed = 0, 0.0
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(saved["optimizers"][name])
        step, elapsed = saved["step"], saved["elapsed"]
    else:
        _start(model, sampler, config)
    model.train()
    run_step = STEPS[config.method]
    last_save = time.monotonic()
    started = time.monotonic() - elapsed
    with open(out / LOG, "a") as log, tqdm(total=config.steps, initial=step, desc=f"train {config.method}") as bar:
        while step < config.steps:
            torch.manual_seed(config.seed * 1_000_003 + step)
            for name, opt in optimizers.items():
                for group in opt.param_groups:
                    if name != "aux":
                        group["lr"] = _learning_rate(config, step)
            result = run_step(model, sampler.batch(step, config.batch), optimizers, config)
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                entry = {"step": step, "loss": result.loss, "bpp": result.bpp, "psnr": result.psnr}
                if result.indices is not None:
                    entry["utilization"], entry["perplexity"] = codebook_usage(result.indices, config.codebook_size)
                log.write(json.dumps(entry) + "\n")
                log.flush()
                bar.set_postfix(bpp=f"{result.bpp:.3f}", psnr=f"{result.psnr:.2f}")
            if time.monotonic() - last_save > config.checkpoint_seconds or step == config.steps:
                _save_checkpoint(checkpoint_path, step, model, optimizers, config, time.monotonic() - started)
                last_save = time.monotonic()
    record = {
        "training": asdict(config),
        "images": len(sampler.images),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "torch": torch.__version__,
    }
    export_model(model, out / EXPORTED, record)
    return out / EXPORTED

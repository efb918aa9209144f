"""Run by tests/test_distributed.py under torchrun: train a tiny model, save this process's parameters."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from codec.training.config import TrainConfig
from codec.training.loop import train

data, out, method = sys.argv[1:4]
config = TrainConfig(
    method=method, data=data, out=out, steps=3, N=8, M=8, dim=2, codebook_size=16, crop=32, batch=4, lr=1e-2
)
run = train(config)
torch.save(dict(run.model.named_parameters()), Path(out) / f"rank{dist.get_rank()}.pt")
dist.destroy_process_group()

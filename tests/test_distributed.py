"""Data-parallel training with torchrun: two CPU processes (gloo) stay in step and export one model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from codec.model_file import load_exported
from tests.helpers import random_image


@pytest.mark.parametrize("method", ["ours", "uq-aun"])
def test_two_processes_end_with_identical_weights(tmp_path, method):
    data = tmp_path / "data"
    data.mkdir()
    for index in range(4):
        Image.fromarray(random_image(40, 40, seed=index)).save(data / f"{index}.png")
    out = tmp_path / "run"
    worker = Path(__file__).with_name("ddp_worker.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, str(worker), str(data), str(out), method], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "processes drifted apart"
    assert load_exported(out / "model.pt").record["processes"] == 2

"""Rate and distortion of a trained toy-source codec on the fixed test set."""

from __future__ import annotations

import math

import torch

from codec.model_file import ExportedModel
from entropy import coder

CHUNK = 1 << 16


@torch.no_grad()
def code_and_reconstruct(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latents, symbols, reconstruction) of samples `x` (N, D, 1, 1) through actual quantization."""
    y = model.analysis(x)
    symbols = model.to_symbols(y)
    return y, symbols, model.synthesis(model.from_symbols(symbols, y.shape))


@torch.no_grad()
def evaluate_toy(exported: ExportedModel, samples: torch.Tensor, bitstream: bool = False) -> dict[str, float]:
    """bits per dimension (ideal code length under the frozen tables), -10 log10(MSE per dimension),
    and, with `bitstream`, the bits per dimension of a real range-coded stream of the same symbols."""
    model = exported.model
    symbols, squared_error = [], 0.0
    for start in range(0, len(samples), CHUNK):
        x = samples[start : start + CHUNK]
        _, chunk_symbols, x_hat = code_and_reconstruct(model, x)
        squared_error += float(((x_hat - x) ** 2).sum())
        symbols.append(chunk_symbols)
    groups = torch.cat(symbols, dim=1).numpy()
    values = samples.numel()
    result = {
        "bpd": sum(coder.ideal_bits(t, s, escape=True) for t, s in zip(exported.tables, groups)) / values,
        "psnr": -10 * math.log10(squared_error / values),
    }
    if bitstream:
        result["bitstream_bpd"] = 8 * len(coder.encode(list(groups), exported.tables, escape=True)) / values
    return result

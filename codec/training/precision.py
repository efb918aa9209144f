"""Training precision: the transforms in bfloat16 autocast where that is faster, everything else in float32.

Only g_a and g_s run under autocast (their convolutions are most of a step); quantization, the
nearest-codeword search, likelihoods, logits, rate terms and the loss stay float32, because bf16's
8-bit mantissa moves a latent by up to 1/128 of its value, which changes which codeword is nearest
and what a probability costs. Exported models, inference and decoding are float32 whatever the
training precision.

Whether bf16 is faster depends on the machine: on an Intel Xeon with avx512_bf16 but without AMX
whole training steps run at 0.79-0.99x fp32's speed in bf16 (results/training/cost-bf16.json), on one
with AMX at 1.44-2.15x (results/training/cost-bf16-amx.json), and on an AMD Zen 5 class machine g_a +
g_s steps took 0.046 s in bf16 against 0.111 s. So
"auto" measures: on CUDA it takes bf16 where the GPU supports it; on the CPU it times one
convolution of the run's width in both precisions and takes bf16 only when it is clearly faster.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")
BF16_MIN_SPEEDUP = 1.15
"""How much faster the bf16 probe must run for "auto" to choose it on a CPU."""


def autocast_dtype(precision: str) -> "torch.dtype | None":
    """The autocast dtype of a resolved precision ("fp32" -> None)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16}[precision]


def _probe_seconds(width: int, dtype: "torch.dtype | None", repeats: int = 3) -> float:
    import torch

    conv = torch.nn.Conv2d(width, width, 5, stride=2, padding=2).to(memory_format=torch.channels_last)
    x = torch.rand(8, width, 64, 64).contiguous(memory_format=torch.channels_last).requires_grad_()
    best = float("inf")
    for _ in range(repeats + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = conv(x)
        out.float().sum().backward()
        best = min(best, time.perf_counter() - started)
    return best


def resolve_precision(precision: str, device: "torch.device", width: int) -> str:
    """"fp32" or "bf16" for a configured precision ("auto" decides by the device, see the module doc)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    faster = _probe_seconds(width, None) / _probe_seconds(width, torch.bfloat16)
    return "bf16" if faster >= BF16_MIN_SPEEDUP else "fp32"


def cpu_name() -> str:
    """The CPU's model name with its bf16 instruction sets: they decide whether bf16 pays (AMX does)."""
    name, flags = platform.processor(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = [flag for flag in line.split(":", 1)[1].split() if "bf16" in flag]
                break
    except OSError:
        pass
    return f"{name} ({', '.join(flags) or 'no bf16 instructions'})"

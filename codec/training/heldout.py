"""The held-out loss a long run's plateau is judged by: fixed center crops of images it does not train on.

A training log's loss is measured on each step's own random crops, with the training method's noise
or surrogate, and jitters by several percent from step to step; a plateau needs a steadier measure. The
held-out loss is measured on the same crops every time, through actual quantization (rounding around
the medians for uq, nearest codeword for vq) with the entropy model's estimated rate, and in float32
whatever precision the run trains in, so the curve does not jump where a resumed run changes precision.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from codec.images import folder_pixels
from codec.models import UQCodec, VQCodec, bits_per_pixel, psnr

HELDOUT_SIDE = 256
"""Side of the center crops; smaller images lower it for every crop (to a multiple of 16)."""
BATCH = 8


class HeldOutCrops:
    """The center crops of a folder's images, held in memory, and the loss a model scores on them."""

    def __init__(self, folder: str) -> None:
        pixels = folder_pixels(folder)
        side = min([HELDOUT_SIDE] + [min(p.shape[:2]) // 16 * 16 for p in pixels])
        if side < 16:
            raise ValueError(f"the images of {folder} are too small for held-out crops (at least 16x16)")
        crops = []
        for p in pixels:
            top, left = (p.shape[0] - side) // 2, (p.shape[1] - side) // 2
            crops.append(torch.from_numpy(p[top : top + side, left : left + side].copy()).permute(2, 0, 1))
        self.crops = torch.stack(crops).float() / 255.0
        self.description = f"{len(crops)} center crops {side}x{side} of {folder}"

    @torch.no_grad()
    def measure(self, model: VQCodec | UQCodec, lmbda: float) -> dict:
        """Loss (bpp + lmbda * 255^2 * MSE), bpp and PSNR-RGB on the crops, in float32."""
        was_training, dtype = model.training, model.transform_dtype
        model.eval()
        model.transform_dtype = None
        device = next(model.parameters()).device
        bits, squared_error = 0.0, 0.0
        try:
            with torch.compiler.set_stance("force_eager"):  # compiled transforms would recompile for these shapes
                for batch in self.crops.to(device).split(BATCH):
                    out = model(batch, "ste") if isinstance(model, UQCodec) else model(batch)
                    bits += float(out.bits)
                    squared_error += float(((out.x_hat.clamp(0, 1) - batch) ** 2).sum())
        finally:
            model.transform_dtype = dtype
            model.train(was_training)
        bpp = float(bits_per_pixel(torch.tensor(bits), self.crops))
        mse = squared_error / self.crops.numel()
        return {"loss": round(bpp + lmbda * 255.0**2 * mse, 5), "bpp": round(bpp, 5), "psnr": round(psnr(mse), 4)}


def measurements(entries: list[dict], upto: float = math.inf) -> list[dict]:
    """The log lines with a held-out measurement, one per step up to `upto`, by step: a resumed run
    logs the steps after its checkpoint again, and its later line counts."""
    by_step = {e["step"]: e for e in entries if "heldout" in e and e["step"] <= upto}
    return [by_step[step] for step in sorted(by_step)]


FIT_POINTS = 4
"""Fewest held-out measurements a plateau test fits its line through."""


def relative_change(entries: list[dict], fraction: float = 0.2) -> float | None:
    """How much the held-out loss fell over the last `fraction` of the steps logged, relative to its
    value now (0.004 = 0.4% lower now); None until FIT_POINTS measurements span that far back.

    It is read off a least-squares line through the measurements of the last 2 x `fraction` of the
    steps: at a high learning rate the loss jitters by several percent from one measurement to the
    next (lr 3e-4 at N=128/M=192), which a difference of two measurements would take for a trend.
    `entries` are log lines; those with a "heldout" measurement count, once per step (`measurements`).
    """
    points = [(e["step"], e["heldout"]["loss"]) for e in measurements(entries)]
    if not points:
        return None
    last = points[-1][0]
    window = [(step, loss) for step, loss in points if step >= last * (1 - 2 * fraction)]
    if len(window) < FIT_POINTS or window[0][0] > last * (1 - fraction):
        return None
    slope, intercept = np.polyfit(*zip(*window), deg=1)
    return float(-slope * fraction * last / (slope * last + intercept))

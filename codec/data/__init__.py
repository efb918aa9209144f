"""Where training batches come from: random crops of photographs, or samples of a toy source.

Both samplers answer the same protocol, so training needs neither images nor toy sources in particular.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Sampler(Protocol):
    """Draws the batch of training step `step`, the same whenever it is asked (so a resumed run sees the
    batches an unbroken one would)."""

    description: str
    """What the samples are, for the record of a trained model."""

    def batch(self, step: int, size: int) -> torch.Tensor:
        """(size, C, H, W) float samples: images in [0, 1], or toy vectors as (size, D, 1, 1)."""
        ...

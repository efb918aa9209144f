"""Unconditional discrete entropy model: one categorical per group, softmax over learnable logits."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class DiscreteEntropyModel(nn.Module):
    """p_g = softmax(logits_g) over the K codewords of group g, i.i.d. over positions."""

    def __init__(self, groups: int, codebook_size: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(groups, codebook_size))

    def log2_probs(self) -> torch.Tensor:
        """(G, K) log2 probabilities."""
        return torch.log_softmax(self.logits, dim=1) / math.log(2.0)

    def bits(self, indices: torch.Tensor) -> torch.Tensor:
        """Total information content sum -log2 p(i) of indices of shape (G, P)."""
        return -self.log2_probs().gather(1, indices).sum()

    def pmfs(self) -> list[np.ndarray]:
        """Per-group probability vectors, in float64, for freezing into integer tables."""
        with torch.no_grad():
            probs = torch.softmax(self.logits.double(), dim=1)
        return list(probs.cpu().numpy())

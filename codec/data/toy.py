"""Training batches of toy-source samples, fresh every step and reproducible per step."""

from __future__ import annotations

import torch

from codec.data.sources import DIMENSIONS, SOURCES

TEST_SEED = 2**31 - 1
"""Seed of the fixed evaluation set, apart from every training stream."""


class SourceSampler:
    """Draws the batch of step s from a generator seeded by (seed, s), as (size, D, 1, 1) "images"."""

    def __init__(self, source: str, seed: int) -> None:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r} (choose from {', '.join(SOURCES)})")
        self.source = source
        self.dim = DIMENSIONS[source]
        self.seed = seed
        self.description = f"{source} source, {self.dim}-D, fresh samples every step"

    def batch(self, step: int, size: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return SOURCES[self.source](size, generator).reshape(size, self.dim, 1, 1)


class StackedSourceSampler:
    """Batches for stacked codecs (codec/toy/stack.py): member s gets its own SourceSampler's batch
    (seed `seeds[s]`) times `scales[s]`, side by side on the channels, (size, members x D, 1, 1)."""

    def __init__(self, source: str, seeds: list[int], scales: list[float]) -> None:
        self.members = [SourceSampler(source, seed) for seed in seeds]
        self.scales = scales
        self.dim = self.members[0].dim
        self.description = f"{self.members[0].description}; {len(seeds)} stacked codecs, seeds {', '.join(map(str, seeds))}"

    def batch(self, step: int, size: int) -> torch.Tensor:
        return torch.cat([m.batch(step, size) * scale for m, scale in zip(self.members, self.scales)], dim=1)


def test_set(source: str, count: int) -> torch.Tensor:
    """The fixed evaluation samples of a source, (count, D, 1, 1)."""
    generator = torch.Generator().manual_seed(TEST_SEED)
    return SOURCES[source](count, generator).reshape(count, DIMENSIONS[source], 1, 1)

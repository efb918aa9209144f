"""Range coding of grouped symbols with constriction, driven only by integer frequency tables.

Symbols of one group share one distribution, so each group is coded with a single model call
(constriction's fast path) rather than one probability row per symbol.
"""

from __future__ import annotations

from typing import Sequence

import constriction
import numpy as np

from entropy.tables import TOTAL

ROUNDING_SLACK_BITS = 0.01
"""Per symbol: how much cheaper than our table's largest probability allows constriction may code it
(it re-rounds probabilities, by at most K / 2^24 relative, under 0.001 bits for K <= 4096)."""

FLUSH_SLACK_BITS = 64
"""Bits by which a range-coded stream may fall short of its information content (its final state)."""


def _model(freq: np.ndarray) -> constriction.stream.model.Categorical:
    # freq / 2**24 is exactly representable in float64, so every machine builds the same model.
    return constriction.stream.model.Categorical(
        np.asarray(freq, dtype=np.float64) / TOTAL, perfect=False
    )


def encode(symbols: Sequence[np.ndarray], tables: Sequence[np.ndarray]) -> bytes:
    """Code symbols[g] (indices into tables[g]) for every group g, in group order, into one stream."""
    if len(symbols) != len(tables):
        raise ValueError(f"{len(symbols)} symbol groups for {len(tables)} tables")
    encoder = constriction.stream.queue.RangeEncoder()
    for group_symbols, freq in zip(symbols, tables):
        group_symbols = np.ascontiguousarray(group_symbols, dtype=np.int32)
        if group_symbols.size == 0:
            continue
        if group_symbols.min() < 0 or group_symbols.max() >= len(freq):
            raise ValueError("symbol outside its table")
        encoder.encode(group_symbols, _model(freq))
    return encoder.get_compressed().astype("<u4").tobytes()


def minimum_bits(tables: Sequence[np.ndarray], counts: Sequence[int]) -> float:
    """Fewest bits that counts[g] symbols of every group g can be coded in: each costs at least
    -log2 of its table's largest probability, less the coder's rounding and flush slack."""
    per_symbol = [max(0.0, np.log2(TOTAL / float(np.max(freq))) - ROUNDING_SLACK_BITS) for freq in tables]
    return sum(bits * count for bits, count in zip(per_symbol, counts)) - FLUSH_SLACK_BITS


def decode(payload: bytes, tables: Sequence[np.ndarray], counts: Sequence[int]) -> list[np.ndarray]:
    """Inverse of `encode`: counts[g] symbols of group g, in group order.

    A payload too short to hold that many symbols is refused before anything is decoded or
    allocated: the range decoder would otherwise read past its end as zeros without complaint.
    """
    if len(payload) % 4:
        raise ValueError("payload length is not a whole number of 32-bit words")
    needed = minimum_bits(tables, counts)
    if 8 * len(payload) < needed:
        raise ValueError(f"{len(payload)} bytes cannot hold {sum(counts)} symbols (at least {int(needed) // 8} bytes)")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    try:
        return [
            decoder.decode(_model(freq), count).astype(np.int64) if count else np.zeros(0, np.int64)
            for freq, count in zip(tables, counts)
        ]
    except AssertionError:  # constriction's word for data that no stream of this model produces
        raise ValueError("data is not a valid stream for this model") from None

"""Range coding of grouped symbols with constriction, driven only by integer frequency tables.

Symbols of one group share one distribution, so each group is coded with a single model call
(constriction's fast path) rather than one probability row per symbol.
"""

from __future__ import annotations

from typing import Sequence

import constriction
import numpy as np

from entropy.tables import TOTAL


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


def decode(payload: bytes, tables: Sequence[np.ndarray], counts: Sequence[int]) -> list[np.ndarray]:
    """Inverse of `encode`: counts[g] symbols of group g, in group order."""
    if len(payload) % 4:
        raise ValueError("payload length is not a whole number of 32-bit words")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    return [
        decoder.decode(_model(freq), count).astype(np.int64) if count else np.zeros(0, np.int64)
        for freq, count in zip(tables, counts)
    ]

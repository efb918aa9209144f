"""Range coding of grouped symbols with constriction, driven only by integer frequency tables.

Symbols of one group share one distribution, so each group is coded with a single model call
(constriction's fast path) rather than one probability row per symbol.

With `escape`, a symbol outside its table's range [0, K) is coded losslessly instead of refused:
the table gains an escape symbol K (probability ESCAPE_FREQ / 2^24, taken from its most probable
symbol, in integers, so every machine derives the same table), the escape is coded in its place, and
after the group's symbols come the escaped values: a side bit, then Elias-gamma in uniform symbols
(about 2 log2(distance) + 2 bits). This is CompressAI's overflow coding, for latents beyond the
support a uniform quantizer's tables cover.
"""

from __future__ import annotations

from typing import Sequence

import constriction
import numpy as np

from entropy.tables import TOTAL, information_bits

ROUNDING_SLACK_BITS = 0.01
"""Per symbol: how much cheaper than our table's largest probability allows constriction may code it
(it re-rounds probabilities, by at most K / 2^24 relative, under 0.001 bits for K <= 4096)."""

FLUSH_SLACK_BITS = 64
"""Bits by which a range-coded stream may fall short of its information content (its final state)."""

ESCAPE_FREQ = 1 << 12
"""Frequency of the escape symbol (probability 2^-12): 12 bits per escape, 0.00035 bits per other symbol."""

MAX_ESCAPE_BITS = 32
"""An escaped symbol lies less than 2^32 steps outside its table (a latent that far is no image's)."""

GAMMA_CHUNK_BITS = 16
"""The bits of an escaped value are coded in uniform chunks of at most this many bits."""


def with_escape(freq: np.ndarray) -> np.ndarray:
    """The table with an escape symbol appended, its frequency taken from the most probable symbol."""
    extended = np.append(np.asarray(freq, dtype=np.int64), ESCAPE_FREQ)
    largest = int(np.argmax(extended[:-1]))
    if extended[largest] <= ESCAPE_FREQ:
        raise ValueError("table too flat to make room for an escape symbol")
    extended[largest] -= ESCAPE_FREQ
    return extended


def _escaped_uniforms(symbol: int, size: int) -> list[tuple[int, int]]:
    """(value, alphabet size) of the uniform symbols that carry one escaped symbol outside [0, size)."""
    above = symbol >= size
    distance = (symbol - size if above else -symbol - 1) + 1  # >= 1
    length = distance.bit_length()
    if length > MAX_ESCAPE_BITS:
        raise ValueError(f"symbol {symbol} is too far outside its table to escape")
    parts = [(int(above), 2), (length - 1, MAX_ESCAPE_BITS)]
    rest, bits = distance - (1 << (length - 1)), length - 1
    while bits > 0:
        chunk = min(bits, GAMMA_CHUNK_BITS)
        bits -= chunk
        parts.append(((rest >> bits) & ((1 << chunk) - 1), 1 << chunk))
    return parts


def _read_escaped(decoder, size: int) -> int:
    def uniform(alphabet: int) -> int:
        return int(decoder.decode(constriction.stream.model.Uniform(alphabet), 1)[0])

    above, bits = uniform(2), uniform(MAX_ESCAPE_BITS)
    distance = 1
    while bits > 0:
        chunk = min(bits, GAMMA_CHUNK_BITS)
        bits -= chunk
        distance = (distance << chunk) | uniform(1 << chunk)
    return size + distance - 1 if above else -distance


def ideal_bits(freq: np.ndarray, symbols: np.ndarray, escape: bool = False) -> float:
    """Ideal code length in bits of one group's `symbols` as `encode` codes them with table `freq`."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if not escape:
        return information_bits(freq, symbols)
    size = len(freq)
    outside = (symbols < 0) | (symbols >= size)
    escaped = sum(np.log2(alphabet) for s in symbols[outside] for _, alphabet in _escaped_uniforms(int(s), size))
    return information_bits(with_escape(freq), np.where(outside, size, symbols)) + float(escaped)


def _model(freq: np.ndarray) -> constriction.stream.model.Categorical:
    # freq / 2**24 is exactly representable in float64, so every machine builds the same model.
    return constriction.stream.model.Categorical(
        np.asarray(freq, dtype=np.float64) / TOTAL, perfect=False
    )


def encode(symbols: Sequence[np.ndarray], tables: Sequence[np.ndarray], escape: bool = False) -> bytes:
    """Code symbols[g] (indices into tables[g]) for every group g, in group order, into one stream.

    Without `escape` a symbol outside its table is an error; with it, it is coded (module doc).
    """
    if len(symbols) != len(tables):
        raise ValueError(f"{len(symbols)} symbol groups for {len(tables)} tables")
    encoder = constriction.stream.queue.RangeEncoder()
    for group_symbols, freq in zip(symbols, tables):
        group_symbols = np.ascontiguousarray(group_symbols, dtype=np.int64)
        if group_symbols.size == 0:
            continue
        size = len(freq)
        outside = (group_symbols < 0) | (group_symbols >= size)
        if outside.any() and not escape:
            raise ValueError("symbol outside its table")
        if not escape:
            encoder.encode(group_symbols.astype(np.int32), _model(freq))
            continue
        encoder.encode(np.where(outside, size, group_symbols).astype(np.int32), _model(with_escape(freq)))
        for symbol in group_symbols[outside]:
            for value, alphabet in _escaped_uniforms(int(symbol), size):
                encoder.encode(np.array([value], dtype=np.int32), constriction.stream.model.Uniform(alphabet))
    return encoder.get_compressed().astype("<u4").tobytes()


def minimum_bits(tables: Sequence[np.ndarray], counts: Sequence[int]) -> float:
    """Fewest bits that counts[g] symbols of every group g can be coded in: each costs at least
    -log2 of its table's largest probability, less the coder's rounding and flush slack."""
    per_symbol = [max(0.0, np.log2(TOTAL / float(np.max(freq))) - ROUNDING_SLACK_BITS) for freq in tables]
    return sum(bits * count for bits, count in zip(per_symbol, counts)) - FLUSH_SLACK_BITS


def decode(payload: bytes, tables: Sequence[np.ndarray], counts: Sequence[int], escape: bool = False) -> list[np.ndarray]:
    """Inverse of `encode` (with the same `escape`): counts[g] symbols of group g, in group order.

    A payload too short to hold that many symbols is refused before anything is decoded or
    allocated: the range decoder would otherwise read past its end as zeros without complaint.
    """
    if len(payload) % 4:
        raise ValueError("payload length is not a whole number of 32-bit words")
    coded_tables = [with_escape(freq) for freq in tables] if escape else tables
    needed = minimum_bits(coded_tables, counts)
    if 8 * len(payload) < needed:
        raise ValueError(f"{len(payload)} bytes cannot hold {sum(counts)} symbols (at least {int(needed) // 8} bytes)")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    groups = []
    try:
        for freq, coded, count in zip(tables, coded_tables, counts):
            symbols = decoder.decode(_model(coded), count).astype(np.int64) if count else np.zeros(0, np.int64)
            if escape:
                for position in np.flatnonzero(symbols == len(freq)):
                    symbols[position] = _read_escaped(decoder, len(freq))
            groups.append(symbols)
    except AssertionError:  # constriction's word for data that no stream of this model produces
        raise ValueError("data is not a valid stream for this model") from None
    return groups

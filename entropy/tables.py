"""Integer frequency tables: the frozen form of an entropy model that the coder uses.

A table is computed once, when a model is exported, from the model's float probabilities.
Encoder and decoder then use only these integers, so the entropy decoder does no float math
that could differ between machines or thread counts.
"""

from __future__ import annotations

import numpy as np

PRECISION = 24
TOTAL = 1 << PRECISION


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Turn a probability vector into integer frequencies >= 1 that sum to exactly 2**precision.

    Every symbol keeps a nonzero frequency so that any index stays encodable. The rounding
    residue is settled on the largest entries, which changes their share the least.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    if pmf.ndim != 1 or pmf.size == 0:
        raise ValueError("pmf must be a non-empty vector")
    total = 1 << precision
    if pmf.size > total:
        raise ValueError(f"{pmf.size} symbols do not fit a {precision}-bit table")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0) or pmf.sum() <= 0:
        raise ValueError("pmf must be finite, non-negative and not all zero")
    spare = total - pmf.size
    freq = 1 + np.floor(pmf / pmf.sum() * spare).astype(np.int64)
    residue = total - int(freq.sum())
    order = np.argsort(-pmf, kind="stable")
    freq[order[: residue % pmf.size]] += 1
    freq[order] += residue // pmf.size
    return freq


def information_bits(freq: np.ndarray, symbols: np.ndarray) -> float:
    """Ideal code length in bits of `symbols` under the integer table `freq`."""
    freq = np.asarray(freq, dtype=np.float64)
    return float(-np.log2(freq[symbols] / freq.sum()).sum())

"""Frozen integer tables and the constriction range coder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from entropy import coder
from entropy.discrete import DiscreteEntropyModel
from entropy.tables import TOTAL, information_bits, quantize_pmf


@pytest.mark.parametrize("size", [1, 2, 7, 256, 32768])
def test_tables_sum_exactly_and_keep_every_symbol(size):
    pmf = np.random.default_rng(size).dirichlet(np.full(size, 0.3))
    pmf[::3] = 0.0
    if pmf.sum() == 0:
        pmf[0] = 1.0
    freq = quantize_pmf(pmf)
    assert freq.sum() == TOTAL
    assert freq.min() >= 1
    assert np.allclose(freq / TOTAL, pmf / pmf.sum(), atol=size / TOTAL + 1e-6)


def test_table_rejects_bad_pmfs():
    with pytest.raises(ValueError):
        quantize_pmf(np.array([0.5, np.nan]))
    with pytest.raises(ValueError):
        quantize_pmf(np.zeros(4))


def test_round_trip_of_several_groups_of_different_alphabets():
    rng = np.random.default_rng(1)
    tables = [quantize_pmf(rng.dirichlet(np.ones(k))) for k in (3, 64, 1000)]
    symbols = [rng.integers(0, len(t), size=n) for t, n in zip(tables, (10, 0, 5000))]
    payload = coder.encode(symbols, tables)
    decoded = coder.decode(payload, tables, [len(s) for s in symbols])
    for original, restored in zip(symbols, decoded):
        assert np.array_equal(original, restored)


def test_size_is_within_half_a_percent_of_the_information_content():
    rng = np.random.default_rng(2)
    tables, symbols = [], []
    for _ in range(16):
        pmf = rng.dirichlet(np.full(4096, 0.05))
        tables.append(quantize_pmf(pmf))
        symbols.append(rng.choice(4096, size=20000, p=pmf))
    ideal_bits = sum(information_bits(t, s) for t, s in zip(tables, symbols))
    actual_bits = 8 * len(coder.encode(symbols, tables))
    assert ideal_bits <= actual_bits <= 1.005 * ideal_bits


@pytest.mark.parametrize("peak", [0.3, 0.99, 1 - 1e-6])
def test_the_cheapest_stream_is_still_accepted(peak):
    """The capacity check must never refuse a real stream: the most probable symbol, over and over."""
    tables = [quantize_pmf(np.r_[peak, np.full(k - 1, (1 - peak) / (k - 1))]) for k in (2, 32, 4096)]
    symbols = [np.zeros(n, dtype=np.int64) for n in (1, 3000, 40000)]
    payload = coder.encode(symbols, tables)
    assert 8 * len(payload) >= coder.minimum_bits(tables, [len(s) for s in symbols])
    decoded = coder.decode(payload, tables, [len(s) for s in symbols])
    assert all(np.array_equal(a, b) for a, b in zip(symbols, decoded))


def test_a_payload_too_short_for_its_symbols_is_refused_before_decoding():
    tables = [quantize_pmf(np.ones(256))]
    payload = coder.encode([np.arange(256)], tables)
    with pytest.raises(ValueError, match="cannot hold 100000000 symbols"):
        coder.decode(payload, tables, [100_000_000])
    with pytest.raises(ValueError, match="cannot hold 256 symbols"):
        coder.decode(payload[:128], tables, [256])


def test_an_invalid_stream_is_a_value_error():
    tables = [quantize_pmf(np.random.default_rng(0).dirichlet(np.full(32, 0.3)))]
    with pytest.raises(ValueError, match="not a valid stream"):
        coder.decode(b"\xff" * 8, tables, [3])


def test_symbols_outside_the_table_are_refused():
    with pytest.raises(ValueError, match="outside its table"):
        coder.encode([np.array([3])], [quantize_pmf(np.ones(3))])


def test_discrete_model_bits_match_its_probabilities():
    model = DiscreteEntropyModel(groups=2, codebook_size=4)
    with torch.no_grad():
        model.logits.copy_(torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.25] * 4])))
    indices = torch.tensor([[0, 1, 2], [3, 3, 3]])
    assert float(model.bits(indices)) == pytest.approx(1 + 2 + 3 + 2 * 3)
    assert np.allclose(model.pmfs()[0], [0.5, 0.25, 0.125, 0.125])


def test_escaped_symbols_round_trip_on_both_sides_and_cost_what_ideal_bits_says():
    rng = np.random.default_rng(11)
    tables = [quantize_pmf(rng.random(12) + 0.05) for _ in range(3)]
    symbols = [rng.integers(0, 12, 2000) for _ in range(3)]
    symbols[0][[0, 5, 9]] = [-1, 12, -(2**31) + 5]
    symbols[2][-4:] = [2**31, 13, -7, 500]
    with pytest.raises(ValueError, match="outside its table"):
        coder.encode(symbols, tables)
    payload = coder.encode(symbols, tables, escape=True)
    decoded = coder.decode(payload, tables, [2000] * 3, escape=True)
    assert all(np.array_equal(a, b) for a, b in zip(symbols, decoded))
    ideal = sum(coder.ideal_bits(t, s, escape=True) for t, s in zip(tables, symbols))
    assert ideal <= 8 * len(payload) <= 1.005 * ideal + 64
    with pytest.raises(ValueError, match="too far outside"):
        coder.encode([np.array([2**40])], tables[:1], escape=True)


def test_escape_tables_are_integer_and_cost_in_support_symbols_almost_nothing():
    freq = quantize_pmf(np.array([0.7, 0.2, 0.1]))
    extended = coder.with_escape(freq)
    assert extended.sum() == TOTAL and extended[-1] == coder.ESCAPE_FREQ and extended.dtype == np.int64
    symbols = np.array([0, 1, 2] * 1000)
    assert coder.ideal_bits(freq, symbols, escape=True) - information_bits(freq, symbols) < 1e-3 * len(symbols)

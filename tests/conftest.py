"""Shared fixtures: tiny exported models (untrained, seconds to build) and a zoo that holds them.

Plain helpers live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from codec import zoo
from codec.model_file import ExportedModel, load_exported
from codec.models import ModelConfig
from tests.helpers import make_exported


@pytest.fixture(scope="session")
def tiny_vq_path(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("vq"), ModelConfig("vq", N=8, M=8, dim=4, codebook_size=32))


@pytest.fixture(scope="session")
def tiny_uq_path(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("uq"), ModelConfig("uq", N=8, M=8))


@pytest.fixture(scope="session")
def tiny_vq(tiny_vq_path) -> ExportedModel:
    return load_exported(tiny_vq_path)


@pytest.fixture(scope="session")
def tiny_uq(tiny_uq_path) -> ExportedModel:
    return load_exported(tiny_uq_path)


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch, tiny_vq_path, tiny_vq) -> str:
    """A zoo holding only the tiny VQ model, as default, named 'tiny'."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "tiny.pt").write_bytes(tiny_vq_path.read_bytes())
    monkeypatch.setattr(zoo, "WEIGHTS", weights)
    monkeypatch.setattr(zoo, "INDEX", weights / "index.json")
    zoo.register("tiny", "tiny.pt", tiny_vq.model_id, {"method": "ours", "dim": 4}, make_default=True)
    return "tiny"



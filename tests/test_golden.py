"""Every `.bin` made by a shipped model keeps decoding to the same symbols and pixels (files made by scripts/make_golden_files.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec import zoo

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from make_golden_files import GOLDEN, decode_golden  # noqa: E402  (the script that made the files)

INDEX = json.loads((GOLDEN / "index.json").read_text())


def test_every_shipped_model_has_a_golden_file():
    assert set(zoo.names()) <= set(INDEX)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_golden_file_decodes_to_the_same_symbols_and_pixels(name):
    """The symbols exactly; the pixels up to the synthesis transform's float rounding, which differs
    between CPU instruction sets: at most 1 apart, in at most 1% of the values."""
    symbols, decoded = decode_golden(name)
    assert symbols == INDEX[name]["sha256_of_symbols"]
    assert list(decoded.shape) == INDEX[name]["shape"]
    reference = np.asarray(Image.open(GOLDEN / f"{name}.png"))
    difference = np.abs(decoded.astype(int) - reference.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.01

"""Every `.bin` made by a shipped model keeps decoding to the same pixels (files made by scripts/make_golden_files.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bitstream.format import parse
from codec import coding, zoo
from codec.model_file import load_exported

GOLDEN = Path(__file__).parent / "golden"
INDEX = json.loads((GOLDEN / "index.json").read_text())


def test_every_shipped_model_has_a_golden_file():
    assert set(zoo.names()) <= set(INDEX)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_golden_file_decodes_to_the_same_pixels(name):
    data = (GOLDEN / f"{name}.bin").read_bytes()
    header, payload = parse(data)
    exported = load_exported(zoo.path_for_id(header.model_id))
    decoded = coding.decode(exported, header, payload)
    assert list(decoded.shape) == INDEX[name]["shape"]
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == INDEX[name]["sha256_of_pixels"]

"""The shipped models: the index matches the files, and the default codes a real photo sensibly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codec import coding, zoo
from codec.model_file import load_exported
from codec.errors import UnknownModelError
from codec.models import psnr
from tests.helpers import KODAK


@pytest.mark.parametrize("name", zoo.names())
def test_index_ids_match_the_model_files(name):
    exported = load_exported(zoo.resolve(name))
    assert zoo.path_for_id(exported.model_id) == zoo.resolve(name)
    assert {"training", "wall_seconds", "machine"} <= exported.record.keys()


def test_a_default_is_shipped():
    assert zoo.default_name() in zoo.names()


def test_unknown_names_are_refused():
    with pytest.raises(UnknownModelError, match="no model named 'no-such-model'"):
        zoo.resolve("no-such-model")


@pytest.mark.slow
@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/kodak is not present")
def test_default_model_on_kodim23():
    exported = load_exported(zoo.resolve(None))
    pixels = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    data = coding.compress(exported, pixels)
    decoded = coding.decompress(exported, data)
    quality = psnr(float(np.mean((decoded.astype(float) - pixels) ** 2)), 255.0)
    bpp = 8 * len(data) / pixels[..., 0].size
    assert 0.05 < bpp < 2.0
    assert quality > 26.0

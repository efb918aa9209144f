"""Golden `.bin` files: one per shipped model, with what they decode to.

Usage: python scripts/make_golden_files.py [--image ../shared/kodak/kodim23.png]

Run once by a commit whose decoder is the reference (the index records which); tests/test_golden.py
then checks that every later decoder turns each file into the same symbols, exactly, and into the
same pixels up to the float rounding of the synthesis transform, which differs between CPU
instruction sets (the files of two shipped models decode a few values 1 apart on an AVX2 EPYC
from the AVX-512 Xeon that made them). Per file the index keeps the SHA-256 of its entropy-decoded
symbols (integer work, the same on every machine) and of its pixels, and `<name>.png` holds the
pixels. A 96x64 crop keeps the files small. Existing files are never rewritten: a new model adds its
own, and an entry made before symbols and pixels were kept gets them from the current decoder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from bitstream.format import parse
from codec import coding, zoo
from codec.model_file import load_exported
from codec.training.precision import cpu_name

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=Path("../shared/kodak/kodim23.png"))
    args = parser.parse_args()
    pixels = np.asarray(Image.open(args.image).convert("RGB"))[200:264, 300:396].copy()
    index_path = GOLDEN / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for name in zoo.names():
        if name in index:
            continue
        exported = load_exported(zoo.resolve(name))
        data = coding.compress(exported, pixels)
        decoded = coding.decompress(exported, data)
        (GOLDEN / f"{name}.bin").write_bytes(data)
        index[name] = {"sha256_of_pixels": hashlib.sha256(decoded.tobytes()).hexdigest(), "shape": list(decoded.shape), "made_by": commit}
        print(name, len(data), "bytes")
    for name, entry in index.items():
        if "sha256_of_symbols" not in entry:
            entry["sha256_of_symbols"], decoded = decode_golden(name)
            Image.fromarray(decoded).save(GOLDEN / f"{name}.png")
            entry["symbols_and_png_made_by"] = f"{commit} on {platform.machine()}, {cpu_name()}"
            entry["png_is_the_reference_decode"] = hashlib.sha256(decoded.tobytes()).hexdigest() == entry["sha256_of_pixels"]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def decode_golden(name: str) -> tuple[str, np.ndarray]:
    """The SHA-256 of a golden file's entropy-decoded symbols, and its pixels."""
    header, payload = parse((GOLDEN / f"{name}.bin").read_bytes())
    exported = load_exported(zoo.path_for_id(header.model_id))
    symbols, shape = coding.decode_symbols(exported, header, payload)
    return hashlib.sha256(symbols.numpy().tobytes()).hexdigest(), coding.reconstruct(exported, symbols, shape, header.height, header.width)


if __name__ == "__main__":
    main()

"""Golden `.bin` files: one per shipped model, with the SHA-256 of the pixels they decode to.

Usage: python scripts/make_golden_files.py [--image ../shared/kodak/kodim23.png]

Run once by a commit whose decoder is the reference (the index records which); tests/test_golden.py
then checks that every later decoder turns each file into exactly those pixels. A 96x64 crop keeps
the files small (a few hundred bytes). Existing files are never rewritten: a new model adds its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from codec import coding, zoo
from codec.model_file import load_exported

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
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

"""Start-up time of the commands that need no model: `--help`, `info`, and refusing a damaged file.

Usage: python scripts/bench_startup.py [--repeat 5]
Prints the median wall time of each (a fresh process every time) and writes results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bitstream.format import Header, ImageMode, pack

VQCODEC = [sys.executable, "-m", "codec"]


def median_seconds(command: list[str], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    good = folder / "good.bin"
    good.write_bytes(pack(Header(bytes(16), 512, 768, ImageMode.RGB, 0, 0, 8), bytes(8)))
    damaged = folder / "damaged.bin"
    damaged.write_bytes(good.read_bytes()[:-3])
    cases = {
        "help": [*VQCODEC, "--help"],
        "info": [*VQCODEC, "info", str(good)],
        "reject_damaged_bin": [*VQCODEC, "decompress", str(damaged), str(folder / "out.png")],
        "python_baseline": [sys.executable, "-c", "pass"],
    }
    seconds = {name: round(median_seconds(command, args.repeat), 3) for name, command in cases.items()}
    for name, value in seconds.items():
        print(f"{name:20s} {value:.3f} s")
    Path("results").mkdir(exist_ok=True)
    Path("results/startup.json").write_text(json.dumps({"median_seconds": seconds, "repeat": args.repeat}, indent=2) + "\n")


if __name__ == "__main__":
    main()

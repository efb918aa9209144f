"""Long fuzz run of the decoder: damaged `.bin` files through parse, entropy decoding and synthesis.

Usage: python scripts/fuzz_decoder.py [--inputs 10000] [--model NAME_OR_FILE] [--seed 0]

Inputs are made by the hypothesis strategies of tests/fuzzing.py from small valid files of the
model (Kodak crops). Every input must be decoded or refused with a one-line BitstreamError, within
5 s, and the process may not grow by more than --memory-mb (an address-space limit turns a larger
allocation into a reported crash). Counts, the slowest input and the reasons for refusal go to
results/fuzz.json. An input stuck for a minute stops the run with a traceback (faulthandler).
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import hashlib
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitstream.format import ImageMode  # noqa: E402
from codec import coding, zoo  # noqa: E402
from codec.model_file import load_exported  # noqa: E402
from codec.images import load_image  # noqa: E402
from tests.fuzzing import damaged_files, decode_verdict  # noqa: E402

HANG_SECONDS = 5.0
STUCK_SECONDS = 60
KODAK = Path(__file__).resolve().parents[2] / "shared" / "kodak"
CROPS = [(0, 0, 32, 48), (100, 200, 1, 1), (300, 17, 17, 33), (200, 400, 64, 64), (5, 600, 48, 16)]
"""(top, left, height, width) crops of kodim23 that make the seed corpus: small, so decoding is fast."""


def seed_corpus(exported) -> list[bytes]:
    """Valid files of the model: Kodak crops (random pixels without Kodak), one of them grayscale."""
    source = KODAK / "kodim23.png"
    pixels = load_image(source).pixels if source.exists() else np.random.default_rng(0).integers(0, 256, (512, 768, 3), np.uint8)
    crops = [np.ascontiguousarray(pixels[t : t + h, l : l + w]) for t, l, h, w in CROPS]
    gray = crops[0][..., :1].repeat(3, axis=2)
    return [coding.compress(exported, crop) for crop in crops] + [coding.compress(exported, gray, ImageMode.L)]


def address_space_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--model", help="shipped model name or model file (default: the shipped default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=2048, help="address space the decoder may add")
    parser.add_argument("--out", default="results/fuzz.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    exported = load_exported(zoo.resolve(args.model))
    corpus = seed_corpus(exported)
    for data in corpus:
        assert decode_verdict(exported, data).outcome == "accepted", "a seed file does not decode"
    rss_before = peak_rss_mb()
    limit = address_space_bytes() + args.memory_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

    outcomes: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    crashes: list[dict] = []
    seconds: list[float] = []
    digests: set[bytes] = set()
    slowest = {"seconds": 0.0}

    @seed(args.seed)
    @settings(max_examples=args.inputs, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(damaged_files(corpus))
    def fuzz(data: bytes) -> None:
        faulthandler.dump_traceback_later(STUCK_SECONDS, exit=True)
        started = time.perf_counter()
        verdict = decode_verdict(exported, data)
        elapsed = time.perf_counter() - started
        faulthandler.cancel_dump_traceback_later()
        outcomes[verdict.outcome] += 1
        seconds.append(elapsed)
        digests.add(hashlib.sha256(data).digest())
        if verdict.outcome == "rejected":
            reasons[re.sub(r"\d+", "N", verdict.detail)] += 1
        elif verdict.outcome == "crash" and len(crashes) < 20:
            crashes.append({"detail": verdict.detail, "input_hex": data[:200].hex(), "length": len(data)})
        if elapsed > slowest["seconds"]:
            slowest.update(seconds=elapsed, length=len(data), outcome=verdict.outcome, detail=verdict.detail)

    started = time.perf_counter()
    fuzz()
    report = {
        "model": args.model or zoo.default_name(),
        "model_id": exported.model_id.hex(),
        "seed": args.seed,
        "inputs": len(seconds),
        "distinct_inputs": len(digests),
        "accepted": outcomes["accepted"],
        "rejected": outcomes["rejected"],
        "crashes": outcomes["crash"],
        "hangs": sum(s > HANG_SECONDS for s in seconds),
        "max_seconds_per_input": round(max(seconds), 4),
        "median_seconds_per_input": round(statistics.median(seconds), 5),
        "slowest_input": slowest,
        "peak_rss_mb_before": round(rss_before, 1),
        "peak_rss_mb_after": round(peak_rss_mb(), 1),
        "address_space_limit_added_mb": args.memory_mb,
        "rejection_reasons": dict(reasons.most_common()),
        "crash_examples": crashes,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("rejection_reasons", "crash_examples")}, indent=2))
    sys.exit(1 if report["crashes"] or report["hangs"] else 0)


if __name__ == "__main__":
    main()

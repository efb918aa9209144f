"""Speed and memory of the codec, against CompressAI's bmshj2018-factorized with the same widths.

Usage: python scripts/bench.py [--images ../shared/kodak] [--sections speed search memory] [--threads 2] [--model NAME] [--out results/bench.json]

speed   Encode and decode seconds per image (median over the folder), split into file I/O (read the
        PNG input and write the .bin; read the .bin and write the pixels as PPM, whose cost does not
        depend on the content), transform, quantization search and entropy coding; the same for
        CompressAI's FactorizedPrior(N, M) (random init, which times the same) in the same run, as
        shipped and with channels-last inputs (the layout our transforms use), and our/their ratios. Also the entropy coder's symbols per second and its file overhead over the
        ideal information content of the symbols.
search  Nearest-codeword search for d = 4: the model's real search on one Kodak latent (a VQ model), and
        48 groups x 1536 positions (a 192-channel latent of a 768x512 image) at K = 4096 and 32768,
        brute force against the k-d tree (first call, which builds the trees, and a cached call), with
        the index disagreements counted. Then the training searches on entropy-constrained
        codebooks shaped like vq-ste's: tiers against one tree at K = 32768 ("search_tiers"), and
        1-D codebooks along their cost lines' lower envelope against brute force ("search_envelope").
memory  Peak RSS of `vqcodec compress` and `vqcodec decompress` of a 4000x3000 photo (an upscaled
        Kodak image), each in a fresh process.

Results are merged into results/bench.json (or --out) with the load average, since a shared CPU slows everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bitstream.format import Header, parse, pack
from codec import coding, search, zoo
from codec.model_file import load_exported
from codec.files import atomic_write
from codec.images import image_paths, load_image, save_image
from entropy import coder

RESULTS = Path("results/bench.json")
LARGE_SIZE = (4000, 3000)


class Stopwatch:
    """Seconds per named stage of one image."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, function, *args):
        started = time.perf_counter()
        result = function(*args)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        return result


def ours(exported, source: Path, folder: Path) -> tuple[dict, dict, dict]:
    """Encode and decode stage timings of one image, and its symbol count, payload and ideal bits."""
    encode, decode = Stopwatch(), Stopwatch()
    image = encode.run("file_io", load_image, source)
    height, width = image.pixels.shape[:2]
    y = encode.run("transform", coding.latent, exported, image.pixels)
    with torch.no_grad():
        symbols = encode.run("search", exported.model.to_symbols, y)
    payload = encode.run("entropy_coding", coder.encode, list(symbols.numpy()), exported.tables, escape=True)
    header = Header(exported.model_id, height, width, image.mode, coding.padding(height), coding.padding(width), len(payload))
    data = pack(header, payload)
    target = folder / f"{source.stem}.bin"
    encode.run("file_io", atomic_write, target, data)
    assert data == coding.compress(exported, image.pixels, image.mode), "the timed steps are not the real encoder"

    parsed, payload = decode.run("file_io", lambda: parse(target.read_bytes()))
    decoded, shape = decode.run("entropy_coding", coding.decode_symbols, exported, parsed, payload)
    pixels = decode.run("transform", coding.reconstruct, exported, decoded, shape, height, width)
    decode.run("file_io", save_image, folder / f"{source.stem}.ppm", pixels, parsed.mode)
    ideal = sum(coder.ideal_bits(t, s, escape=True) for t, s in zip(exported.tables, symbols.numpy()))
    stats = {"symbols": symbols.numel(), "payload_bits": 8 * len(payload), "ideal_bits": ideal}
    return encode.seconds, decode.seconds, stats


@torch.no_grad()
def compressai(model, source: Path, folder: Path, layout: torch.memory_format) -> tuple[dict, dict]:
    """The same stages for CompressAI's factorized prior (its quantization is rounding, inside its coder)."""
    encode, decode = Stopwatch(), Stopwatch()
    image = encode.run("file_io", load_image, source)
    height, width = image.pixels.shape[:2]

    def analysis():
        x = torch.from_numpy(image.pixels.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        return model.g_a(F.pad(x, (0, -width % 16, 0, -height % 16), mode="replicate").contiguous(memory_format=layout))

    y = encode.run("transform", analysis)
    strings = encode.run("entropy_coding", model.entropy_bottleneck.compress, y)
    target = folder / f"{source.stem}.cai"
    encode.run("file_io", atomic_write, target, struct.pack("<IIII", height, width, *y.shape[2:]) + strings[0])

    def read():
        data = target.read_bytes()
        return struct.unpack_from("<IIII", data), data[16:]

    (height, width, *latent), string = decode.run("file_io", read)
    y_hat = decode.run("entropy_coding", model.entropy_bottleneck.decompress, [string], latent)

    def synthesis():
        x_hat = model.g_s(y_hat.contiguous(memory_format=layout))[0, :, :height, :width].clamp(0, 1)
        return torch.round(x_hat * 255).to(torch.uint8).permute(1, 2, 0).numpy()

    pixels = decode.run("transform", synthesis)
    decode.run("file_io", save_image, folder / f"{source.stem}.cai.ppm", pixels, image.mode)
    return encode.seconds, decode.seconds


def medians(runs: list[dict]) -> dict[str, float]:
    stages = sorted({stage for run in runs for stage in run})
    result = {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in stages}
    result["total"] = statistics.median(sum(run.values()) for run in runs)
    return {name: round(value, 4) for name, value in result.items()}


def bench_speed(images: Path, model: str) -> dict:
    from compressai.models import FactorizedPrior

    exported = load_exported(zoo.resolve(model))
    config = exported.model.config
    torch.manual_seed(0)
    reference = FactorizedPrior(config.N, config.M).eval()
    reference.update(force=True)
    layouts = {"compressai": torch.contiguous_format, "compressai_channels_last": torch.channels_last}
    runs = {name: ([], []) for name in ["ours", *layouts]}
    stats = []
    paths = image_paths(images)
    with tempfile.TemporaryDirectory() as scratch:
        for path in {load_image(p).pixels.shape: p for p in paths}.values():  # warm-up: one image per shape, untimed
            ours(exported, path, Path(scratch))
            for layout in layouts.values():
                compressai(reference, path, Path(scratch), layout)
        for path in paths:
            encode, decode, stat = ours(exported, path, Path(scratch))
            runs["ours"][0].append(encode), runs["ours"][1].append(decode), stats.append(stat)
            for name, layout in layouts.items():
                encode, decode = compressai(reference, path, Path(scratch), layout)
                runs[name][0].append(encode), runs[name][1].append(decode)
    result = {"images": len(stats)}
    for name, (encodes, decodes) in runs.items():
        result[name] = {"encode": medians(encodes), "decode": medians(decodes)}
    result["ours"].update(model=model, N=config.N, M=config.M, dim=config.dim, codebook_size=config.codebook_size)
    result["compressai"]["model"] = f"bmshj2018_factorized (FactorizedPrior N={config.N}, M={config.M}, random init)"
    for name in layouts:
        for side in ("encode", "decode"):
            result[f"{side}_ratio_to_{name}"] = round(result["ours"][side]["total"] / result[name][side]["total"], 3)
    ours_encode, ours_decode = runs["ours"]
    symbols = sum(s["symbols"] for s in stats)
    payload, ideal = sum(s["payload_bits"] for s in stats), sum(s["ideal_bits"] for s in stats)
    entropy = {
        "symbols": symbols,
        "encode_symbols_per_second": round(symbols / sum(run["entropy_coding"] for run in ours_encode)),
        "decode_symbols_per_second": round(symbols / sum(run["entropy_coding"] for run in ours_decode)),
        "payload_overhead_over_information_percent": round(100 * (payload - ideal) / ideal, 4),
        "header_bytes_per_file": 40,
    }
    return {"speed": result, "entropy_coding": entropy}


def timed(function, *args) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def cdist_argmin(vectors, codebooks, penalty):
    """torch.cdist + argmin one group at a time (all groups at once would need 9 GB at K = 32768)."""
    rows = []
    for group in range(vectors.shape[0]):
        distances = torch.cdist(vectors[group], codebooks[group]) ** 2
        rows.append((distances if penalty is None else distances + penalty[group]).argmin(-1))
    return torch.stack(rows)


def search_row(name: str, vectors, codebooks, penalty, with_cdist: bool = False) -> dict:
    """Brute force against the k-d tree search: its first call for these codebooks (trees built) and a later
    one (trees cached, as for every image after the first that a loaded model codes)."""
    brute, brute_seconds = timed(search.brute_force, vectors, codebooks, penalty)
    search.clear_tree_cache()
    tree, tree_seconds = timed(search.kdtree, vectors, codebooks, penalty)
    _, cached_seconds = timed(search.kdtree, vectors, codebooks, penalty)
    row = {"case": name, "groups": vectors.shape[0], "positions": vectors.shape[1], "codebook_size": codebooks.shape[1],
           "penalty": penalty is not None, "brute_force_seconds": round(brute_seconds, 4),
           "kdtree_seconds": round(tree_seconds, 4), "kdtree_cached_seconds": round(cached_seconds, 4),
           "speedup": round(brute_seconds / tree_seconds, 1), "speedup_cached": round(brute_seconds / cached_seconds, 1),
           "indices_differing": int((brute != tree).sum()), "uses_kdtree": search.uses_kdtree(vectors, codebooks, penalty)}
    if with_cdist:
        row["cdist_argmin_seconds"] = round(timed(cdist_argmin, vectors, codebooks, penalty)[1], 4)
    print(row)
    return row


@torch.no_grad()
def bench_search(images: Path, model_name: str) -> dict:
    exported = load_exported(zoo.resolve(model_name))
    model = exported.model
    if model.config.quantizer != "vq":
        raise SystemExit(f"the search benchmark needs a VQ model; {model_name} quantizes uniformly (pass --model)")
    y = coding.latent(exported, load_image(image_paths(images)[0]).pixels)
    vectors = model.quantizer.to_vectors(y)
    codebooks = model.quantizer.codebooks.detach()
    rows = [search_row(f"{model_name}, first Kodak image", vectors, codebooks, model.search_penalty())]
    for positions in (16, 64, 256, 1024):
        rows.append(search_row(f"{model_name}, crossover", vectors[:, :positions], codebooks, model.search_penalty()))
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(48, 1536, 4, generator=generator)
    for size in (4096, 32768):
        words = torch.randn(48, size, 4, generator=generator)
        penalty = -0.05 * torch.log_softmax(torch.randn(48, size, generator=generator) * 2, dim=-1) / np.log(2)
        rows.append(search_row("192-channel latent of 768x512, d=4", latent, words, None, with_cdist=True))
        rows.append(search_row("192-channel latent of 768x512, d=4", latent, words, penalty))
    return {"search": rows, "search_tiers": tier_rows(generator), "search_envelope": envelope_row(generator)}


def envelope_row(generator: torch.Generator) -> dict:
    """Training's entropy-constrained search of 1-D codebooks along the lower envelope of their cost
    lines against brute force, at the 8-D Laplace vq-ste-1d stack's step: 56 groups x 1,024 vectors, K = 256."""
    codebooks = 3 * torch.randn(56, 256, 1, generator=generator)
    penalty = 10 * torch.rand(56, 256, generator=generator)
    vectors = 4 * torch.randn(56, 1024, 1, generator=generator)
    brute, brute_seconds = timed(search.brute_force, vectors, codebooks, penalty)
    envelope, envelope_seconds = timed(search.line_penalized_nearest, vectors, codebooks, penalty)
    row = {"groups": 56, "positions": 1024, "codebook_size": 256, "brute_force_seconds": round(brute_seconds, 4),
           "envelope_seconds": round(envelope_seconds, 4), "speedup": round(brute_seconds / envelope_seconds, 1),
           "indices_differing": int((brute != envelope).sum())}
    print(row)
    return row


def tier_rows(generator: torch.Generator) -> list[dict]:
    """Entropy-constrained search in tiers (search._tiers) against one tree per group, on
    penalties shaped like those of the 4-D toy vq-ste stack's step (14 groups x 1,024 vectors, K =
    32,768, codewords spread over a ball of radius ~8): a share of codewords in use at costs spread up to
    the floor that all others share. At its lowest slope 1% are in use below a floor of 250 and the
    latents sit within a cell of the origin; at a middle slope 10% below 70, latents of norm ~5.
    Each search is timed on its second call, with its trees built by the first."""
    rows = []
    for case, in_use, floor, spread in (("lowest slope", 0.01, 250.0, 0.3), ("middle slope", 0.1, 70.0, 3.0)):
        codebooks = 4 * torch.randn(14, 32768, 4, generator=generator)
        live = torch.rand(14, 32768, generator=generator) < in_use
        penalty = torch.where(live, floor * torch.rand(14, 32768, generator=generator), torch.full((14, 32768), floor))
        vectors = spread * torch.randn(14, 1024, 4, generator=generator)
        rows += tier_case(case, vectors, codebooks, penalty)
    return rows


def tier_case(case: str, vectors: torch.Tensor, codebooks: torch.Tensor, penalty: torch.Tensor) -> list[dict]:
    brute = search.brute_force(vectors, codebooks, penalty)
    rows = []
    for name in ("kdtree", "TrackedSearch"):
        row = {"case": case, "search": name}
        for label, tiers in (("tiers", search._tiers), ("one_tree", lambda points, lifted, smallest=1: [np.arange(len(points))])):
            default, search._tiers = search._tiers, tiers
            try:
                search.clear_tree_cache()
                tracked = search.TrackedSearch()
                find = search.kdtree if name == "kdtree" else lambda *args: tracked.k_nearest(*args[:2], 1, args[2])[..., 0]
                find(vectors, codebooks, penalty)
                answer, row[f"{label}_seconds"] = timed(find, vectors, codebooks, penalty)
            finally:
                search._tiers = default
            row[f"{label}_indices_differing"] = int((answer != brute).sum())
        row["speedup"] = round(row["one_tree_seconds"] / row["tiers_seconds"], 1)
        rows.append(row)
        print(row)
    return rows


PEAK_RSS = (
    "import re; print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)"
)
"""The process's own peak RSS; ru_maxrss would also count the pages it shared with this parent at fork."""


def peak_rss_mb(argv: list[str]) -> dict:
    script = f"import sys; from codec.cli import main; code = main(sys.argv[1:]); {PEAK_RSS}; sys.exit(code)"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True)
    return {"peak_rss_mb": round(float(result.stdout.split()[-1]), 1), "seconds": round(time.perf_counter() - started, 1)}


def bench_memory(images: Path, model: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = image_paths(images)[22] if len(image_paths(images)) > 22 else image_paths(images)[0]
        with Image.open(source) as image:
            image.convert("RGB").resize(LARGE_SIZE, Image.BICUBIC).save(folder / "large.png")
        baseline = subprocess.run([sys.executable, "-c", f"import codec.coding; {PEAK_RSS}"], capture_output=True, text=True, check=True)
        result = {
            "image": f"{source.name} upscaled to {LARGE_SIZE[0]}x{LARGE_SIZE[1]}",
            "python_with_torch_imported_mb": round(float(baseline.stdout.split()[-1]), 1),
            "model": model,
            "compress": peak_rss_mb(["compress", str(folder / "large.png"), str(folder / "large.bin"), "--model", model]),
            "decompress": peak_rss_mb(["decompress", str(folder / "large.bin"), str(folder / "back.png")]),
        }
    print(result)
    return {"memory": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="../shared/kodak")
    parser.add_argument("--sections", nargs="+", default=["speed", "search", "memory"], choices=["speed", "search", "memory"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="a shipped model's name (default: the default model)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON to merge the sections into")
    args = parser.parse_args()
    model = args.model or zoo.default_name()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    results = args.out
    report = json.loads(results.read_text()) if results.exists() else {}
    load_before = os.getloadavg()
    sections = {"speed": bench_speed, "search": bench_search, "memory": bench_memory}
    for name in args.sections:
        report.update(sections[name](Path(args.images), model))
    report.setdefault("runs", {})
    for name in args.sections:
        report["runs"][name] = {
            "threads": args.threads, "cpus": os.cpu_count(), "machine": platform.machine(), "torch": torch.__version__,
            "load_average_before": [round(v, 2) for v in load_before], "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("speed", "entropy_coding") if k in report}, indent=2))


if __name__ == "__main__":
    main()

"""The `vqcodec` command: compress, decompress, info, models, train.

torch and compressai take seconds to import, so they are imported only by the commands that run a
model; `--help`, `info` and the rejection of a damaged file answer without them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from bitstream.format import BitstreamError, Header, parse
from codec import zoo
from codec.errors import USER_ERRORS, ImageInputError, OutputExistsError
from codec.files import atomic_write, check_writable
from codec.training.config import CHOICES, TrainConfig, field_docs


class CommandError(Exception):
    """A failure to report as one line and a non-zero exit."""


def _read_bin(path: Path) -> tuple[Header, bytes]:
    if not path.is_file():
        raise CommandError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        return parse(path.read_bytes())
    except BitstreamError as error:
        raise CommandError(f"{path}: {error}") from None


def _load_model(name_or_path: str | None):
    path = zoo.resolve(name_or_path)
    from codec.model_file import load_exported

    return load_exported(path)


def _read_image(source: Path, target: Path, force: bool):
    """The input image, once it and the output path are known to be usable."""
    from codec.images import load_image

    check_writable(target, force)
    image = load_image(source)
    for note in image.notes:
        print(f"{source}: note: {note}", file=sys.stderr)
    return image


def _compress_one(exported, image, target: Path) -> tuple[float, float]:
    """Compress one loaded image to `target`; returns (bpp, psnr)."""
    import numpy as np

    from codec import coding
    from codec.models import psnr

    encoded = coding.encode(exported, image.pixels, image.mode)
    atomic_write(target, encoded.data)
    height, width = image.pixels.shape[:2]
    decoded = coding.reconstruct(exported, encoded.symbols, encoded.shape, height, width)
    mse = float(np.mean((decoded.astype(np.float64) - image.pixels) ** 2))
    return 8 * len(encoded.data) / (height * width), psnr(mse, 255.0)


def _model_for_quality(quality: int) -> str:
    """The default curve's shipped model for a cwebp-style quality 0-100 (its points split the range evenly)."""
    if not 0 <= quality <= 100:
        raise CommandError(f"--quality must be between 0 and 100, not {quality}")
    curve = zoo.curve(zoo.default_name())
    return curve[min(len(curve) - 1, quality * len(curve) // 100)]


def cmd_compress(args: argparse.Namespace) -> int:
    if args.quality is not None:
        if args.model is not None:
            raise CommandError("give --quality or --model, not both")
        args.model = _model_for_quality(args.quality)
    source, target = Path(args.input), Path(args.output)
    if not source.exists():
        raise CommandError(f"{source} does not exist")
    if source.is_file():
        image = _read_image(source, target, args.force)
        bpp, quality = _compress_one(_load_model(args.model), image, target)
        print(f"{source} -> {target}: {bpp:.4f} bpp, PSNR {quality:.2f} dB")
        return 0
    from tqdm import tqdm

    exported = _load_model(args.model)
    target.mkdir(parents=True, exist_ok=True)
    inputs = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    failures, results = [], []
    for path in tqdm(inputs, desc="compressing", unit="image"):
        try:
            output = target / f"{path.stem}.bin"
            results.append(_compress_one(exported, _read_image(path, output, args.force), output))
            tqdm.write(f"{path.name}: {results[-1][0]:.4f} bpp, PSNR {results[-1][1]:.2f} dB")
        except (ImageInputError, OutputExistsError, OSError) as error:
            failures.append(path)
            tqdm.write(f"vqcodec: error: {error}", file=sys.stderr)
    if results:
        mean_bpp = sum(r[0] for r in results) / len(results)
        mean_psnr = sum(r[1] for r in results) / len(results)
        print(f"{len(results)} compressed into {target}: mean {mean_bpp:.4f} bpp, PSNR {mean_psnr:.2f} dB")
    if failures:
        print(f"vqcodec: error: {len(failures)} of {len(inputs)} files failed", file=sys.stderr)
        return 1
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    source, target = Path(args.input), Path(args.output)
    header, payload = _read_bin(source)
    check_writable(target, args.force)
    if args.model is None and zoo.path_for_id(header.model_id) is None:
        raise CommandError(
            f"{source} was made by model {header.model_id.hex()}, which is not installed (pass --model FILE)"
        )
    from codec import coding
    from codec.images import save_image

    exported = _load_model(args.model or str(zoo.path_for_id(header.model_id)))
    try:
        pixels = coding.decode(exported, header, payload)
    except BitstreamError as error:
        raise CommandError(f"{source}: {error}") from None
    save_image(target, pixels, header.mode)
    print(f"{source} -> {target}: {header.width}x{header.height} {header.mode.name}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    header, _ = _read_bin(Path(args.input))
    names = [name for name in zoo.names() if zoo.path_for_id(header.model_id) == zoo.resolve(name)]
    print(f"format version: {header.version}")
    print(f"model id:       {header.model_id.hex()} ({', '.join(names) if names else 'not installed'})")
    print(f"image size:     {header.width}x{header.height} {header.mode.name}")
    print(f"padding:        {header.pad_bottom} rows, {header.pad_right} columns")
    print(f"payload:        {header.payload_length} bytes")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """A table of the shipped models: what each is and what it gives on Kodak."""
    print(f"{'model':16s} {'method':8s} {'d':>2s} {'MB':>5s} {'Kodak bpp':>10s} {'PSNR dB':>8s}")
    for row in zoo.table():
        size = f"{row['megabytes']:.1f}" if row["megabytes"] is not None else "-"
        bpp = f"{row['kodak_bpp']:.4f}" if row["kodak_bpp"] is not None else "-"
        quality = f"{row['kodak_psnr']:.2f}" if row["kodak_psnr"] is not None else "-"
        dim = str(row["dim"]) if row["dim"] else "-"
        default = "  (default)" if row["default"] else ""
        print(f"{row['name']:16s} {row['method'] or '-':8s} {dim:>2s} {size:>5s} {bpp:>10s} {quality:>8s}{default}")
    return 0


def _print_point(label: str, point: dict[str, float]) -> None:
    overhead = f", coder overhead {100 * point['coder_overhead']:.3f}%" if "coder_overhead" in point else ""
    print(
        f"{label}: {point['bpp']:.4f} bpp, PSNR {point['psnr-rgb']:.2f} dB, encode {point['encoding_time']:.2f} s, "
        f"decode {point['decoding_time']:.2f} s per image{overhead}"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from codec.evaluation.baselines import BASELINES
    from codec.evaluation.rd import evaluate_model, measure, summary, write_results
    from codec.images import image_paths

    images = Path(args.images)
    runs, codebooks, description = {}, {}, args.description
    if args.baseline:
        if args.baseline not in BASELINES:
            raise CommandError(f"unknown baseline {args.baseline!r} (choose from {', '.join(BASELINES)})")
        description, codecs = BASELINES[args.baseline]
        for label, codec in codecs.items():
            runs[label] = [measure(codec, p) for p in tqdm(image_paths(images), desc=label, unit="image")]
            _print_point(label, summary(runs[label]))
    else:
        for name in args.model or [zoo.default_name()]:
            runs[name], statistics = evaluate_model(_load_model(name), images, label=name)
            _print_point(name, summary(runs[name]))
            if statistics:
                codebooks[name] = statistics
    if args.out:
        write_results(Path(args.out), args.name or Path(args.out).stem, description, runs, codebooks)
        print(f"wrote {args.out}")
    return 0


def cmd_bdrate(args: argparse.Namespace) -> int:
    from codec.evaluation.bdrate import METHODS, bd_rate

    for method in METHODS:
        print(f"BD-rate ({method}) of {args.test} against {args.anchor}: {bd_rate(Path(args.anchor), Path(args.test), method):+.2f}%")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from codec.evaluation.plots import plot_rd

    plot_rd([Path(p) for p in args.results], Path(args.out), title=args.title)
    print(f"wrote {args.out}")
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    from codec.toy import study

    folder = Path(args.out)
    slopes = args.slope or study.SLOPES[args.source]
    if args.method == "ecvq":
        curves = {"ecvq": ("ECVQ in the source space (Lagrangian Lloyd)", study.ecvq_curve(args.source, slopes), {})}
    elif args.method == "rd-bound":
        curves = {name: (text, points, {}) for name, (text, points) in study.bound_curves(args.source).items()}
    else:
        curve = study.ToyCurve(args.method, args.dim, args.rate_gradient)
        steps = args.steps or study.STEPS
        seeds = tuple(range(args.seeds))
        points, check = study.learned_curve(args.source, curve, slopes, steps, Path(args.runs), seeds)
        curves = {curve.name: (f"{args.method}, d={args.dim}, {steps} steps, {args.seeds} seeds", points, {"bitstream": check, "seeds": list(seeds)})}
    if folder.suffix == ".json" and len(curves) > 1:
        raise CommandError(f"--out {folder} names one file, but {args.method} makes {len(curves)} curves: give a folder")
    for name, (description, points, extra) in curves.items():
        print(f"wrote {study.write_curve(folder, args.source, name, description, points, **extra)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from codec.training.loop import train

    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    try:
        config = TrainConfig(**fields)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"exported {train(config).exported}")
    return 0


def _add_train_options(parser: argparse.ArgumentParser, with_methods: bool) -> None:
    """One option per TrainConfig field, with its documentation and default; the methods with theirs.

    The method registry imports torch, so it is read only when the command is `train`.
    """
    docs = field_docs()
    methods = None
    if with_methods:
        from codec.training.methods import METHODS, VQ_OPTIONS

        methods = METHODS
        width = max(map(len, METHODS))
        lines = [f"  {name:{width}s}  {m.description}" for name, m in METHODS.items()]
        lines += ["", "options read by every VQ method: " + ", ".join(f"--{o.replace('_', '-')}" for o in VQ_OPTIONS)]
        lines += [f"options read by {name} only: " + ", ".join(f"--{o.replace('_', '-')}" for o in m.options)
                  for name, m in METHODS.items() if m.options]
        parser.epilog = "methods:\n" + "\n".join(lines)
    for field in dataclasses.fields(TrainConfig):
        if isinstance(field.default, tuple):
            continue  # stacked codecs (stack_lmbdas, stack_seeds) are the toy study's, not the command line's
        flag = f"--{field.name.replace('_', '-')}"
        text = f"{docs.get(field.name, '')} (default: {field.default!r})".replace("%", "%%")
        if isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=field.default, help=text)
        elif field.name == "method" and methods is not None:
            parser.add_argument(flag, dest=field.name, default=field.default, choices=list(methods), help=text)
        elif field.name in CHOICES:
            parser.add_argument(flag, dest=field.name, default=field.default, choices=CHOICES[field.name], help=text)
        else:
            parser.add_argument(flag, dest=field.name, type=type(field.default), default=field.default, help=text)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqcodec", description="Learned image codec with channel-split vector quantization.")
    commands = parser.add_subparsers(dest="command", required=True)

    compress = commands.add_parser("compress", help="image (or folder of images) -> .bin")
    compress.add_argument("input", help="image file, or a folder whose images are all compressed")
    compress.add_argument("output", help=".bin file, or a folder when the input is a folder")
    compress.add_argument("--model", help="shipped model name or model file (default: the shipped default)")
    compress.add_argument(
        "--quality", type=int, metavar="Q",
        help="0-100 as in cwebp: picks a model of the default's curve, low Q = small file, high Q = best quality",
    )
    compress.add_argument("--force", action="store_true", help="overwrite existing outputs")
    compress.set_defaults(run=cmd_compress)

    decompress = commands.add_parser("decompress", help=".bin -> image (PNG)")
    decompress.add_argument("input")
    decompress.add_argument("output")
    decompress.add_argument("--model", help="model file, for files made by a model that is not shipped")
    decompress.add_argument("--force", action="store_true", help="overwrite an existing output")
    decompress.set_defaults(run=cmd_decompress)

    info = commands.add_parser("info", help="print the header of a .bin file")
    info.add_argument("input")
    info.set_defaults(run=cmd_info)

    models = commands.add_parser("models", help="list the shipped models")
    models.set_defaults(run=cmd_models)

    evaluate = commands.add_parser("eval", help="code an image folder for real with one model or a curve of them")
    evaluate.add_argument("--model", action="append", help="model name or file; repeat for a curve (default: the default)")
    evaluate.add_argument("--baseline", help="a classical codec instead of models: hevc-444, jpeg or webp")
    evaluate.add_argument("--images", required=True, help="folder of images, e.g. ../shared/kodak")
    evaluate.add_argument("--out", help="result JSON (CompressAI layout); per-image records go beside it")
    evaluate.add_argument("--name", help="curve name in the JSON (default: the file's stem)")
    evaluate.add_argument("--description", default="", help="free text stored in the JSON")
    evaluate.set_defaults(run=cmd_eval)

    bdrate = commands.add_parser("bdrate", help="Bjontegaard delta rate of one result JSON against another")
    bdrate.add_argument("anchor")
    bdrate.add_argument("test")
    bdrate.set_defaults(run=cmd_bdrate)

    plot = commands.add_parser("plot", help="RD curves of result JSONs as a PNG")
    plot.add_argument("results", nargs="+")
    plot.add_argument("--out", required=True)
    plot.add_argument("--title", default="Kodak")
    plot.set_defaults(run=cmd_plot)

    toy = commands.add_parser("toy", help="an RD curve on a toy source (gaussian, boomerang, laplace)")
    toy.add_argument("--source", required=True, choices=("gaussian", "boomerang", "laplace"))
    toy.add_argument("--method", required=True, help="a training method, 'ecvq' or 'rd-bound'")
    toy.add_argument("--dim", type=int, default=1, choices=(1, 2, 4), help="VQ dimension d")
    toy.add_argument("--slope", type=float, action="append", help="loss = bpd + slope * MSE; one point each (default: the study's)")
    toy.add_argument("--steps", type=int, help="training steps per point (default: the study's)")
    toy.add_argument("--seeds", type=int, default=1, help="models per point, trained from seeds 0, 1, ...; the point is their mean")
    toy.add_argument("--rate-gradient", default="mixture", choices=("mixture", "sphere"))
    toy.add_argument("--out", default="results/toy", help="a folder (<source>_<curve>.json inside), or a .json file")
    toy.add_argument("--runs", default="runs/toy")
    toy.set_defaults(run=cmd_toy)

    train = commands.add_parser(
        "train", help="train a model (vqcodec train --help lists every option and method)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_options(train, with_methods=list(argv[:1]) == ["train"])
    train.set_defaults(run=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, FileNotFoundError, IsADirectoryError, PermissionError, *USER_ERRORS) as error:
        print(f"vqcodec: error: {error}", file=sys.stderr)
        return 1

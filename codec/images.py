"""Reading images into 8-bit RGB pixels and writing decoded ones, with a clear word on every conversion."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bitstream.format import MAX_PIXELS, MAX_SIDE, ImageMode
from codec.errors import ImageInputError
from codec.files import atomic_write

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
"""Pillow's decompression-bomb guard set to the format's own limit, which `_check_size` enforces."""

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}


@dataclass
class LoadedImage:
    """8-bit RGB pixels (H, W, 3), the mode to restore on decode, and what was converted on the way."""

    pixels: np.ndarray
    mode: ImageMode
    notes: list[str] = field(default_factory=list)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, read without Pillow, which refuses to open empty images."""
    with open(path, "rb") as stream:
        head = stream.read(24)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _drop_opaque_alpha(image: Image.Image, path: Path, notes: list[str]) -> Image.Image:
    alpha = np.asarray(image.getchannel("A"))
    if alpha.min() < 255:
        raise ImageInputError(
            f"{path} has transparent pixels: this codec stores no alpha channel (flatten the image first)"
        )
    notes.append(f"{image.mode} image with a fully opaque alpha channel: alpha dropped")
    return image.convert("RGB" if image.mode == "RGBA" else "L")


def _to_supported(image: Image.Image, path: Path, notes: list[str]) -> Image.Image:
    """Bring any Pillow mode to RGB or L, refusing what would lose information silently."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        notes.append("palette image converted to RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        image = _drop_opaque_alpha(image.convert("RGBA") if image.mode == "PA" else image, path, notes)
    if image.mode == "1":
        notes.append("1-bit image coded as 8-bit grayscale")
        return image.convert("L")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if values.max() > 255:
            values = values / 257.0 if values.max() <= 65535 else values * 255.0 / values.max()
            notes.append(f"{image.mode} image with more than 8 bits per sample reduced to 8-bit grayscale")
        return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))
    if image.mode not in ("RGB", "L"):
        notes.append(f"{image.mode} image converted to RGB")
        return image.convert("RGB")
    return image


def _check_size(path: Path, width: int, height: int) -> None:
    """Refuse, from the declared size and before any pixel is decoded, what a `.bin` file could not describe."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageInputError(
            f"{path} is {width}x{height}: larger than the .bin format's {MAX_SIDE} pixels per side or {MAX_PIXELS} pixels"
        )


def load_image(path: Path) -> LoadedImage:
    """Read an image file as 8-bit RGB; grayscale inputs are remembered so they decode as grayscale."""
    path = Path(path)
    if not path.exists():
        raise ImageInputError(f"{path} does not exist")
    if path.is_dir():
        raise ImageInputError(f"{path} is a folder, not an image")
    try:
        with Image.open(path) as opened:
            _check_size(path, opened.width, opened.height)
            opened.load()
            image = opened.copy()
    except Image.DecompressionBombError:
        raise ImageInputError(f"{path} is larger than the .bin format's {MAX_PIXELS} pixels") from None
    except UnidentifiedImageError:
        size = _png_declared_size(path)
        if size is not None and 0 in size:
            raise ImageInputError(f"{path} has no pixels ({size[0]}x{size[1]})") from None
        raise ImageInputError(f"{path} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(f"{path} is a damaged image ({error})") from None
    if image.width == 0 or image.height == 0:
        raise ImageInputError(f"{path} has no pixels ({image.width}x{image.height})")
    notes: list[str] = []
    image = _to_supported(image, path, notes)
    mode = ImageMode.L if image.mode == "L" else ImageMode.RGB
    return LoadedImage(pixels=np.asarray(image.convert("RGB"), dtype=np.uint8), mode=mode, notes=notes)


def encode_image(pixels: np.ndarray, mode: ImageMode, suffix: str) -> bytes:
    """Encode decoded pixels into an image file's bytes; the format follows the output's suffix."""
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if mode == ImageMode.L:
        image = image.convert("L")
    file_format = Image.registered_extensions().get(suffix.lower())
    if file_format is None:
        raise ImageInputError(f"cannot write images with suffix {suffix!r} (use .png)")
    buffer = io.BytesIO()
    image.save(buffer, format=file_format)
    return buffer.getvalue()


def save_image(path: Path, pixels: np.ndarray, mode: ImageMode) -> None:
    """Write decoded pixels atomically."""
    atomic_write(Path(path), encode_image(pixels, mode, Path(path).suffix))


def image_paths(folder: str | Path) -> list[Path]:
    """The image files of `folder` (by suffix), sorted; an empty folder is an error."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    return paths


def folder_pixels(folder: str | Path, progress: str | None = None) -> list[np.ndarray]:
    """Every image of `folder` as (H, W, 3) uint8 RGB, in `image_paths` order; `progress` labels a bar."""
    paths = image_paths(folder)
    if progress:
        from tqdm import tqdm  # only training shows a bar; the codec's own reads need no tqdm

        paths = tqdm(paths, desc=progress, leave=False)
    pixels = []
    for path in paths:
        with Image.open(path) as image:
            pixels.append(np.asarray(image.convert("RGB")))
    return pixels

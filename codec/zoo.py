"""Shipped models by name, and the lookup of a model by the id a `.bin` file carries.

`weights/index.json` maps names to files and ids, so a file's model can be found (or reported
missing) without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from codec.errors import UnknownModelError

WEIGHTS = Path(__file__).parent / "weights"
INDEX = WEIGHTS / "index.json"


def _index() -> dict:
    return json.loads(INDEX.read_text()) if INDEX.is_file() else {"default": None, "models": {}}


def default_name() -> str:
    name = _index()["default"]
    if name is None:
        raise UnknownModelError("no default model is installed")
    return name


def names() -> list[str]:
    """Names of the shipped models."""
    return sorted(_index()["models"])


def resolve(name_or_path: str | None) -> Path:
    """The model file for a shipped model's name, or a path to a model file; None means the default."""
    models = _index()["models"]
    name = default_name() if name_or_path is None else name_or_path
    if name in models:
        return WEIGHTS / models[name]["file"]
    path = Path(name)
    if path.is_file():
        return path
    raise UnknownModelError(
        f"no model named {name!r} (shipped: {', '.join(names()) or 'none'}) and no such model file"
    )


def curve(name: str) -> list[str]:
    """The shipped rate points of the curve that model `name` belongs to (`<curve>-q<i>`), by rate."""
    stem = name.rsplit("-q", 1)[0] if "-q" in name else name
    models = _index()["models"]
    points = [n for n in models if n == name or (n.rsplit("-q", 1)[0] == stem and n.rsplit("-q", 1)[-1].isdigit())]
    return sorted(points, key=lambda n: (models[n].get("kodak_bpp") or 0.0, n))


def table() -> list[dict]:
    """One row per shipped model: name, method, d, size in MB, Kodak bpp and PSNR, whether it is the default."""
    index = _index()
    rows = []
    for name in names():
        entry = index["models"][name]
        rows.append({
            "name": name,
            "method": entry.get("method"),
            "dim": entry.get("dim"),
            "megabytes": (WEIGHTS / entry["file"]).stat().st_size / 1e6 if (WEIGHTS / entry["file"]).exists() else None,
            "kodak_bpp": entry.get("kodak_bpp"),
            "kodak_psnr": entry.get("kodak_psnr"),
            "default": name == index["default"],
        })
    return rows


def path_for_id(model_id: bytes) -> Path | None:
    """The shipped model file whose id is `model_id`, if any."""
    for entry in _index()["models"].values():
        if entry["id"] == model_id.hex():
            return WEIGHTS / entry["file"]
    return None


def register(name: str, file_name: str, model_id: bytes, facts: dict, make_default: bool = False) -> None:
    """Add (or replace) a shipped model in the index; used by the scripts that export models.

    `facts` are what `vqcodec models` shows without loading the model: "method", "dim" (None for
    uniform quantization), "kodak_bpp" and "kodak_psnr" (from the model's Kodak evaluation).
    """
    index = _index()
    index["models"][name] = {"file": file_name, "id": model_id.hex(), **facts}
    if make_default or index["default"] is None:
        index["default"] = name
    _write(index)


def set_default(name: str) -> None:
    """Make shipped model `name` the one `vqcodec compress` uses without --model."""
    index = _index()
    if name not in index["models"]:
        raise UnknownModelError(f"no model named {name!r} is shipped")
    index["default"] = name
    _write(index)


def _write(index: dict) -> None:
    INDEX.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

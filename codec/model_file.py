"""The exported-model file: config, fp16 weights, frozen integer frequency tables, training record.

The model id written into every `.bin` is a hash of exactly what the decoder uses (config, weights,
tables), so a file can only be decoded by the model that made it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bitstream.format import MODEL_ID_BYTES
from codec.errors import ModelFileError
from codec.files import atomic_write
from codec.models import ModelConfig, UQCodec, VQCodec, build_model
from entropy import bottleneck
from entropy.tables import quantize_pmf

EXPORT_FORMAT = "vqcodec-model/1"
_CODER_BUFFERS = tuple(f"entropy_bottleneck.{name}" for name in bottleneck.CODER_BUFFERS)
"""compressai's own coder tables: not used by our coder, and their shapes vary, so they are not exported."""


@dataclass
class ExportedModel:
    """A codec ready to code files: float32 weights in eval mode and the integer tables of its groups."""

    model: VQCodec | UQCodec
    tables: list[np.ndarray]
    model_id: bytes
    record: dict = field(default_factory=dict)

    def compress(self, pixels: np.ndarray) -> bytes:
        """An (H, W, 3) uint8 image -> the bytes of a `.bin` file (codec/coding.py)."""
        from codec import coding  # coding builds on this module

        return coding.compress(self, pixels)

    def decompress(self, data: bytes) -> np.ndarray:
        """The exact inverse of `compress`: a `.bin` file made by this model -> (H, W, 3) uint8 pixels."""
        from codec import coding

        return coding.decompress(self, data)


LATER_CONFIG_FIELDS = {"members": 1}
"""ModelConfig fields added after models were shipped, with their defaults: a field at its default is
left out of the id, so every file made before it keeps its id."""


def _content_id(config: ModelConfig, state: dict[str, torch.Tensor], tables: list[np.ndarray]) -> bytes:
    fields = {k: v for k, v in asdict(config).items() if LATER_CONFIG_FIELDS.get(k, object()) != v}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(state):
        tensor = state[name].contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    for table in tables:
        digest.update(np.asarray(table, dtype="<i8").tobytes())
    return digest.digest()[:MODEL_ID_BYTES]


def _pad_tables(tables: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(t) for t in tables], dtype=torch.long)
    padded = torch.zeros(len(tables), int(lengths.max()), dtype=torch.long)
    for row, table in enumerate(tables):
        padded[row, : len(table)] = torch.from_numpy(np.asarray(table, dtype=np.int64))
    return padded, lengths


def export_model(model: VQCodec | UQCodec, path: Path, record: dict) -> bytes:
    """Freeze the entropy model into integer tables, store fp16 weights, and return the model id."""
    model = model.cpu().eval()
    if isinstance(model, UQCodec):
        model.freeze_support()
    state = {
        name: (tensor.half() if tensor.is_floating_point() else tensor).detach().clone()
        for name, tensor in model.state_dict().items()
        if name not in _CODER_BUFFERS
    }
    # Tables come from the fp16 weights the decoder will really have.
    exported = _build(model.config, state)
    tables = [quantize_pmf(pmf) for pmf in exported.pmfs()]
    model_id = _content_id(model.config, state, tables)
    padded, lengths = _pad_tables(tables)
    content = {
        "format": EXPORT_FORMAT,
        "config": asdict(model.config),
        "state_dict": state,
        "tables": padded,
        "table_lengths": lengths,
        "model_id": model_id.hex(),
        "record": json.dumps(record, sort_keys=True),
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write(Path(path), buffer.getvalue())
    return model_id


def _build(config: ModelConfig, state: dict[str, torch.Tensor]) -> VQCodec | UQCodec:
    model = build_model(config)
    full_state = model.state_dict()
    full_state.update({name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()})
    model.load_state_dict(full_state)
    return model.eval()


def load_exported(path: Path) -> ExportedModel:
    """Load a model file written by `export_model`, checking its format and its id."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelFileError(f"{path} is not a readable model file ({type(error).__name__})") from None
    if not isinstance(content, dict) or content.get("format") != EXPORT_FORMAT:
        raise ModelFileError(f"{path} is not a vqcodec model file (expected format {EXPORT_FORMAT})")
    try:
        config = ModelConfig(**content["config"])
        state = content["state_dict"]
        lengths = content["table_lengths"].tolist()
        tables = [row[:n].numpy() for row, n in zip(content["tables"], lengths)]
        model = _build(config, state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} is a damaged model file ({error})") from None
    model_id = _content_id(config, state, tables)
    if model_id.hex() != content.get("model_id"):
        raise ModelFileError(f"{path} is a damaged model file (content does not match its id)")
    return ExportedModel(model=model, tables=tables, model_id=model_id, record=json.loads(content["record"]))

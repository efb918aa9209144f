"""How far a Sinkhorn plan's training indices are from the nearest codeword, for trained toy VQ models.

Usage: python scripts/toy_assignments.py runs/toy-probes/LABEL/*/model.pt [--samples 1024]

For each lone model file (a study's or probe's member; stacked runs' own files are skipped), on one
batch of its source: the share of vectors whose Sinkhorn index, with uniform codeword masses and with
the entropy model's probabilities as masses (codec/quantizers.py), is not the nearest codeword, and
the mean squared distance from the vectors to the codewords each choice picks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from codec.data.sources import SOURCES
from codec.model_file import load_exported
from codec.models import VQCodec
from codec.quantizers import sinkhorn_assign


@torch.no_grad()
def assignment_gaps(model: VQCodec, x: torch.Tensor) -> dict[str, float]:
    """{choice: share not nearest, choice_mse: mean squared distance to the chosen codewords} for the
    nearest codeword and the two Sinkhorn plans, on samples `x` (N, D, 1, 1)."""
    quantizer = model.quantizer
    vectors = quantizer.to_vectors(model.analysis(x))
    nearest = quantizer.nearest(vectors)
    choices = {
        "nearest": nearest,
        "sinkhorn_uniform": sinkhorn_assign(vectors, quantizer.codebooks),
        "sinkhorn_entropy": sinkhorn_assign(vectors, quantizer.codebooks, torch.exp2(model.entropy.log2_probs())),
    }
    measured = {}
    for name, indices in choices.items():
        measured[f"{name}_not_nearest"] = round(float((indices != nearest).float().mean()), 4)
        measured[f"{name}_mse"] = round(float(((vectors - quantizer.lookup(indices)) ** 2).sum(-1).mean()), 5)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model files of lone toy VQ codecs")
    parser.add_argument("--samples", type=int, default=1024, help="vectors per group, as one training batch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.models:
        exported = load_exported(path)
        model = exported.model.float().eval()
        source = exported.record.get("training", {}).get("source")
        if not isinstance(model, VQCodec) or model.config.transform != "mlp" or source not in SOURCES:
            continue
        x = SOURCES[source](args.samples, torch.Generator().manual_seed(7)).reshape(args.samples, -1, 1, 1)
        print(json.dumps({"model": str(path), **assignment_gaps(model, x)}))


if __name__ == "__main__":
    main()

"""Codebook health on an image folder: utilization, perplexity and quantization error per model."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from codec import coding
from codec.model_file import ExportedModel
from codec.images import image_paths, load_image
from codec.models import VQCodec
from codec.quantizers import codebook_usage, index_counts


@torch.no_grad()
def codebook_statistics(exported: ExportedModel, folder: Path) -> dict[str, float]:
    """Share of codewords used over all codebooks, mean perplexity exp(H) over codebooks, and the
    mean squared distance between latent vectors and their codewords (per vector)."""
    model = exported.model
    if not isinstance(model, VQCodec):
        raise ValueError("codebook statistics need a VQ model")
    quantizer = model.quantizer
    counts = torch.zeros(quantizer.groups, quantizer.codebook_size)
    squared_error, vectors_seen = 0.0, 0
    for path in image_paths(folder):
        y = coding.latent(exported, load_image(path).pixels)
        vectors = quantizer.to_vectors(y)
        indices = model.to_symbols(y)
        counts += index_counts(indices, quantizer.codebook_size)
        squared_error += float(((vectors - quantizer.lookup(indices)) ** 2).sum())
        vectors_seen += vectors.shape[0] * vectors.shape[1]
    utilization, perplexity = codebook_usage(counts)
    return {
        "utilization": float(torch.tensor(utilization).mean()),
        "perplexity": float(torch.tensor(perplexity).mean()),
        "quantization_mse": squared_error / vectors_seen,
    }


def lattice_offsets(codebooks: torch.Tensor) -> torch.Tensor:
    """Each codeword coordinate's distance from its group's integer lattice, (G, K, d), shifted per
    group and coordinate by the circular mean of the coordinates' fractional parts.

    Codebooks started on the lattice (`--codebook-init lattice`) sit at 0 until training moves them;
    a VQ can only beat uniform quantization's cubic cells by leaving it.
    """
    points = codebooks.detach().double()
    angles = 2 * math.pi * points
    shift = torch.atan2(angles.sin().mean(1, keepdim=True), angles.cos().mean(1, keepdim=True)) / (2 * math.pi)
    relative = points - shift
    return (relative - relative.round()).abs()

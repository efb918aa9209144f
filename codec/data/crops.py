"""Training batches: random crops of a folder of photographs, reproducible per step."""

from __future__ import annotations

from pathlib import Path

import torch

from codec.images import folder_pixels


class CropSampler:
    """Holds a folder's images in memory and draws the batch of step s from a generator seeded by (seed, s).

    Drawing by step number makes a resumed run see exactly the batches an uninterrupted one would.
    """

    def __init__(self, folder: str | Path, crop: int, seed: int) -> None:
        self.images = [
            torch.from_numpy(pixels.copy()).permute(2, 0, 1)
            for pixels in folder_pixels(folder, progress="loading training images")
            if min(pixels.shape[:2]) >= crop
        ]
        if not self.images:
            raise ValueError(f"no image in {folder} is at least {crop}x{crop}")
        self.crop = crop
        self.seed = seed
        self.description = f"{len(self.images)} images of {folder}, random {crop}x{crop} crops with flips"

    def batch(self, step: int, size: int) -> torch.Tensor:
        """(size, 3, crop, crop) float images in [0, 1]."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        crops = []
        for index in torch.randint(len(self.images), (size,), generator=generator).tolist():
            image = self.images[index]
            top = int(torch.randint(image.shape[1] - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(image.shape[2] - self.crop + 1, (1,), generator=generator))
            crop = image[:, top : top + self.crop, left : left + self.crop]
            if bool(torch.rand(1, generator=generator) < 0.5):
                crop = crop.flip(2)
            crops.append(crop)
        return torch.stack(crops).float() / 255.0

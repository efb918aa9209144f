"""Reproduces the first shipped default model: a uq-aun pretrain, then 4-d VQ (vq-ste) fine-tuned from it.

Usage: python scripts/train_default.py [--data ../shared/train] [--out runs/default]
Both stages resume from their checkpoints when re-run. The exported model is copied into
codec/weights/ and registered as vq-ste-4d-n64 (the default stays as it is). Its stage 1 is also the
pretrain of the Kodak comparison (results/kodak/RECIPE.md).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from codec import zoo
from codec.model_file import load_exported
from codec.training.config import TrainConfig
from codec.training.loop import CHECKPOINT, train

NAME = "vq-ste-4d-n64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/train")
    parser.add_argument("--out", default="runs/default")
    args = parser.parse_args()
    common = dict(data=args.data, N=64, M=64, crop=128, batch=8, lmbda=0.013)
    pretrain = TrainConfig(method="uq-aun", out=f"{args.out}/uq-aun", steps=7000, lr=3e-4, **common)
    train(pretrain)
    finetune = TrainConfig(
        method="vq-ste", out=f"{args.out}/vq-ste-4d", steps=2000, lr=1e-4, dim=4, codebook_size=4096, rate_weight=0.05,
        codebook_init="lattice", init_from=str(Path(pretrain.out) / CHECKPOINT), **common,
    )
    exported = train(finetune).exported
    target = zoo.WEIGHTS / f"{NAME}.pt"
    shutil.copyfile(exported, target)
    # Kodak figures from `vqcodec eval --model vq-ste-4d-n64 --images ../shared/kodak` (results/kodak/vq-ste-4d-n64.json)
    facts = {"method": "vq-ste", "dim": 4, "kodak_bpp": 0.4988, "kodak_psnr": 26.83}
    zoo.register(NAME, target.name, load_exported(target).model_id, facts)
    print(f"shipped {target} as {NAME}")


if __name__ == "__main__":
    main()

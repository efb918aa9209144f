"""Milestones: a run's checkpoint and log copied into a tracked folder, so that a fresh clone on
another machine resumes the run from there. Campaigns (codec/training/campaign.py) and the toy
study (scripts/toy_study.py) keep theirs this way."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from codec.files import atomic_write
from codec.training.run_folder import CHECKPOINT, LOG

_STEPS: dict[tuple[Path, int, int], int] = {}


def milestone_step(path: Path) -> int:
    """The step a milestone reached (-1 when there is none or it cannot be read); read once per version."""
    import torch

    if not path.exists():
        return -1
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _STEPS:
        try:
            _STEPS[key] = int(torch.load(path, map_location="cpu", weights_only=True)["step"])
        except Exception:  # a damaged milestone counts as none: the run resumes from its own folder
            _STEPS[key] = -1
    return _STEPS[key]


def write_milestone(checkpoint: Path, milestone: Path, log: Path, cap_mb: float) -> None:
    """Copy a run's checkpoint to `milestone` and its log to `log`; a checkpoint over `cap_mb` loses
    its optimizer state on the way (a run resumed from it re-warms Adam)."""
    import torch

    milestone.parent.mkdir(parents=True, exist_ok=True)
    if checkpoint.stat().st_size <= cap_mb * 2**20:
        atomic_write(milestone, checkpoint.read_bytes())
    else:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        saved["optimizers"] = {}
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        atomic_write(milestone, buffer.getvalue())
    if (checkpoint.parent / LOG).exists():
        atomic_write(log, (checkpoint.parent / LOG).read_bytes())


def restore_milestone(milestone: Path, log: Path, out: Path) -> bool:
    """Start run folder `out` from a milestone when it has no checkpoint of its own; True if it did."""
    if (out / CHECKPOINT).exists() or not milestone.exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(milestone, out / CHECKPOINT)
    if log.exists():
        shutil.copyfile(log, out / LOG)
    return True

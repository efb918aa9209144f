"""Milestones: a run's checkpoint and log copied into a tracked folder, so that a fresh clone on
another machine resumes the run from there. Campaigns (codec/training/campaign.py) and the toy
study (scripts/toy_study.py) keep theirs this way."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from codec.files import atomic_write
from codec.training.run_folder import CHECKPOINT, LOG

_PROGRESS: dict[tuple[Path, int, int], tuple[int, int | None]] = {}


def milestone_progress(path: Path) -> tuple[int, int | None]:
    """(the step a milestone reached, the step its run ends at when the run set it early, else None);
    (-1, None) when there is none or it cannot be read. Read once per version of the file."""
    import torch

    if not path.exists():
        return -1, None
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _PROGRESS:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            early = saved.get("end") if saved.get("plateau_at") is not None else None
            _PROGRESS[key] = int(saved["step"]), early
        except Exception:  # a damaged milestone counts as none: the run resumes from its own folder
            _PROGRESS[key] = -1, None
    return _PROGRESS[key]


def milestone_step(path: Path) -> int:
    """The step a milestone reached (-1 when there is none or it cannot be read)."""
    return milestone_progress(path)[0]


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

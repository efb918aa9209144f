"""The files of a training run's folder, by name: the loop writes them, campaigns read them (without torch)."""

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
"""The checkpoint before the last one: a run whose last checkpoint is damaged resumes from it."""
LOG = "log.jsonl"
EXPORTED = "model.pt"
STDERR = "stderr.log"
"""What a campaign's job process printed (its progress bar, and its last line when it failed)."""

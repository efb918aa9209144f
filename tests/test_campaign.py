"""Campaigns: plans are checked before anything starts, and a campaign resumed from its committed
state in a fresh folder ends with the same weights as one that ran without interruption."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from codec.training.campaign import STOPPED, CampaignError, _Lock, load_plan, run_campaign, status_table

PLAN = """
name = "tiny"
runs = "{root}/runs"
state = "{root}/state"
[defaults]
source = "gaussian"
N = 16
M = 1
dim = 1
codebook_size = 32
batch = 64
precision = "fp32"
{extra}
[jobs.base]
method = "uq-aun"
steps = {base_steps}
[jobs.ours]
method = "ours"
after = ["base"]
steps = 40
"""


def write_plan(root: Path, base_steps: int = 60, extra: str = "") -> Path:
    path = root / "plan.toml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(PLAN.format(root=root, base_steps=base_steps, extra=extra))
    return path


def final_weights(root: Path, job: str) -> dict:
    return torch.load(root / "state" / f"{job}.pt", weights_only=True)["model"]


def test_resumed_from_committed_state_in_a_fresh_folder_ends_with_the_same_weights(tmp_path):
    whole = load_plan(write_plan(tmp_path / "whole"))
    assert run_campaign(whole, cores=1, show=False) == 0

    first = load_plan(write_plan(tmp_path / "first"))
    assert run_campaign(first, cores=1, max_steps=30, show=False) == STOPPED
    assert torch.load(first.milestone("base"), weights_only=True)["step"] == 30
    assert not first.milestone("ours").exists()
    # a fresh clone: only the tracked state folder travels, not the run folder
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copytree(first.state, fresh / "state")
    resumed = load_plan(write_plan(fresh))
    assert run_campaign(resumed, cores=1, show=False) == 0
    for job in ("base", "ours"):
        expected, got = final_weights(tmp_path / "whole", job), final_weights(fresh, job)
        assert expected.keys() == got.keys()
        for name in expected:
            assert torch.equal(expected[name], got[name]), (job, name)
    assert "done" in status_table(resumed)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[jobs.other]\nmethod = 'nope'\nsteps = 5", "unknown method 'nope'"),
        ("[jobs.other]\nlearning_rate = 0.1", "unknown field 'learning_rate'"),
        ("[jobs.other]\nafter = ['missing']", "unknown job 'missing'"),
        ("[jobs.a]\nafter = ['b']\n[jobs.b]\nafter = ['a']", "cycle"),
        ("[curves]\nuq = ['base', 'nope']", "curve 'uq' names unknown job 'nope'"),
        ("[jobs.other]\npresets = ['nope']", "unknown preset 'nope'"),
        ("[presets.p]\nlearning_rate = 0.1\n[jobs.other]\npresets = ['p']", "unknown field 'learning_rate'"),
    ],
)
def test_a_bad_plan_is_refused_naming_what_is_wrong(tmp_path, extra, message):
    path = write_plan(tmp_path)
    path.write_text(path.read_text() + "\n" + extra + "\n")
    with pytest.raises(CampaignError, match=message):
        load_plan(path)
    command = [sys.executable, "scripts/campaign.py", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and message.split("'")[0] in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("plan", sorted((Path(__file__).parents[1] / "scripts" / "plans").glob("*.toml")), ids=lambda p: p.stem)
def test_every_committed_plan_loads(plan):
    """A campaign in progress is resumed from its committed plan: an edit that breaks it (a field a
    job does not know, a preset or job misnamed) must fail here, not at the next session's start."""
    loaded = load_plan(plan)
    assert loaded.jobs and all(job.fields.get("method") for job in loaded.jobs.values())


def test_a_job_takes_the_defaults_then_its_presets_in_order_then_its_own_fields(tmp_path):
    presets = "[presets.slow]\nlr = 1e-5\nsteps = 7\n[presets.short]\nsteps = 5\n"
    jobs = "[jobs.tuned]\npresets = ['slow', 'short']\nafter = ['base']\nseed = 3\n[jobs.own]\npresets = ['slow']\nsteps = 9"
    plan = load_plan(write_plan(tmp_path, extra=presets + jobs))
    tuned, own = plan.jobs["tuned"].fields, plan.jobs["own"].fields
    assert (tuned["lr"], tuned["steps"], tuned["seed"], tuned["N"]) == (1e-5, 5, 3, 16)
    assert tuned["init_from"].endswith("base.pt") and plan.jobs["tuned"].after == ("base",)
    assert (own["lr"], own["steps"]) == (1e-5, 9)
    assert "presets" not in tuned and "lr" not in plan.jobs["base"].fields


def test_a_second_campaign_on_the_same_runs_refuses(tmp_path):
    plan = load_plan(write_plan(tmp_path))
    lock = _Lock(plan.runs)
    try:
        with pytest.raises(CampaignError, match="another campaign is running"):
            run_campaign(plan, cores=1, show=False)
    finally:
        lock.release()


def test_a_damaged_checkpoint_resumes_from_the_previous_one(tmp_path):
    plan = load_plan(write_plan(tmp_path, base_steps=200, extra="checkpoint_seconds = 0.0"))
    assert run_campaign(plan, cores=1, max_steps=20, show=False) == STOPPED
    checkpoint = plan.runs / "base" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    assert run_campaign(plan, cores=1, show=False) == 0
    assert "damaged" in (plan.runs / "base" / "stderr.log").read_text()


def test_sigterm_stops_the_campaign_with_a_milestone(tmp_path):
    plan = write_plan(tmp_path, base_steps=100_000)
    process = subprocess.Popen(
        [sys.executable, "scripts/campaign.py", str(plan), "--cores", "1", "--quiet"],
        cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    log = tmp_path / "runs" / "base" / "log.jsonl"
    deadline = time.time() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.2)
    assert "base                         running" in status_table(load_plan(plan))  # as --status sees it from outside
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == STOPPED
    assert "running" not in status_table(load_plan(plan))
    step = torch.load(tmp_path / "state" / "base.pt", weights_only=True)["step"]
    assert 50 <= step < 100_000


def test_the_gpu_script_needs_its_arguments_and_out(tmp_path):
    """The script a lent GPU runs: valid shell, and it refuses to start without a plan, minutes and $OUT."""
    script = Path(__file__).parents[1] / "scripts" / "campaign_gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {"PATH": "/usr/bin:/bin"}
    missing = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "usage" in missing.stderr
    no_out = subprocess.run(["bash", str(script), "plan.toml", "1"], capture_output=True, text=True, env=env)
    assert no_out.returncode != 0 and "OUT" in no_out.stderr


def test_auto_device_is_cuda_only_where_there_is_one(monkeypatch):
    from codec.training.config import TrainConfig
    from codec.training.loop import _device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _device(TrainConfig(device="auto")).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device(TrainConfig(device="auto")).type == "cuda"
    assert _device(TrainConfig(device="cpu")).type == "cpu"


def test_speed_is_measured_since_the_last_resume(tmp_path):
    """A resumed job logs again from its checkpoint; mixing both runs would inflate steps per hour."""
    from codec.training.campaign import progress

    plan = load_plan(write_plan(tmp_path))
    log = plan.runs / "base" / "log.jsonl"
    log.parent.mkdir(parents=True)
    first = [{"step": s, "seconds": s * 1.0} for s in range(25, 201, 25)]  # 1 step per second
    resumed = [{"step": s, "seconds": 150 + (s - 150) * 2.0} for s in range(175, 301, 25)]  # resumed at 150, 0.5 step/s
    log.write_text("".join(json.dumps(entry) + "\n" for entry in first + resumed))
    assert progress(plan, "base").steps_per_hour == pytest.approx(1800)


def test_the_status_shows_each_job_s_heldout_loss_and_its_fall_over_the_last_fifth_of_its_steps(tmp_path):
    plan = load_plan(write_plan(tmp_path))
    log = plan.runs / "base" / "log.jsonl"
    log.parent.mkdir(parents=True)
    entries = [{"step": s, "seconds": float(s)} for s in range(25, 1001, 25)]  # more lines than the speed reads
    for entry in entries:
        if entry["step"] % 100 == 0:
            entry["heldout"] = {"loss": 3.0 - entry["step"] / 1000}
    log.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    row = next(line for line in status_table(plan).splitlines() if line.startswith("base "))
    assert row.split()[-2:] == ["2.0000", "(+10.00%)"]  # 0.2 lower than 200 steps back, 2.0 now
    assert status_table(plan).splitlines()[-1].endswith(" -")  # "ours" has measured nothing


def _log_with_heldout(plan) -> None:
    log = plan.runs / "base" / "log.jsonl"
    log.parent.mkdir(parents=True)
    entries = [{"step": s, "seconds": float(s), "heldout": {"loss": 3.0 - s / 1000}} for s in range(100, 1001, 100)]
    log.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def test_the_status_read_by_a_reader_that_stops_early_is_no_error(tmp_path):
    plan = write_plan(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "scripts/campaign.py", str(plan), "--status"],
        cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    process.stdout.close()  # as `--status | head -0` would, before the table is written
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


def test_heldout_curves_of_a_plan_outside_git_measure_its_log_and_say_there_is_no_history(tmp_path):
    from PIL import Image

    from tests.helpers import random_image

    (tmp_path / "heldout").mkdir()
    Image.fromarray(random_image(32, 32)).save(tmp_path / "heldout" / "a.png")
    plan = write_plan(tmp_path, extra=f'heldout = "{tmp_path / "heldout"}"')
    _log_with_heldout(load_plan(plan))
    out = tmp_path / "curves"
    command = [sys.executable, "scripts/heldout_curves.py", str(plan), "--out", str(out), "--jobs", "base"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert [p["step"] for p in json.loads(out.with_suffix(".json").read_text())["base"]] == list(range(100, 1001, 100))
    assert len(result.stderr.strip().splitlines()) == 1 and "no git history" in result.stderr


@pytest.mark.parametrize("saved, total, done", [
    ({"step": 400, "plateau_at": 360, "end": 400}, 400, True),
    ({"step": 380, "plateau_at": 360, "end": 400}, 400, False),
    ({"step": 400, "plateau_at": None, "end": 600}, 600, False),
    ({"step": 600}, 600, True),  # a checkpoint from before the plateau test
])
def test_a_job_whose_run_plateaued_is_done_at_the_step_it_ended(tmp_path, saved, total, done):
    from codec.training.campaign import progress

    plan = load_plan(write_plan(tmp_path, base_steps=600))
    plan.milestone("base").parent.mkdir(parents=True)
    torch.save(saved, plan.milestone("base"))
    assert (progress(plan, "base").total, progress(plan, "base").done) == (total, done)


def test_a_plateau_in_the_log_sets_the_job_s_end_before_its_milestone_has_it(tmp_path):
    from codec.training.campaign import progress

    plan = load_plan(write_plan(tmp_path, base_steps=600))
    plan.milestone("base").parent.mkdir(parents=True)
    torch.save({"step": 300}, plan.milestone("base"))
    log = plan.runs / "base" / "log.jsonl"
    log.parent.mkdir(parents=True)
    entries = [{"step": 350, "seconds": 1.0}, {"step": 360, "seconds": 2.0, "plateau": {"fall": 0.001, "drop_from": 360, "end": 400}}]
    log.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    assert (progress(plan, "base").step, progress(plan, "base").total, progress(plan, "base").done) == (360, 400, False)


def test_a_job_exported_from_its_milestone_records_its_steps_lr_drop_time_and_machines(tmp_path):
    from codec.model_file import load_exported
    from codec.training.campaign import exported_job

    machines = [[0, "x86_64, 2 cores, 1 threads, cpu"], [300, "x86_64, 16 cores, 1 threads, cuda"]]
    plan = _finished_base(tmp_path, base_steps=600, step=400, plateau_at=360, end=400, elapsed=98.76, machines=machines)
    record = load_exported(exported_job(plan, "base")).record
    assert (record["steps_run"], record["lr_drop_from"], record["wall_seconds"]) == (400, 360, 98.8)
    assert record["machine"] == "x86_64, 2 cores, 1 threads, cpu from step 0, x86_64, 16 cores, 1 threads, cuda from step 300"


def _finished_base(tmp_path, base_steps: int = 60, **saved):
    """A plan whose job "base" (the curve "uq") is done: a milestone of fresh weights at its last step,
    with `saved`'s checkpoint entries."""
    from dataclasses import asdict

    from codec.models import build_model
    from codec.training.config import TrainConfig
    from codec.training.loop import model_config

    plan = load_plan(write_plan(tmp_path, base_steps=base_steps, extra="[curves]\nuq = ['base']"))
    config = TrainConfig(**plan.jobs["base"].fields)
    plan.milestone("base").parent.mkdir(parents=True)
    state = build_model(model_config(config)).state_dict()
    torch.save({"step": base_steps, "model": state, "config": asdict(config), "elapsed": 5.0, **saved}, plan.milestone("base"))
    return plan


def test_shipping_a_campaign_curve_registers_its_models_and_tables_every_shipped_one(tmp_path, tiny_zoo):
    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    import ship_kodak_models

    from codec import zoo

    plan = _finished_base(tmp_path)
    results = tmp_path / "curves"
    results.mkdir()
    (results / "uq.json").write_text(json.dumps({"models": ["base"], "results": {"bpp": [0.5], "psnr-rgb": [30.0]}}))
    ship_kodak_models.main([str(plan.path), "--curve", "uq", "--as", "toy-uq", "--results", str(results), "--default", "toy-uq-q1"])
    assert zoo.names() == ["tiny", "toy-uq-q1"] and zoo.default_name() == "toy-uq-q1"
    assert zoo.table()[1]["kodak_bpp"] == 0.5
    rows = [line for line in (zoo.WEIGHTS / "KODAK.md").read_text().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["tiny", "toy-uq-q1"]
    assert "| 16/1 | uq-aun | " in rows[1] and " | 60 | " in rows[1]
    with pytest.raises(SystemExit):  # a shipped name is never replaced: files made by it must keep decoding
        ship_kodak_models.main([str(plan.path), "--curve", "uq", "--as", "toy-uq", "--results", str(results)])

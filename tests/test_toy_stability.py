"""The toy recipe's alternating training stays stable where an encoder at the decoder's learning rate
collapses: the Boomerang's ours-1d at its top slope (results/toy/RECIPE.md, "Stability")."""

from __future__ import annotations

from pathlib import Path

from codec.toy import stack, study
from codec.toy.convergence import drawdown, member_series
from codec.training.run_folder import LOG

STEPS = 600
"""Every one of 6 runs with the encoder at 1x (2 slopes, 3 seeds) fell more than 17 dB within 600 steps."""


def held_out_drawdown(runs: Path, changes: dict) -> float:
    """The largest fall (dB) of the held-out PSNR, after the first 100 steps, of Boomerang ours-1d at slope 400."""
    (config, _), = study.curve_stacks("boomerang", study.ToyCurve("ours", 1), [400.0], STEPS, runs, (0,), {"log_every": 10, **changes})
    stack.trained(config)
    steps, psnr = member_series(Path(config.out) / LOG, "psnr")
    return drawdown(psnr[steps >= 100, 0])


def test_the_toy_recipe_does_not_collapse_where_a_full_rate_encoder_does(tmp_path):
    assert held_out_drawdown(tmp_path, {}) < 3.0
    assert held_out_drawdown(tmp_path, {"encoder_lr_scale": 1.0}) > 10.0

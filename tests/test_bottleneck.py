"""Canary: the parts of compressai's EntropyBottleneck that entropy/bottleneck.py relies on still behave
as it expects. A failure here means compressai's internals changed: fix entropy/bottleneck.py."""

from __future__ import annotations

import torch

from entropy import bottleneck


def fresh(channels: int = 3):
    torch.manual_seed(0)
    model = bottleneck.make(channels)
    with torch.no_grad():  # a non-trivial density: shift the medians and widen the tails
        getattr(model, bottleneck.QUANTILES).add_(torch.tensor([[[-3.0, 0.4, 5.0]]]))
    return model


def test_quantiles_are_a_channels_by_three_parameter_of_tails_and_medians():
    model = fresh()
    quantiles = getattr(model, bottleneck.QUANTILES)
    assert isinstance(quantiles, torch.nn.Parameter) and quantiles.shape == (3, 1, 3), "compressai's quantiles layout changed"
    low, median, high = bottleneck.tail_quantiles(model)
    assert torch.all(low < median) and torch.all(median < high)
    assert torch.allclose(bottleneck.medians(model), median), "compressai's _get_medians no longer reads the middle quantile"
    names = [name for name, _ in model.named_parameters() if bottleneck.is_quantile_parameter(name)]
    assert names == [bottleneck.QUANTILES]


def test_likelihoods_of_integer_steps_form_a_distribution_and_match_the_forward_pass():
    model = fresh().eval()
    _, median, _ = bottleneck.tail_quantiles(model)
    steps = torch.arange(-600, 601, dtype=torch.float32)
    values = median[:, None].detach() + steps
    mass = bottleneck.likelihoods(model, values)
    assert mass.shape == (3, 1201), "compressai's _likelihood changed its layout"
    assert torch.allclose(mass.sum(1), torch.ones(3), atol=1e-3)
    y = values[:, ::7].T.reshape(1, 3, 1, -1).contiguous()  # already on the integer grid around the medians
    y_hat, forward = model(y)  # in eval mode the forward pass rounds around the medians
    assert torch.allclose(y_hat, y)
    assert torch.allclose(-torch.log2(forward).sum(), bottleneck.bits(model, y), rtol=1e-5), "compressai's _likelihood no longer matches forward"


def test_training_noise_and_aux_loss():
    model = fresh().train()
    y = torch.randn(2, 3, 4, 4) * 3
    y_tilde, likelihood = bottleneck.noisy(model, y)
    assert y_tilde.shape == y.shape and likelihood.shape == y.shape
    assert 0 < float((y_tilde - y).abs().max()) <= 0.5
    loss = bottleneck.aux_loss(model)
    loss.backward()
    assert getattr(model, bottleneck.QUANTILES).grad is not None


def test_the_coder_buffers_exported_models_leave_out_still_exist():
    state = fresh().state_dict()
    for name in bottleneck.CODER_BUFFERS:
        assert name in state, f"compressai no longer has the buffer {name}"

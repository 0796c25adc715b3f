"""Contract every registered backbone honours: shapes, causality, padding, params, gradients."""

from __future__ import annotations

import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.backbones import available, build

TINY = dict(d_model=16, n_layers=2, n_heads=2, max_len=16)
B, T = 2, 9


def _build(name: str, causal: bool):
    torch.manual_seed(0)
    return build(name, causal=causal, **TINY)


def _causal_or_skip(name: str):
    try:
        return _build(name, True)
    except ConfigError as e:  # a backbone that cannot be causal must refuse, naming why
        assert "causal" in str(e)
        pytest.skip(f"{name} refuses causal=True")


@pytest.mark.parametrize("name", available())
@pytest.mark.parametrize("causal", [True, False])
def test_shape_params_backward(name, causal):
    model = _causal_or_skip(name) if causal else _build(name, False)
    x = torch.randn(B, T, TINY["d_model"], requires_grad=True)
    y = model(x)
    assert y.shape == (B, T, TINY["d_model"])
    assert torch.isfinite(y).all()
    assert model.num_params() > 0
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", available())
def test_causality_probe(name):
    model = _causal_or_skip(name).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, TINY["d_model"], generator=g)
    with torch.no_grad():
        y = model(x)
        for t in (0, 3, T - 2):
            x2 = x.clone()
            x2[:, t + 1:] = torch.randn(B, T - t - 1, TINY["d_model"], generator=g) * 3
            y2 = model(x2)
            torch.testing.assert_close(y2[:, : t + 1], y[:, : t + 1], atol=1e-6, rtol=0)
            assert not torch.allclose(y2[:, t + 1:], y[:, t + 1:]), "later outputs must react"


@pytest.mark.parametrize("name", available())
@pytest.mark.parametrize("causal", [True, False])
def test_pad_mask_respected(name, causal):
    model = (_causal_or_skip(name) if causal else _build(name, False)).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, TINY["d_model"], generator=g)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[0, -3:] = True  # right padding of sample 0
    pad[1, :2] = True  # left padding (the first prefixes see no real token) ...
    pad[1, 5] = True  # ... and a hole in sample 1
    x2 = x.clone()
    x2[pad] = torch.randn(int(pad.sum()), TINY["d_model"], generator=g) * 5
    with torch.no_grad():
        y, y2 = model(x, pad_mask=pad), model(x2, pad_mask=pad)
    assert torch.isfinite(y).all() and torch.isfinite(y2).all()
    torch.testing.assert_close(y2[~pad], y[~pad], atol=1e-5, rtol=0)


def test_non_causal_backbone_refuses_causal():
    with pytest.raises(ConfigError, match="causal"):
        build("bixt", causal=True, mode="bidirectional", **TINY)
    # and the faithful causal mode is accepted
    assert build("bixt", causal=True, **TINY).mode == "prefix_reencode"


@pytest.mark.parametrize("name", available())
def test_unknown_option_is_config_error(name):
    with pytest.raises(ConfigError, match="no option"):
        build(name, not_an_option=1, **TINY)

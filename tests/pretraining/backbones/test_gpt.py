import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining import backbones


def test_registry_lists_gpt_and_rejects_unknown():
    assert "gpt" in backbones.available()
    with pytest.raises(ConfigError, match="unknown backbone 'nope'"):
        backbones.build("nope")
    with pytest.raises(ConfigError, match="no option.*widht"):
        backbones.build("gpt", widht=3)
    with pytest.raises(ConfigError, match="divisible"):
        backbones.build("gpt", d_model=10, n_heads=3)


def test_causal_gpt_never_looks_ahead():
    torch.manual_seed(0)
    m = backbones.build("gpt", d_model=16, n_heads=2, n_layers=2, max_len=12)
    x = torch.randn(2, 12, 16)
    y = m(x)
    x2 = x.clone()
    x2[:, 7:] = torch.randn(2, 5, 16)
    torch.testing.assert_close(m(x2)[:, :7], y[:, :7], rtol=0, atol=0)
    assert not torch.allclose(m(x2)[:, 7:], y[:, 7:])


def test_bidirectional_gpt_sees_everything_but_padding():
    torch.manual_seed(0)
    m = backbones.build("gpt", d_model=16, n_heads=2, n_layers=2, max_len=12, causal=False)
    x = torch.randn(2, 10, 16)
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[:, 8:] = True
    y = m(x, pad_mask=pad)
    x2 = x.clone()
    x2[:, 8:] = 100.0 * torch.randn(2, 2, 16)
    torch.testing.assert_close(m(x2, pad_mask=pad)[:, :8], y[:, :8])
    x3 = x.clone()
    x3[:, 7] = torch.randn(2, 16)
    assert (m(x3, pad_mask=pad)[:, 0] - y[:, 0]).abs().max() > 1e-6


def test_causal_sdpa_matches_explicit_attention_maps():
    torch.manual_seed(0)
    m = backbones.build("gpt", d_model=16, n_heads=2, n_layers=1, max_len=8)
    maps = m.attention_maps(torch.randn(3, 8, 16))
    assert maps[0].shape == (3, 2, 8, 8)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 2, 8))
    assert torch.all(maps[0].triu(1) == 0)


def test_input_checks():
    m = backbones.build("gpt", d_model=16, n_heads=2, max_len=4)
    with pytest.raises(ConfigError, match="max_len"):
        m(torch.randn(1, 5, 16))
    with pytest.raises(ConfigError, match="d_model"):
        m(torch.randn(1, 3, 8))

import math

import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.backbones import build, describe
from icarena.pretraining.backbones.local_global import sinusoidal_encoding


def test_defaults_are_two_wide_bidirectional_blocks():
    m = build("local_global", d_model=16, n_heads=2, max_len=8)
    assert len(m.blocks) == 2 and not m.causal
    assert m.blocks[0].fc1.out_features == 8 * 16  # one hidden layer, width 8·D
    D, H = 16, 128
    per_block = 4 * D * D + 4 * D + 2 * D * H + H + D + 4 * D  # attn + FFN + 2 LayerNorms
    assert m.num_params() == 2 * per_block + 2 * D  # + final LayerNorm
    assert "reconstruction" in describe("local_global")
    x = torch.randn(2, 8, 16)
    x2 = x.clone()
    x2[:, -1] = torch.randn(2, 16)
    assert (m(x)[:, 0] - m(x2)[:, 0]).abs().max() > 1e-4  # bidirectional: the past sees the future


def test_sinusoidal_encoding_values():
    pe = sinusoidal_encoding(5, 6)
    for t in range(5):
        for i in range(3):
            angle = t / 10000 ** (2 * i / 6)
            assert pe[t, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


@pytest.mark.parametrize("norm", ["pre", "post", "none"])
def test_causal_probe_and_padding(norm):
    torch.manual_seed(0)
    m = build("local_global", d_model=16, n_heads=4, max_len=12, causal=True, norm=norm)
    x = torch.randn(2, 10, 16)
    y = m(x)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(2, 5, 16)
    torch.testing.assert_close(m(x2)[:, :5], y[:, :5], atol=1e-6, rtol=1e-6)
    bi = build("local_global", d_model=16, n_heads=4, max_len=12, norm=norm)
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[0, 7:] = True
    a = bi(x, pad_mask=pad)
    x3 = x.clone()
    x3[0, 7:] = 9.0
    torch.testing.assert_close(bi(x3, pad_mask=pad)[0, :7], a[0, :7], atol=1e-6, rtol=1e-6)


def test_bad_config():
    with pytest.raises(ConfigError, match="activation"):
        build("local_global", activation="tanh")
    with pytest.raises(ConfigError, match="norm"):
        build("local_global", norm="rms")
    with pytest.raises(ConfigError, match="no option"):
        build("local_global", n_centres=4)

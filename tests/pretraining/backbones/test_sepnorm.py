"""SepNorm: separate statistics for special positions (Chen et al. 2023) and its backbone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from icarena.errors import ConfigError
from icarena.pretraining.backbones import build
from icarena.pretraining.backbones.sepnorm import SepNorm

D = 8


def _special(B, T, positions):
    m = torch.zeros(B, T, dtype=torch.bool)
    m[:, positions] = True
    return m


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_special_statistics_independent_of_other_tokens(kind):
    torch.manual_seed(0)
    norm = SepNorm(D, kind).train()
    x = torch.randn(6, 5, D)
    special = _special(6, 5, [0, 3])
    y = norm(x, special)
    x2 = x.clone()
    x2[~special] = torch.randn(int((~special).sum()), D) * 7 + 3  # change every ordinary token
    assert torch.equal(norm(x2, special)[special], y[special])
    x3 = x.clone()
    x3[special] = torch.randn(int(special.sum()), D) * 7 - 2  # change every special token
    assert torch.equal(norm(x3, special)[~special], y[~special])


def test_batchnorm_at_position_zero_is_batchnorm1d_and_tokens_are_layernorm():
    torch.manual_seed(1)
    norm = SepNorm(D, "batchnorm").train()
    with torch.no_grad():
        norm.special_norm.weight.uniform_(0.5, 2)
        norm.special_norm.bias.uniform_(-1, 1)
    x = torch.randn(16, 4, D) * 3 + 1
    special = _special(16, 4, [0])
    y = norm(x, special)
    bn = F.batch_norm(x[:, 0], None, None, norm.special_norm.weight, norm.special_norm.bias,
                      training=True, eps=norm.special_norm.eps)
    torch.testing.assert_close(y[:, 0], bn, atol=1e-5, rtol=0)
    # independent: per feature, batch mean 0 and (biased) variance 1 before the affine map
    z = (y[:, 0] - norm.special_norm.bias) / norm.special_norm.weight
    torch.testing.assert_close(z.mean(0), torch.zeros(D), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(D), atol=1e-3, rtol=0)
    tok = y[:, 1:]
    torch.testing.assert_close(tok.mean(-1), torch.zeros(16, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(tok.var(-1, unbiased=False), torch.ones(16, 3), atol=1e-3, rtol=0)
    # running statistics: one momentum step from (0, 1) towards the batch statistics
    m = norm.special_norm.momentum
    torch.testing.assert_close(norm.special_norm.running_mean, m * x[:, 0].mean(0))
    torch.testing.assert_close(norm.special_norm.running_var,
                               (1 - m) + m * x[:, 0].var(0, unbiased=True))


def test_eval_mode_does_not_couple_batch_members():
    torch.manual_seed(2)
    norm = SepNorm(D, "batchnorm").train()
    for _ in range(3):
        norm(torch.randn(8, 4, D), _special(8, 4, [0]))
    norm.eval()
    x = torch.randn(5, 4, D)
    special = _special(5, 4, [0])
    full = norm(x, special)
    for b in range(5):
        torch.testing.assert_close(norm(x[b:b + 1], special[b:b + 1]), full[b:b + 1])


def test_tied_layernorms_equal_sharenorm():
    torch.manual_seed(3)
    norm = SepNorm(D, "layernorm")
    share = torch.nn.LayerNorm(D)
    with torch.no_grad():
        share.weight.uniform_(0.5, 2)
        share.bias.uniform_(-1, 1)
        for ln in (norm.token_norm, norm.special_norm):
            ln.weight.copy_(share.weight)
            ln.bias.copy_(share.bias)
    x = torch.randn(3, 6, D)
    assert torch.equal(norm(x, _special(3, 6, [0, 5])), share(x))


def test_backbone_with_tied_layernorms_equals_gpt():
    torch.manual_seed(4)
    kw = dict(d_model=16, n_layers=2, n_heads=2, max_len=12, causal=False)
    gpt = build("gpt", **kw).eval()
    sep = build("sepnorm", special_norm="layernorm", **kw).eval()
    state = {}
    for k, v in gpt.state_dict().items():
        if ".ln" in k or k.startswith("ln_f"):
            mod, leaf = k.rsplit(".", 1)
            state[f"{mod}.token_norm.{leaf}"] = v
            state[f"{mod}.special_norm.{leaf}"] = v
        else:
            state[k] = v
    sep.load_state_dict(state)
    x = torch.randn(3, 10, 16)
    torch.testing.assert_close(sep(x), gpt(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("scope, expected", [("all", 2 * 3 + 1), ("final", 1)])
def test_module_count_matches_scope(scope, expected):
    m = build("sepnorm", d_model=16, n_layers=3, n_heads=2, scope=scope)
    n_sep = sum(isinstance(mod, SepNorm) for mod in m.modules())
    n_plain = sum(type(mod) is torch.nn.LayerNorm for mod in m.modules())
    assert n_sep == expected
    assert n_plain == (2 * 3 + 1 - expected) + n_sep  # each SepNorm holds one token LayerNorm


def test_causal_in_train_mode_with_several_special_positions():
    torch.manual_seed(5)
    m = build("sepnorm", d_model=16, n_layers=2, n_heads=2, max_len=12,
              special_positions=(0, 4, -1)).train()
    x = torch.randn(4, 10, 16)
    y = m(x)
    for t in (0, 4, 6):
        x2 = x.clone()
        x2[:, t + 1:] += torch.randn(4, 9 - t, 16) * 3
        torch.testing.assert_close(m(x2)[:, : t + 1], y[:, : t + 1], atol=1e-6, rtol=0)


def test_forward_special_mask_overrides_config_positions():
    torch.manual_seed(6)
    m = build("sepnorm", d_model=16, n_layers=1, n_heads=2, max_len=12,
              special_positions=(0,)).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, SepNorm):
                mod.special_norm.bias.fill_(5.0)
    x = torch.randn(2, 6, 16)
    by_cfg = m(x)
    by_mask = m(x, special_mask=_special(2, 6, [0]))
    assert torch.equal(by_cfg, by_mask)
    other = m(x, special_mask=_special(2, 6, [2]))
    assert not torch.allclose(other, by_cfg)


def test_errors():
    m = build("sepnorm", d_model=16, n_layers=1, n_heads=2).train()
    with pytest.raises(ConfigError, match="at least 2 samples"):
        m(torch.randn(1, 4, 16))
    with pytest.raises(ConfigError, match="leaks the future"):
        build("sepnorm", d_model=16, n_heads=2, bn_stats="pooled", causal=True)
    with pytest.raises(ConfigError, match="scope"):
        build("sepnorm", d_model=16, n_heads=2, scope="some")
    with pytest.raises(ConfigError, match="special_mask must be"):
        m.eval()(torch.randn(2, 4, 16), special_mask=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="no special positions"):
        build("sepnorm", d_model=16, n_heads=2, special_positions=())(torch.randn(2, 4, 16))
    # pooled statistics are allowed for bidirectional use
    pooled = build("sepnorm", d_model=16, n_heads=2, bn_stats="pooled", causal=False,
                   special_positions=(0, 2)).train()
    assert pooled(torch.randn(1, 4, 16)).shape == (1, 4, 16)  # 2 special rows in one sequence


def test_attention_maps_follow_the_forward_pass():
    torch.manual_seed(7)
    m = build("sepnorm", d_model=16, n_layers=2, n_heads=2, max_len=12).eval()
    maps = m.attention_maps(torch.randn(3, 6, 16))
    assert len(maps) == 2 and maps[0].shape == (3, 2, 6, 6)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 2, 6))
    assert torch.all(maps[0].triu(1) == 0)  # causal

"""S3/AutoFormer supernet: weight entanglement, extraction, gradients, space and sampling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.backbones import build
from icarena.pretraining.backbones.supernet import SubnetConfig

KW = dict(max_len=16, d_model=32, n_layers=4, n_heads=4, head_dim=8)


def _supernet(seed=0, **kw):
    torch.manual_seed(seed)
    return build("supernet", **{**KW, **kw})


def _configs(net):
    rng = np.random.default_rng(0)
    return [net.min_config(), net.max_config()] + [net.sample_config(rng) for _ in range(4)]


@pytest.mark.parametrize("causal", [True, False])
def test_extracted_subnet_gives_identical_outputs(causal):
    net = _supernet(causal=causal).eval()
    x = torch.randn(3, 10, 32)
    pad = torch.zeros(3, 10, dtype=torch.bool)
    pad[2, 7:] = True
    for sub in _configs(net):
        net.set_active(sub)
        y = net(x, pad_mask=pad)
        dense = net.extract(sub).eval()
        e = sub.embed
        torch.testing.assert_close(dense(x[..., :e], pad_mask=pad), y[..., :e], atol=1e-6, rtol=0)
        assert torch.equal(y[..., e:], torch.zeros_like(y[..., e:]))
        assert dense.num_params() == net.count_params(sub)
        # the dense model is standalone: rebuilt from its config and weights alone
        again = build("supernet", **dataclasses.asdict(dense.config))
        again.load_state_dict(dense.state_dict())
        torch.testing.assert_close(again.eval()(x[..., :e]), dense(x[..., :e]), atol=0, rtol=0)


def test_max_config_is_the_dense_gpt():
    torch.manual_seed(1)
    gpt = build("gpt", d_model=32, n_layers=4, n_heads=4, max_len=16).eval()
    net = _supernet().eval()
    net.load_state_dict(gpt.state_dict())  # same parameter names and shapes
    assert net.active == net.max_config()
    assert net.num_params() == net.count_params(net.max_config()) == gpt.num_params()
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(net(x), gpt(x), atol=1e-6, rtol=0)


def test_configs_share_one_storage():
    net = _supernet()
    n = net.num_params()
    ptrs = {p.data_ptr() for p in net.parameters()}
    for sub in _configs(net):
        net.set_active(sub)
        net(torch.randn(1, 4, 32))
        assert net.num_params() == n and {p.data_ptr() for p in net.parameters()} == ptrs
        assert net.count_params(sub) <= n


def test_gradient_is_zero_outside_the_active_slices():
    net = _supernet(seed=2)
    sub = SubnetConfig(depth=2, embed=24, heads=(1, 3), mlp_ratios=(2.0, 3.0))
    net.set_active(sub)
    out = net(torch.randn(2, 6, 32))
    out.square().sum().backward()
    e, hd, Q = 24, 8, 32
    for l in range(2, 4):  # blocks >= depth are the identity
        assert all(p.grad is None for p in net.blocks[l].parameters())
    for l, (h, r) in enumerate(zip(sub.heads, sub.mlp_ratios, strict=True)):
        blk, w, hid = net.blocks[l], h * hd, int(round(r * e))
        g = blk.attn.qkv.weight.grad
        used = torch.zeros_like(g, dtype=torch.bool)
        for i in range(3):
            used[i * Q: i * Q + w, :e] = True
        assert g[~used].abs().max() == 0 and g[used].abs().max() > 0
        assert blk.attn.proj.weight.grad[e:].abs().max() == 0
        assert blk.attn.proj.weight.grad[:, w:].abs().max() == 0
        assert blk.mlp.fc.weight.grad[hid:].abs().max() == 0
        assert blk.mlp.fc.weight.grad[:, e:].abs().max() == 0
        assert blk.mlp.proj.weight.grad[:, hid:].abs().max() == 0
        assert blk.ln1.weight.grad[e:].abs().max() == 0
    assert net.wpe.weight.grad[:, e:].abs().max() == 0
    assert net.ln_f.weight.grad[e:].abs().max() == 0


def test_randomising_inactive_blocks_leaves_output_unchanged():
    net = _supernet(seed=3).eval()
    net.set_active(SubnetConfig(depth=2, embed=32, heads=(4, 2), mlp_ratios=(4.0, 2.0)))
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        y = net(x)
        for p in list(net.blocks[2].parameters()) + list(net.blocks[3].parameters()):
            p.normal_()
        assert torch.equal(net(x), y)


def test_default_space_is_the_toy_space():
    net = build("supernet", max_len=8)
    assert net.config.space() == {"depth": (2, 3, 4, 6), "embed": (32, 48, 64),
                                  "heads": (1, 2, 4), "mlp_ratio": (2.0, 3.0, 4.0)}


def test_sampling_is_seeded_and_in_space():
    net = _supernet()
    a = [net.sample_config(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(1)
    samples = [net.sample_config(rng) for _ in range(200)]
    assert all(net.in_space(s) for s in samples)
    assert {s.depth for s in samples} == set(net.config.space()["depth"])
    assert SubnetConfig.from_dict(samples[0].to_dict()) == samples[0]


def test_bad_configs_are_config_errors():
    net = _supernet()
    with pytest.raises(ConfigError, match="depth 5"):
        net.set_active(SubnetConfig(5, 32, (1,) * 5, (2.0,) * 5))
    with pytest.raises(ConfigError, match="heads 8"):
        net.set_active(SubnetConfig(1, 32, (8,), (2.0,)))
    with pytest.raises(ConfigError, match="need depth=2"):
        net.set_active({"depth": 2, "embed": 32, "heads": [1], "mlp_ratios": [2.0, 2.0]})
    with pytest.raises(ConfigError, match="exactly the keys"):
        net.set_active({"depth": 2})
    with pytest.raises(ConfigError, match="depth_choices"):
        build("supernet", **KW, depth_choices=(2, 9))
    with pytest.raises(ConfigError, match="fixed=True"):
        build("supernet", **KW, layer_heads=(1, 1, 1, 1))

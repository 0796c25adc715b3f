"""BiXT (Hiller et al. 2024): shared-logit bi-directional cross-attention, linear cost, modes."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from icarena.pretraining.backbones import build
from icarena.pretraining.backbones.bixt import BiCrossAttention, count_bixa_params

KW = dict(d_model=16, n_layers=2, n_heads=2, n_latents=4, max_len=64)


def _bixa(seed=0):
    torch.manual_seed(seed)
    return BiCrossAttention(d_latent=12, d_token=16, d_attn=8, n_heads=2)


def test_token_logits_are_the_exact_transpose_of_latent_logits():
    m = _bixa()
    z, x = torch.randn(3, 5, 12), torch.randn(3, 7, 16)
    lat, tok = m.logits(z, x)
    assert lat.shape == (3, 2, 5, 7) and tok.shape == (3, 2, 7, 5)
    assert torch.equal(tok, lat.transpose(-1, -2))
    # independent: A = s Rz Rx^T from the first halves of the two in-projections, per head
    Wz, bz = m.latent_in.weight[:8], m.latent_in.bias[:8]
    Wx, bx = m.token_in.weight[:8], m.token_in.bias[:8]
    rz = (z @ Wz.T + bz).view(3, 5, 2, 4)
    rx = (x @ Wx.T + bx).view(3, 7, 2, 4)
    ref = torch.einsum("bmhd,bnhd->bhmn", rz, rx) / 2.0
    torch.testing.assert_close(lat, ref, atol=1e-6, rtol=1e-6)


def test_forward_softmax_axes_match_independent_computation():
    m = _bixa(1)
    z, x = torch.randn(2, 5, 12), torch.randn(2, 7, 16)
    dz, dx = m(z, x)
    rz, vz = (z @ m.latent_in.weight.T + m.latent_in.bias).split(8, -1)
    rx, vx = (x @ m.token_in.weight.T + m.token_in.bias).split(8, -1)
    out_z, out_x = [], []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        A = rz[..., s] @ rx[..., s].transpose(-1, -2) / 2.0  # (B, M, N)
        out_z.append(torch.softmax(A, dim=2) @ vx[..., s])  # over N
        out_x.append(torch.softmax(A.transpose(1, 2), dim=2) @ vz[..., s])  # over M
    ref_z = torch.cat(out_z, -1) @ m.latent_out.weight.T + m.latent_out.bias
    ref_x = torch.cat(out_x, -1) @ m.token_out.weight.T + m.token_out.bias
    torch.testing.assert_close(dz, ref_z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, ref_x, atol=1e-5, rtol=1e-5)


def test_two_in_and_two_out_projections_and_param_formula():
    m = _bixa()
    linears = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    assert len(linears) == 4
    assert sum(p.numel() for p in m.parameters()) == count_bixa_params(12, 16, 8)
    # in-projection weights: 2 (D_l + D) D_a, i.e. 2/3 of two separate cross-attentions' 3 (..)
    in_w = m.latent_in.weight.numel() + m.token_in.weight.numel()
    assert in_w == 2 * (12 + 16) * 8


def test_permuting_tokens_permutes_outputs_and_leaves_latents_unchanged():
    torch.manual_seed(2)
    m = build("bixt", causal=False, fourier_features=0, **KW).eval()
    x = torch.randn(2, 11, 16)
    perm = torch.randperm(11)
    with torch.no_grad():
        z1, t1 = m.encode(x)
        z2, t2 = m.encode(x[:, perm])
    torch.testing.assert_close(z2, z1, atol=1e-5, rtol=0)
    torch.testing.assert_close(t2, t1[:, perm], atol=1e-5, rtol=0)


def test_padded_tokens_are_never_read_by_latents():
    torch.manual_seed(3)
    m = build("bixt", causal=False, **KW).eval()
    x = torch.randn(2, 9, 16)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[:, 6:] = True
    x2 = x.clone()
    x2[:, 6:] = 100.0
    with torch.no_grad():
        z1, _ = m.encode(x, pad)
        z2, _ = m.encode(x2, pad)
        z3, _ = m.encode(x[:, :6])  # the same as not having the padded tokens at all
    assert torch.equal(z1, z2)
    torch.testing.assert_close(z3, z1, atol=1e-6, rtol=0)


def _flops(model, n, d):
    with FlopCounterMode(display=False) as fc:
        model(torch.randn(1, n, d))
    return fc.get_total_flops()


def test_flops_are_linear_in_tokens():
    torch.manual_seed(4)
    kw = dict(causal=False, d_model=16, n_layers=1, n_heads=2, max_len=1024)
    m = build("bixt", n_latents=4, **kw).eval()
    ratio = _flops(m, 512, 16) / _flops(m, 256, 16)
    assert 1.9 <= ratio <= 2.1, ratio


class _ShapeRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def test_no_tensor_has_two_token_axes():
    torch.manual_seed(5)
    m = build("bixt", causal=False, **KW)
    N = 37  # distinct from every other dimension
    x = torch.randn(2, N, 16, requires_grad=True)
    rec = _ShapeRecorder()
    with rec:
        m(x).sum().backward()
    assert rec.shapes
    assert not [s for s in rec.shapes if list(s).count(N) >= 2]


def test_prefix_reencode_equals_encoding_each_prefix_alone():
    torch.manual_seed(6)
    m = build("bixt", causal=True, **KW).eval()
    m_chunk = build("bixt", causal=True, prefix_chunk=3, **KW).eval()
    m_chunk.load_state_dict(m.state_dict())
    x = torch.randn(2, 8, 16)
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[1, 5:] = True
    with torch.no_grad():
        y = m(x, pad_mask=pad)
        y_chunk = m_chunk(x, pad_mask=pad)
        for t in range(8):
            _, tok = m.encode(x[:, : t + 1], pad[:, : t + 1])
            real = ~pad[:, t]
            torch.testing.assert_close(y[real, t], tok[real, t], atol=1e-5, rtol=0)
    torch.testing.assert_close(y_chunk[~pad], y[~pad], atol=1e-6, rtol=0)


def test_bidirectional_mode_fails_the_causality_probe():
    torch.manual_seed(7)
    m = build("bixt", causal=False, **KW).eval()
    x = torch.randn(2, 8, 16)
    x2 = x.clone()
    x2[:, 5:] += torch.randn(2, 3, 16)
    with torch.no_grad():
        assert not torch.allclose(m(x)[:, :5], m(x2)[:, :5], atol=1e-4)


def test_mode_errors():
    from icarena.errors import ConfigError

    with pytest.raises(ConfigError, match="prefix_reencode"):
        build("bixt", causal=True, mode="bidirectional", **KW)
    with pytest.raises(ConfigError, match="causal mode"):
        build("bixt", causal=False, mode="prefix_reencode", **KW)
    with pytest.raises(ConfigError, match="d_attn"):
        build("bixt", d_attn=15, **KW)

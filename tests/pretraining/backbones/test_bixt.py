"""BiXT (Hiller et al. 2024): shared-logit bi-directional cross-attention, linear cost, modes."""

from __future__ import annotations

import math

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


def _assert_no_tensor_has_two_token_axes(m, N: int) -> None:
    """Forward + backward of ``m`` on (2, N, 16) inputs: no recorded tensor has two N axes."""
    x = torch.randn(2, N, 16, requires_grad=True)
    rec = _ShapeRecorder()
    with rec:
        m(x).sum().backward()
    assert rec.shapes
    assert not [s for s in rec.shapes if list(s).count(N) >= 2]


def test_no_tensor_has_two_token_axes():
    torch.manual_seed(5)
    m = build("bixt", causal=False, **KW)
    _assert_no_tensor_has_two_token_axes(m, 37)  # 37: distinct from every other dimension


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


# --- latent_scan: icarena's causal variant with one latent set per position, linear in T ---

SCAN = dict(KW, causal=True, mode="latent_scan")


def _scan(seed=0, dtype=torch.float32, **kw):
    torch.manual_seed(seed)
    return build("bixt", **{**SCAN, **kw}).to(dtype).eval()


def _naive_latent_scan(m, x, pad=None):
    """The latent scan written out per position, batch row and head, with an explicit softmax
    over the readable s <= t (module docstring of bixt), from the module's parameters."""
    B, T, _ = x.shape
    h, Z0 = m.config.n_heads, m.latents
    x = m.add_positions(x)
    zs = [Z0.expand(B, -1, -1) for _ in range(T)]  # Z_t^0: (B, M, D_l) per t
    for layer in m.layers:
        cr = layer.cross
        da = cr.d_attn
        dh = da // h
        Wz, bz = cr.latent_in.weight, cr.latent_in.bias
        Wx, bx = cr.token_in.weight, cr.token_in.bias
        ref = layer.ln_z(Z0) @ Wz[:da].T + bz[:da]  # (M, D_a), the learned latents' references
        xn = layer.ln_x(x)
        rx, vx = xn @ Wx[:da].T + bx[:da], xn @ Wx[da:].T + bx[da:]
        new_x, new_z = [], []
        for t in range(T):
            vz = layer.ln_z(zs[t]) @ Wz[da:].T + bz[da:]  # (B, M, D_a)
            z_read = torch.zeros_like(vz)
            x_read = torch.zeros(B, da, dtype=x.dtype)
            for b in range(B):
                seen = [s for s in range(t + 1) if pad is None or not pad[b, s]]
                for k in range(h):
                    c = slice(k * dh, (k + 1) * dh)
                    logit = ref[:, c] @ rx[b, : t + 1, c].T / dh ** 0.5  # (M, t + 1)
                    if seen:
                        z_read[b, :, c] = torch.softmax(logit[:, seen], dim=1) @ vx[b, seen, c]
                    x_read[b, c] = torch.softmax(logit[:, t], dim=0) @ vz[b, :, c]
            z = zs[t] + cr.latent_out(z_read)
            z = z + layer.mlp_z(layer.ln_zm(z))
            xt = x[:, t] + cr.token_out(x_read)
            xt = xt + layer.mlp_x(layer.ln_xm(xt))
            new_z.append(layer.latent_block(z, None, False))
            new_x.append(xt)
        zs, x = new_z, torch.stack(new_x, dim=1)
    return m.ln_f(x)


@pytest.mark.parametrize("chunk", [1, 3, 32])
def test_latent_scan_is_causal(chunk):
    m = _scan(10, scan_chunk=chunk)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 16, generator=g)
    with torch.no_grad():
        y = m(x)
        for t in (0, 2, 5, 8):
            x2 = x.clone()
            x2[:, t + 1:] = 3 * torch.randn(2, 9 - t, 16, generator=g)
            y2 = m(x2)
            torch.testing.assert_close(y2[:, : t + 1], y[:, : t + 1], atol=1e-6, rtol=0)
            assert not torch.allclose(y2[:, t + 1:], y[:, t + 1:], atol=1e-3)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("chunk", [1, 3, 32])
def test_latent_scan_equals_the_naive_per_position_softmax(dtype, tol, chunk):
    m = _scan(11, dtype, scan_chunk=chunk)
    x = torch.randn(2, 7, 16, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _naive_latent_scan(m, x), atol=tol, rtol=tol)


def test_latent_scan_large_logits_stay_finite_and_exact():
    m = _scan(12, torch.float64, scan_chunk=3)
    with torch.no_grad():
        for layer in m.layers:
            layer.cross.latent_in.weight.mul_(50)
            layer.cross.token_in.weight.mul_(50)
    x = torch.randn(2, 8, 16, dtype=torch.float64, requires_grad=True)
    y = m(x)
    with torch.no_grad():
        A = m.layers[0].cross.scan_logits(m.layers[0].ln_z(m.latents),
                                          m.layers[0].ln_x(m.add_positions(x)))
        assert A.abs().max() > 1e3  # exp(A) overflows float64 without the running maxima
        ref = _naive_latent_scan(m, x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_causal_latent_read_matches_masked_softmax_and_survives_float32_extremes():
    from icarena.pretraining.backbones.bixt import causal_latent_read

    g = torch.Generator().manual_seed(13)
    A = torch.randn(2, 3, 4, 9, generator=g, dtype=torch.float64) * 30
    v = torch.randn(2, 3, 9, 5, generator=g, dtype=torch.float64)
    later = torch.ones(9, 9, dtype=torch.bool).triu(1)  # [t, s]
    w = A[:, :, :, None, :].masked_fill(later, float("-inf")).softmax(-1)  # (B, h, M, t, s)
    ref = torch.einsum("bhmts,bhsd->bhtmd", w, v)
    for chunk in (1, 2, 4, 9, 100):
        torch.testing.assert_close(causal_latent_read(A, v, chunk=chunk), ref,
                                   atol=1e-12, rtol=1e-12)
    big = (A * 1e3).float()  # exp() of these overflows float32 a thousand times over
    out = causal_latent_read(big, v.float(), chunk=4)
    w = big.double()[:, :, :, None, :].masked_fill(later, float("-inf")).softmax(-1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), torch.einsum("bhmts,bhsd->bhtmd", w, v),
                               atol=1e-5, rtol=1e-5)


def test_causal_latent_read_gradients_match_finite_differences():
    # The running maxima are detached (the read does not depend on them): gradients stay exact.
    from icarena.pretraining.backbones.bixt import causal_latent_read

    g = torch.Generator().manual_seed(19)
    A = (torch.randn(1, 2, 3, 7, generator=g, dtype=torch.float64) * 5).requires_grad_()
    v = torch.randn(1, 2, 7, 2, generator=g, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[True, False, False, True, False, False, False]])
    for chunk in (1, 3):
        assert torch.autograd.gradcheck(lambda a, b, c=chunk: causal_latent_read(a, b, pad, c),
                                        (A, v))


def test_latent_scan_never_reads_padded_tokens():
    m = _scan(14, torch.float64, scan_chunk=3)
    x = torch.randn(3, 8, 16, dtype=torch.float64)
    pad = torch.zeros(3, 8, dtype=torch.bool)
    pad[0, 5:] = True  # right padding
    pad[1, :2] = True  # left padding: the first prefixes have no real token
    pad[1, 4] = True  # a hole
    pad[2, 1::2] = True  # every other token
    x2 = x.clone()
    x2[pad] = 1e3 * torch.randn(int(pad.sum()), 16, dtype=torch.float64)
    with torch.no_grad():
        y, y2 = m(x, pad_mask=pad), m(x2, pad_mask=pad)
        ref = _naive_latent_scan(m, x, pad)
    assert torch.isfinite(y).all() and torch.isfinite(y2).all()
    torch.testing.assert_close(y2[~pad], y[~pad], atol=1e-12, rtol=0)
    torch.testing.assert_close(y[~pad], ref[~pad], atol=1e-10, rtol=1e-10)
    x3 = x.clone()
    x3[pad] = float("nan")  # not even a NaN in a padded slot reaches a real position
    with torch.no_grad():
        torch.testing.assert_close(m(x3, pad_mask=pad)[~pad], y[~pad], atol=1e-12, rtol=0)
        # and the mask matters: without it the same positions change
        assert not torch.allclose(m(x2)[~pad], y[~pad], atol=1e-3)


def test_latent_scan_layer_one_latents_equal_each_prefix_encoded_alone():
    # In layer 1 every Z_t^0 is the learned latents, so the scan is BiXA on the prefix x_{<=t}.
    m = _scan(15, torch.float64)
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    got = {}
    hook = m.layers[0].register_forward_hook(lambda _m, _a, out: got.__setitem__("z", out[0]))
    with torch.no_grad():
        m(x)
        hook.remove()
        for t in range(9):
            prefix = {}
            hook = m.layers[0].register_forward_hook(
                lambda _m, _a, out, prefix=prefix: prefix.__setitem__("z", out[0]))
            m.encode(x[:, : t + 1])
            hook.remove()
            torch.testing.assert_close(got["z"][:, t], prefix["z"], atol=1e-12, rtol=1e-12)


def test_latent_scan_checkpoint_is_mode_independent():
    m = _scan(16)
    other = build("bixt", **KW, causal=True)  # prefix_reencode
    assert list(m.state_dict()) == list(other.state_dict())
    other.load_state_dict(m.state_dict())


def test_latent_scan_flops_linear_and_no_tensor_with_two_token_axes():
    kw = dict(KW, n_layers=1, max_len=1024)
    m = build("bixt", **{**SCAN, **kw}).eval()
    ratio = _flops(m, 512, 16) / _flops(m, 256, 16)
    assert 1.9 <= ratio <= 2.1, ratio
    # 37: distinct from every other dimension (chunk 32, M 4, widths 16, 32, 64)
    _assert_no_tensor_has_two_token_axes(_scan(17), 37)


def _no_history_floor(V: int, T: int) -> float:
    """Mean cross-entropy (nats) of the best predictor of max(x_0..x_t) that sees only x_t and
    t, for i.i.d. uniform tokens in 0..V-1: P(max = k | x_t = j) = ((k+1)^t - k^t) / V^t for
    k > j and ((j+1) / V)^t for k = j."""
    total = 0.0
    for t in range(T):
        for j in range(V):
            ps = [((j + 1) / V) ** t] + [((k + 1) / V) ** t - (k / V) ** t
                                         for k in range(j + 1, V)]
            total += sum(-p * math.log(p) for p in ps if p > 0) / V
    return total / T


def test_latent_scan_trains_past_what_one_position_can_know():
    # Next-token task: at t predict max(x_0..x_t). A model that cannot read the past is stuck
    # at the no-history floor (~0.64 nats); the scan's latents carry the history.
    from icarena.pretraining.model import ModelConfig, SequenceModel

    torch.manual_seed(18)
    V, T = 6, 12
    model = SequenceModel(ModelConfig(
        backbone="bixt", backbone_cfg=dict(SCAN, max_len=T), input_kind="tokens",
        input_dim=V, output_dim=V))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(100):
        tok = torch.randint(0, V, (32, T), generator=g)
        loss = torch.nn.functional.cross_entropy(model(tok).reshape(-1, V),
                                                 tok.cummax(dim=1).values.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    floor = _no_history_floor(V, T)
    assert 0.6 < floor < 0.7
    assert first > floor and last < 0.7 * floor, (first, last, floor)


def test_latent_scan_mode_validation():
    from icarena.errors import ConfigError
    from icarena.pretraining.backbones import describe

    with pytest.raises(ConfigError, match="latent_scan' is a causal mode; set causal=True"):
        build("bixt", **{**SCAN, "causal": False})
    with pytest.raises(ConfigError, match="scan_chunk"):
        build("bixt", **SCAN, scan_chunk=0)
    assert build("bixt", **KW, causal=True).mode == "prefix_reencode"  # auto is unchanged
    assert build("bixt", **SCAN).mode == "latent_scan"
    assert "latent_scan" in describe("bixt")

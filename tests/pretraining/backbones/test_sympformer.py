"""SympFormer (Stein et al. 2026): momentum-off = GPT, closed forms, energy, oracle count."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from icarena.errors import ConfigError
from icarena.pretraining.backbones import build
from icarena.pretraining.backbones import sympformer as sf

KW = dict(d_model=16, n_layers=2, n_heads=2, max_len=12)


def _gpt_and_symp(**symp_kw):
    torch.manual_seed(0)
    gpt = build("gpt", **KW).eval()
    symp = build("sympformer", **KW, **symp_kw).eval()
    missing, unexpected = symp.load_state_dict(gpt.state_dict(), strict=False)
    assert not unexpected
    return gpt, symp, missing


def test_momentum_off_is_exactly_the_gpt_block():
    gpt, symp, missing = _gpt_and_symp(momentum=False)
    assert not missing  # same parameters, same names: nothing extra
    x = torch.randn(3, 10, 16)
    with torch.no_grad():
        torch.testing.assert_close(symp(x), gpt(x), atol=1e-6, rtol=0)


def test_zero_mu_beta_unit_gamma_identity_lnv_equals_gpt():
    gpt, symp, _ = _gpt_and_symp(momentum_norm=False, damping="learned")
    with torch.no_grad():
        for block in symp.blocks:
            for step in (block.attn_step, block.mlp_step):
                step.mu_raw.fill_(-math.inf)  # mu = sigmoid(-inf) = 0
                step.beta_raw.fill_(-math.inf)  # beta = 0
                step.gamma_raw.fill_(math.log(math.e - 1))  # gamma = softplus(.) = 1
        x = torch.randn(3, 10, 16)
        torch.testing.assert_close(symp(x), gpt(x), atol=1e-6, rtol=0)
        # and with the default (0.9, 0.9, 1.0) momentum the outputs differ
        fresh = build("sympformer", **KW).eval()
        fresh.load_state_dict(gpt.state_dict(), strict=False)
        assert not torch.allclose(fresh(x), gpt(x), atol=1e-3)


def test_one_layer_from_zero_velocity_matches_closed_form():
    torch.manual_seed(1)
    m = build("sympformer", d_model=16, n_layers=1, n_heads=2, max_len=12).eval()
    b = m.blocks[0]
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        h = x + m.wpe.weight[:7]
        mask = torch.tril(torch.ones(7, 7, dtype=torch.bool))[None, None]
        g1 = F.softplus(b.attn_step.gamma_raw)
        v = b.attn_step.ln_v(g1 * b.attn(b.ln1(h), mask))  # beta * 0 vanishes, x + mu*0 = x
        h = h + v
        mu2, beta2 = torch.sigmoid(b.mlp_step.mu_raw), torch.sigmoid(b.mlp_step.beta_raw)
        g2 = F.softplus(b.mlp_step.gamma_raw)
        v = b.mlp_step.ln_v(beta2 * v + g2 * b.mlp(b.ln2(h + mu2 * v)))
        expected = m.ln_f(h + v)
        torch.testing.assert_close(m(x), expected, atol=1e-6, rtol=0)


def _spd(d, gen):
    Q = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return Q @ Q.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def test_kick_drift_from_rest_is_an_attention_step_of_size_h2_n2():
    gen = torch.Generator().manual_seed(2)
    N, d, h = 5, 4, 0.37
    A, Bm = 0.3 * _spd(d, gen), _spd(d, gen)
    X0 = torch.randn(1, N, d, generator=gen, dtype=torch.float64)
    X1, Y1 = sf.kick_drift(X0, torch.zeros_like(X0), A, Bm, h)
    # independent: Gamma_i = sum_j softmax_j(x_i^T A x_j) (B A) x_j
    P = torch.softmax(torch.einsum("bid,de,bje->bij", X0, A, X0), dim=-1)
    gamma = P @ X0 @ (Bm @ A).T
    torch.testing.assert_close(X1, X0 + h**2 * N**2 * gamma, atol=1e-12, rtol=0)


def test_forces_are_the_hamiltonian_gradients():
    gen = torch.Generator().manual_seed(3)
    N, d = 6, 3
    A, Bm = 0.2 * _spd(d, gen), _spd(d, gen)
    X = torch.randn(2, N, d, generator=gen, dtype=torch.float64, requires_grad=True)
    Y = torch.randn(2, N, d, generator=gen, dtype=torch.float64, requires_grad=True)
    dX, G, _, _ = sf.particle_terms(X, Y, A, Bm)
    H = sf.particle_energy(X, Y, A, Bm).sum()
    gX, gY = torch.autograd.grad(H, (X, Y))
    torch.testing.assert_close(G, -gX, atol=1e-10, rtol=1e-10)  # dy/dt = -dH/dx
    torch.testing.assert_close(dX, gY, atol=1e-10, rtol=1e-10)  # dx/dt = dH/dy


def _drift(X0, Y0, A, Bm, h, horizon):
    H0 = sf.particle_energy(X0, Y0, A, Bm).item()
    X, Y, worst = X0, Y0, 0.0
    for _ in range(round(horizon / h)):
        X, Y = sf.kick_drift(X, Y, A, Bm, h)
        worst = max(worst, abs(sf.particle_energy(X, Y, A, Bm).item() - H0))
    return worst, H0


def test_energy_bounded_without_damping_and_non_increasing_with_damping():
    # H is not separable (the kinetic term depends on X through z), so kick-drift is a
    # first-order scheme: the energy error over a fixed horizon is O(h), i.e. bounded and
    # halving with the step.
    gen = torch.Generator().manual_seed(4)
    N, d, h = 5, 3, 2e-3
    A, Bm = 0.2 * _spd(d, gen), _spd(d, gen)
    X0 = torch.randn(1, N, d, generator=gen, dtype=torch.float64)
    Y0 = torch.randn(1, N, d, generator=gen, dtype=torch.float64)
    worst, H0 = _drift(X0, Y0, A, Bm, h, horizon=50 * h)
    assert worst < 0.02 * abs(H0)
    worst_half, _ = _drift(X0, Y0, A, Bm, h / 2, horizon=50 * h)
    assert 1.8 < worst / worst_half < 2.2

    alpha = 2.0
    sigma = math.exp(-alpha * h)
    X, Y, prev = X0, Y0, H0
    Xu, Yu = X0, Y0
    for _ in range(50):
        X, Y = sf.kick_drift(X, Y, A, Bm, h, sigma=sigma)
        Xu, Yu = sf.kick_drift(Xu, Yu, A, Bm, h)
        e = sf.particle_energy(X, Y, A, Bm).item()
        assert e <= prev + 1e-9
        prev = e
    # dH/dt = -alpha <y, dH/dy> = -2 alpha K: the damping must dissipate about that much more
    K0 = H0 - sf.particle_energy(X0, torch.zeros_like(Y0), A, Bm).item()
    undamped = sf.particle_energy(Xu, Yu, A, Bm).item()
    assert prev < undamped - 0.5 * (2 * alpha * K0 * 50 * h)


def test_damping_schedules_integrate_alpha_exactly():
    t, h = torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    grid = torch.linspace(0, 1, 200001, dtype=torch.float64)[:-1] + 0.5 / 200000  # midpoints
    for kind, alpha in [("nesterov", lambda s: 3.0 / s), ("heavy_ball", lambda s: 3.0 + 0 * s),
                        ("loglin", lambda s: 3.0 / s + 0.1), ("none", lambda s: 0 * s)]:
        integral = (alpha(t + h * grid) * h).mean()
        expected = torch.exp(-integral)
        got = sf.damping_factor(kind, t, h, 3.0, 0.1)
        torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("variant, target", [("nesterov_lt", "scaled_dot_product_attention"),
                                             ("hamiltonian_euler", "particle_terms")])
def test_one_oracle_call_per_layer(variant, target, monkeypatch):
    calls = []
    module = F if target == "scaled_dot_product_attention" else sf
    real = getattr(module, target)

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, target, counting)
    m = build("sympformer", variant=variant, d_model=16, n_layers=3, n_heads=2, max_len=12)
    m(torch.randn(2, 6, 16))
    assert len(calls) == 3


@pytest.mark.parametrize("kw", [dict(v0="learned"), dict(v0="learned", damping="loglin"),
                                dict(variant="hamiltonian_euler", v0="learned"),
                                dict(variant="hamiltonian_euler", damping="learned"),
                                dict(lookahead=False, damping="nesterov")])
def test_causality_probe_with_v0_and_lookahead(kw):
    torch.manual_seed(5)
    m = build("sympformer", **KW, **kw).eval()
    x = torch.randn(2, 10, 16)
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[1, 8:] = True
    with torch.no_grad():
        y = m(x, pad_mask=pad)
        assert torch.isfinite(y).all()
        for t in (0, 4, 8):
            x2 = x.clone()
            x2[:, t + 1:] = torch.randn(2, 9 - t, 16) * 3
            torch.testing.assert_close(m(x2, pad_mask=pad)[:, : t + 1], y[:, : t + 1],
                                       atol=1e-6, rtol=0)


def test_v0_parameters_are_counted():
    base = build("sympformer", **KW).num_params()
    with_v0 = build("sympformer", v0="learned", **KW).num_params()
    assert with_v0 - base == 16 * 16 + 12 * 16  # D x D map + max_len x D positions


def test_errors():
    with pytest.raises(ConfigError, match="variant"):
        build("sympformer", variant="rk4", **KW)
    with pytest.raises(ConfigError, match="damping"):
        build("sympformer", damping="strong", **KW)
    with pytest.raises(ConfigError, match="mu_init"):
        build("sympformer", mu_init=1.0, **KW)
    with pytest.raises(ConfigError, match="momentum"):
        build("sympformer", variant="hamiltonian_euler", momentum=False, **KW)

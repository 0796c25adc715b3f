"""Exact OLS / GD constructions (Tan & Zhao; von Oswald et al.) and the ``linear`` backbone."""

import numpy as np
import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.backbones import build
from icarena.pretraining.backbones.linear import (
    LinearAttention,
    gd_construction,
    gd_predict,
    ols_construction,
    ols_weights,
    preconditioned_gd_construction,
)

T = torch.as_tensor


def _problem(rng, n, d, m=4):
    return rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal((m, d))


def test_ols_matches_lstsq_on_100_random_problems():
    rng = np.random.default_rng(0)
    sizes = [(5, 5), (8, 3), (20, 5), (50, 10), (13, 1)]
    worst = 0.0
    for trial in range(100):
        n, d = sizes[trial % len(sizes)]
        X, Y, xq = _problem(rng, n, d)
        layer = ols_construction(X, Y)
        out = layer.query_outputs(T(X), T(Y), T(xq)).numpy()
        ref = xq @ np.linalg.lstsq(X, Y, rcond=None)[0]
        worst = max(worst, float(np.abs(out - ref).max()))
    assert worst <= 1e-10, worst


def test_ols_internals_hat_matrix_and_values():
    rng = np.random.default_rng(1)
    X, Y, _ = _problem(rng, 30, 5)
    L, P = ols_weights(X, Y)
    L = L.numpy()
    assert np.abs((X @ L).T @ (X @ L) - np.eye(5)).max() < 1e-12
    layer = ols_construction(X, Y)
    tokens = T(np.concatenate([X, Y[:, None]], axis=1))[None]
    A = layer.attn.scores(tokens)[0, 0].numpy()
    np.testing.assert_allclose(A, A.T, atol=1e-12)
    np.testing.assert_allclose(A @ A, A, atol=1e-12)
    assert abs(np.trace(A) - 5) < 1e-10
    beta = np.linalg.lstsq(X, Y, rcond=None)[0]
    np.testing.assert_allclose(A @ Y, X @ beta, atol=1e-10)
    values = layer.attn.v(tokens)[0].numpy()
    np.testing.assert_allclose(A @ values, X @ L, atol=1e-10)  # A V = X L
    # the full residual layer writes X beta_hat into the context tokens' y slots
    out = layer(tokens)[0, :, 5].numpy()
    np.testing.assert_allclose(out, Y + X @ beta, atol=1e-10)


def test_ols_permutation_invariant_and_query_must_not_be_a_key():
    rng = np.random.default_rng(2)
    X, Y, xq = _problem(rng, 25, 4, m=1)
    layer = ols_construction(X, Y)
    base = layer.query_outputs(T(X), T(Y), T(xq))
    perm = rng.permutation(25)
    np.testing.assert_allclose(layer.query_outputs(T(X[perm]), T(Y[perm]), T(xq)), base,
                               atol=1e-12)
    tokens = T(np.concatenate([np.concatenate([X, Y[:, None]], 1),
                               np.concatenate([xq, np.zeros((1, 1))], 1)]))[None]
    wrong = layer(tokens)[0, -1, 4].item()  # no key mask: the query is also a key
    L, P = (a.numpy() for a in ols_weights(X, Y))
    expected_wrong = (xq @ L @ (np.eye(4) + L.T @ xq.T @ xq @ L) @ P).item()
    assert wrong == pytest.approx(expected_wrong, rel=1e-9)
    assert abs(wrong - base.item()) > 1e-3


def test_ols_ill_conditioned_and_distribution_shift():
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((40, 5)))
    V, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    X = U @ np.diag(np.logspace(0, -6, 5)) @ V.T  # cond(X) = 1e6
    Y = rng.standard_normal(40)
    xq = rng.standard_normal((3, 5))
    out = ols_construction(X, Y).query_outputs(T(X), T(Y), T(xq)).numpy()
    ref = xq @ np.linalg.lstsq(X, Y, rcond=None)[0]
    assert np.abs(out - ref).max() <= 1e-8 * np.abs(ref).max()
    # weights built on X, evaluated with another design X': not the OLS of X'
    X2, Y2, _ = _problem(rng, 40, 5)
    X2 = 3.0 * X2 + 1.0
    layer = ols_construction(*_problem(rng, 40, 5)[:2])
    shifted = layer.query_outputs(T(X2), T(Y2), T(xq)).numpy()
    ols2 = xq @ np.linalg.lstsq(X2, Y2, rcond=None)[0]
    assert np.abs(shifted - ols2).max() > 0.1


def test_rank_deficient_input_is_a_clear_error():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, 3))
    X = np.concatenate([X, X[:, :1] + X[:, 1:2]], axis=1)  # rank 3 < d = 4
    with pytest.raises(ConfigError, match=r"rank\(X\) = 3.*least_squares / ridge"):
        ols_construction(X, rng.standard_normal(10))
    with pytest.raises(ConfigError, match=r"rank\(X\) = 2"):
        ols_construction(rng.standard_normal((2, 4)), rng.standard_normal(2))  # n < d


def test_gd_construction_equals_one_explicit_gd_step():
    rng = np.random.default_rng(5)
    for n, d in [(10, 10), (7, 3), (40, 6)]:
        for _ in range(5):
            X, Y, xq = _problem(rng, n, d)
            w0, eta = rng.standard_normal(d), float(rng.uniform(0.05, 1.0))
            pred = gd_predict(gd_construction(d, eta, n, w0), T(X), T(Y), T(xq)).numpy()
            grad = X.T @ (X @ w0 - Y) / n  # ∇ (1/2N) Σ (w·x_i − y_i)²
            np.testing.assert_allclose(pred, xq @ (w0 - eta * grad), atol=1e-10, rtol=0)
    # W_0 = 0: von Oswald's read-out (η/N) Σ y_i x_iᵀ x_q
    X, Y, xq = _problem(rng, 10, 10)
    pred = gd_predict(gd_construction(10, 0.5, 10), T(X), T(Y), T(xq)).numpy()
    np.testing.assert_allclose(pred, 0.5 / 10 * (xq @ X.T @ Y), atol=1e-12)


def test_preconditioned_gd_closed_form_and_risk():
    rng = np.random.default_rng(6)
    d, n, trials = 5, 10, 2000
    gamma = n / (n + d + 1) * np.eye(d)
    layer = preconditioned_gd_construction(gamma, n)
    X = rng.standard_normal((trials, n, d))
    w = rng.standard_normal((trials, d))
    Y = np.einsum("tnd,td->tn", X, w)
    xq = rng.standard_normal((trials, 1, d))
    pred = layer.query_outputs(T(X), T(Y), T(xq)).numpy()[:, 0]
    closed = np.einsum("td,td->t", xq[:, 0] @ gamma, np.einsum("tnd,tn->td", X, Y) / n)
    np.testing.assert_allclose(pred, closed, atol=1e-10)
    err = (pred - np.einsum("td,td->t", xq[:, 0], w)) ** 2 / d
    assert abs(err.mean() - (d + 1) / (n + d + 1)) < 3 * err.std() / np.sqrt(trials)


def test_causal_cumsum_equals_masked_attention_matrix():
    torch.manual_seed(0)
    attn = LinearAttention(8, n_heads=2, bias=True, normalize="count").double()
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    key_mask = torch.rand(3, 7) > 0.3
    for causal in (True, False):
        out = attn(x, causal=causal, key_mask=key_mask)
        A = attn.scores(x, causal=causal, key_mask=key_mask)  # (B, H, T, T)
        v = attn._heads(attn.v(x))
        ref = attn.o((A @ v).transpose(1, 2).reshape(3, 7, 8))
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


def test_linear_backbone_causality_padding_and_registry():
    torch.manual_seed(1)
    m = build("linear", d_model=16, n_layers=2, n_heads=2, causal=True, max_len=12)
    x = torch.randn(2, 10, 16)
    y = m(x)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 4, 16)
    y2 = m(x2)
    assert torch.equal(y[:, :6], y2[:, :6])
    assert (y[:, 6:] - y2[:, 6:]).abs().max() > 1e-3
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[:, 8:] = True
    bi = build("linear", d_model=16, n_layers=2, n_heads=2, causal=False, max_len=12)
    a = bi(x, pad_mask=pad)
    x3 = x.clone()
    x3[:, 8:] = 7.0
    torch.testing.assert_close(bi(x3, pad_mask=pad)[:, :8], a[:, :8])
    with pytest.raises(ConfigError, match="normalize"):
        build("linear", normalize="softmax")
    with pytest.raises(ConfigError, match="max_len"):
        m(torch.randn(1, 13, 16))


def test_linear_backbone_is_permutation_equivariant_without_positions():
    torch.manual_seed(2)
    m = build("linear", d_model=8, n_layers=2, n_heads=2, causal=False,
              learned_positions=False)
    x = torch.randn(1, 6, 8)
    perm = torch.randperm(6)
    torch.testing.assert_close(m(x[:, perm]), m(x)[:, perm], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("T", [3, 9])  # T <= dh^2: masked quadratic form; T > dh^2: sums
def test_causal_linear_attention_both_forms_match_the_masked_matrix(T):
    from icarena.pretraining.backbones.linear import LinearAttention

    torch.manual_seed(0)
    att = LinearAttention(4, n_heads=2, head_dim=2, normalize="count").double()
    x = torch.randn(3, T, 4, dtype=torch.float64)
    key_mask = torch.rand(3, T) > 0.3
    out = att(x, causal=True, key_mask=key_mask)
    a = att.scores(x, causal=True, key_mask=key_mask)  # (B, H, T, T), normalised by count
    v = att._heads(att.v(x))
    ref = att.o((a @ v).transpose(1, 2).reshape(3, T, -1))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)

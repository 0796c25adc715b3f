import numpy as np
import pytest

from icarena.agents.regression import (
    averaging,
    knn,
    lasso,
    least_squares,
    lsa_optimal,
    prefix_predictions,
    ridge,
    sparse_bayes,
    two_layer_nn,
)
from icarena.envs.regression import make_family, sample_prompts
from icarena.errors import ConfigError


def _data(P=20, n=8, d=4, m=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((P, n, d)), rng.standard_normal((P, n)), rng.standard_normal(
        (P, m, d))


def test_least_squares_reference_curve():
    """Noiseless isotropic linear data: error/d = (d - k)/d for k < d and 0 from k = d."""
    d, k, P = 5, 9, 6000
    p = sample_prompts(make_family("linear", d), np.random.default_rng(1), P, k)
    err = (prefix_predictions("least_squares", p.x, p.y) - p.y) ** 2 / d
    mean, se = err.mean(0), err.std(0) / np.sqrt(P)
    for i in range(d):
        assert abs(mean[i] - (d - i) / d) < 4 * se[i] + 1e-9, (i, mean[i])
    assert err[:, d:].max() < 1e-16 * 1e6  # exact up to rounding


def test_averaging_and_lsa_reference_curves():
    d, k, P = 4, 13, 6000
    p = sample_prompts(make_family("linear", d), np.random.default_rng(2), P, k)
    for name, theory in (("averaging", lambda i: (d + 1) / i),
                         ("lsa_optimal", lambda i: (d + 1) / (i + d + 1))):
        err = (prefix_predictions(name, p.x, p.y) - p.y) ** 2 / d
        for i in (4, 8, 12):
            se = err[:, i].std() / np.sqrt(P)
            assert abs(err[:, i].mean() - theory(i)) < 4 * se, (name, i)


def test_least_squares_and_ridge_match_numpy_per_prompt():
    for n in (2, 4, 8):  # under-, exactly and over-determined
        x, y, q = _data(n=n)
        ls, rd = least_squares(x, y, q), ridge(x, y, q, lam=0.7)
        for p in range(x.shape[0]):
            w = np.linalg.lstsq(x[p], y[p], rcond=None)[0]  # min-norm when n < d
            np.testing.assert_allclose(ls[p], q[p] @ w, atol=1e-10)
            aug_x = np.vstack([x[p], np.sqrt(0.7) * np.eye(4)])
            aug_y = np.concatenate([y[p], np.zeros(4)])
            np.testing.assert_allclose(rd[p], q[p] @ np.linalg.lstsq(aug_x, aug_y, rcond=None)[0],
                                       atol=1e-10)


def test_knn_matches_brute_force():
    x, y, q = _data(n=9, m=4)
    out = knn(x, y, q, n_neighbors=3)
    for p in range(x.shape[0]):
        for j in range(4):
            dist = [float(np.sum((q[p, j] - x[p, i]) ** 2)) for i in range(9)]
            nearest = sorted(range(9), key=lambda i: (dist[i], i))[:3]
            assert out[p, j] == pytest.approx(np.mean(y[p, nearest]), abs=1e-12)
    few = knn(x[:, :2], y[:, :2], q, n_neighbors=3)  # fewer points than neighbours: mean of all
    np.testing.assert_allclose(few, np.repeat(y[:, :2].mean(1, keepdims=True), 4, axis=1))


def test_averaging_formula():
    x, y, q = _data()
    w = np.einsum("pnd,pn->pd", x, y) / x.shape[1]
    np.testing.assert_allclose(averaging(x, y, q), np.einsum("pmd,pd->pm", q, w))
    np.testing.assert_allclose(lsa_optimal(x, y, q),
                               averaging(x, y, q) * 8 / (8 + 4 + 1), rtol=1e-12)


def test_lasso_satisfies_kkt_and_recovers_sparse_weights():
    rng = np.random.default_rng(3)
    P, n, d, alpha = 30, 12, 6, 0.05
    x = rng.standard_normal((P, n, d))
    w_true = np.zeros((P, d))
    w_true[:, :2] = rng.standard_normal((P, 2))
    y = np.einsum("pnd,pd->pn", x, w_true)
    eye = np.broadcast_to(np.eye(d), (P, d, d))
    w = lasso(x, y, eye, alpha=alpha, tol=1e-12)  # predictions at unit vectors = coefficients
    grad = np.einsum("pnd,pn->pd", x, y - np.einsum("pnd,pd->pn", x, w)) / n
    active = np.abs(w) > 1e-9
    np.testing.assert_allclose(grad[active], alpha * np.sign(w[active]), atol=1e-7)
    assert (np.abs(grad[~active]) <= alpha + 1e-7).all()
    # shrinkage is O(alpha): the fit stays close to the sparse truth
    assert np.abs(w - w_true).mean() < 0.05
    # a tiny penalty on an over-determined problem gives least squares
    xo, yo, qo = _data(n=10, d=3)
    np.testing.assert_allclose(lasso(xo, yo, qo, alpha=1e-9, tol=1e-14),
                               least_squares(xo, yo, qo), atol=1e-6)


def test_two_layer_nn_fits_its_prompt_and_is_deterministic():
    p = sample_prompts(make_family("relu_2nn", 2), np.random.default_rng(4), 8, 30)
    x, y = p.x, p.y
    fit = two_layer_nn(x, y, x, steps=200, seed=1)
    assert np.mean((fit - y) ** 2) < 0.2 * np.mean(y**2)
    np.testing.assert_array_equal(fit, two_layer_nn(x, y, x, steps=200, seed=1))


@pytest.mark.parametrize("name", ["least_squares", "ridge", "knn", "averaging", "lasso"])
def test_prefix_predictions_use_only_earlier_points(name):
    x, y, _ = _data(P=5, n=7)
    base = prefix_predictions(name, x, y)
    assert (base[:, 0] == 0).all()
    x2, y2 = x.copy(), y.copy()
    x2[:, 5:] += 3.0  # prediction i uses x_0..x_i and y_0..y_{i-1}
    y2[:, 4:] -= 2.0
    changed = prefix_predictions(name, x2, y2)
    np.testing.assert_array_equal(base[:, :5], changed[:, :5])


def test_bad_input():
    x, y, q = _data()
    with pytest.raises(ConfigError, match="unknown baseline"):
        prefix_predictions("xgboost", x, y)
    with pytest.raises(ConfigError, match="y_ctx must be"):
        least_squares(x, y[:, :3], q)
    with pytest.raises(ConfigError, match="lam must be > 0"):
        ridge(x, y, q, lam=0.0)
    with pytest.raises(ConfigError, match="n_neighbors"):
        knn(x, y, q, n_neighbors=0)


def test_sparse_bayes_against_closed_forms():
    # s = d: the prior is N(0, I) and the noiseless posterior mean is the min-norm LS fit
    x, y, xq = _data(P=6, n=3, d=4)
    np.testing.assert_allclose(sparse_bayes(x, y, xq, sparsity=4, jitter=0.0),
                               least_squares(x, y, xq), atol=1e-9)
    # d = 2, s = 1, one point: two supports with evidence N(y; 0, x_j^2), fit w_j = y / x_j
    x1, y1, q = np.array([[[0.5, -2.0]]]), np.array([[1.3]]), np.array([[[1.0, 0.7]]])
    ev = np.exp(-0.5 * 1.3**2 / np.array([0.25, 4.0])) / np.sqrt([0.25, 4.0])
    expect = (ev / ev.sum()) @ np.array([1.3 / 0.5, 0.7 * 1.3 / -2.0])
    assert sparse_bayes(x1, y1, q, sparsity=1, jitter=0.0)[0, 0] == pytest.approx(expect)
    # s = 1 and two points identify the coordinate: the prediction is exact
    p = sample_prompts(make_family("sparse_linear", 5, sparsity=1), np.random.default_rng(3),
                       200, 3)
    pred = sparse_bayes(p.x[:, :2], p.y[:, :2], p.x[:, 2:], sparsity=1)
    err = np.abs(pred[:, 0] - p.y[:, 2])
    assert np.mean(err < 1e-6) > 0.97 and err.max() < 0.02  # (a near-zero w stays ambiguous)
    assert (prefix_predictions("sparse_bayes", p.x, p.y, sparsity=1)[:, 0] == 0).all()

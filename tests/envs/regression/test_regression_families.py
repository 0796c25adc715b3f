import numpy as np
import pytest

from icarena.envs.regression import (
    FAMILY_NAMES,
    RATE_TARGETS,
    holder_target,
    lacunary_target,
    make_family,
    rate_target,
    sample_prompts,
)
from icarena.envs.regression.families import cusp_variance, lacunary_phases
from icarena.errors import ConfigError


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_shapes_finite_and_deterministic(name):
    fam = make_family(name, 4)
    a = sample_prompts(fam, np.random.default_rng(3), 7, 9)
    b = sample_prompts(fam, np.random.default_rng(3), 7, 9)
    assert a.x.shape == (7, 9, 4) and a.y.shape == (7, 9) and a.f.shape == (7, 9)
    assert np.isfinite(a.x).all() and np.isfinite(a.y).all()
    assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    c = sample_prompts(fam, np.random.default_rng(4), 7, 9)
    assert not np.array_equal(a.x, c.x)


def test_linear_is_exact_dot_product_with_unit_variance_per_dim():
    fam = make_family("linear", 5)
    p = sample_prompts(fam, np.random.default_rng(0), 4000, 3)
    for i in range(3):
        np.testing.assert_allclose(p.y[i], p.x[i] @ p.params["w"][i], rtol=1e-12)
    # E y^2 = E ||w||^2 = d, so the normaliser d makes predicting 0 score ~1
    assert abs((p.y**2).mean() / fam.normaliser - 1.0) < 0.08


def test_sparse_linear_has_exactly_s_nonzeros():
    fam = make_family("sparse_linear", 10, sparsity=3)
    w = sample_prompts(fam, np.random.default_rng(1), 500, 2).params["w"]
    assert ((w != 0).sum(axis=1) == 3).all()
    # every coordinate gets chosen sometimes
    assert ((w != 0).sum(axis=0) > 0).all()
    assert fam.normaliser == 3.0


def test_relu_2nn_matches_loop_and_scale():
    fam = make_family("relu_2nn", 3, hidden=20)
    p = sample_prompts(fam, np.random.default_rng(2), 3, 5)
    for i in range(3):
        for t in range(5):
            hid = [max(0.0, sum(p.x[i, t, a] * p.params["W1"][i, a, j] for a in range(3)))
                   for j in range(20)]
            ref = np.sqrt(2 / 20) * sum(h * w for h, w in zip(hid, p.params["W2"][i], strict=True))
            assert abs(p.y[i, t] - ref) < 1e-12
    big = sample_prompts(make_family("relu_2nn", 5), np.random.default_rng(0), 3000, 2)
    assert abs((big.y**2).mean() / 5 - 1.0) < 0.1


def _tree_value(features, leaves, x, depth):
    node = 0
    for _ in range(depth):
        node = 2 * node + (2 if x[features[node]] > 0 else 1)
    return leaves[node - (2**depth - 1)]


def test_decision_tree_matches_recursive_traversal():
    fam = make_family("decision_tree", 6, depth=4)
    p = sample_prompts(fam, np.random.default_rng(5), 10, 20)
    for i in range(10):
        for t in range(20):
            ref = _tree_value(p.params["features"][i], p.params["leaves"][i], p.x[i, t], 4)
            assert p.y[i, t] == ref
    assert set(np.unique(p.y[0])) <= set(p.params["leaves"][0])


def test_holder_is_holder_and_noisy():
    fam = make_family("holder", 2, alpha=0.5)
    assert fam.noise_std == 0.25
    p = sample_prompts(fam, np.random.default_rng(6), 200, 50)
    assert (p.x >= 0).all() and (p.x <= 1).all()
    # independent evaluation
    ref = sum(p.params["a"][:, m, None]
              * np.linalg.norm(p.x - p.params["centres"][:, m, None, :], axis=-1) ** 0.5
              for m in range(fam.n_bumps))
    np.testing.assert_allclose(p.f, ref, rtol=1e-12, atol=1e-12)
    # Hölder: |f(x) - f(x')| <= sum|a| * ||x - x'||^alpha
    lhs = np.abs(p.f[:, :25] - p.f[:, 25:])
    rhs = np.abs(p.params["a"]).sum(1)[:, None] * np.linalg.norm(
        p.x[:, :25] - p.x[:, 25:], axis=-1) ** 0.5
    assert (lhs <= rhs + 1e-12).all()
    noise = p.y - p.f
    assert abs(noise.std() - 0.25) < 0.01


def test_manifold_inputs_lie_on_an_embedded_sphere():
    fam = make_family("manifold", 6, intrinsic_dim=1)
    p = sample_prompts(fam, np.random.default_rng(7), 20, 30)
    np.testing.assert_allclose(np.linalg.norm(p.x, axis=-1), 1.0, rtol=1e-12)
    for i in range(20):
        assert np.linalg.matrix_rank(p.x[i], tol=1e-9) == 2  # a circle spans a plane
        q = p.params["frame"][i]
        np.testing.assert_allclose(q.T @ q, np.eye(2), atol=1e-12)  # isometry
        np.testing.assert_allclose(np.linalg.norm(p.params["centres"][i], axis=-1), 1.0)


def test_holder_target():
    x = np.array([[0.5, 0.5], [0.0, 1.0], [0.25, 0.5]])
    np.testing.assert_allclose(holder_target(x, 1.0), [0.0, 1.0, 0.25])
    np.testing.assert_allclose(holder_target(x, 0.5), [0.0, 2 * 0.5**0.5, 0.5])


def test_lacunary_target_shapes_determinism_and_formula():
    x = np.random.default_rng(0).random((3, 4, 2))
    f = lacunary_target(x, 0.5)
    assert f.shape == (3, 4) and lacunary_target(x[0, 0], 0.5).shape == ()
    np.testing.assert_array_equal(f, lacunary_target(x.copy(), 0.5))  # a fixed function
    np.testing.assert_array_equal(rate_target("lacunary", x, 0.5), f)
    np.testing.assert_array_equal(rate_target("cusp", x, 0.5), holder_target(x, 0.5))
    # the series term by term, at one point, up to the normalising constant
    th = lacunary_phases(2)
    assert th.shape == (25, 2) and np.all((th >= 0) & (th < 2 * np.pi))
    p = x[1, 2]
    raw = sum(2.0 ** (-j * 0.5) * np.cos(2 * np.pi * 2**j * p[0] + th[j, 0])
              * np.cos(2 * np.pi * 2**j * p[1] + th[j, 1]) for j in range(25))
    z = np.random.default_rng(1).random((4000, 2))
    c = lacunary_target(z, 0.5) / sum(
        2.0 ** (-j * 0.5) * np.prod(np.cos(2 * np.pi * 2**j * z + th[j]), axis=-1)
        for j in range(25))
    np.testing.assert_allclose(c, c[0])  # one constant scales the whole series
    assert f[1, 2] == pytest.approx(c[0] * raw, rel=1e-9)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_rate_targets_have_the_cusp_variance(d, alpha):
    x = np.random.default_rng(2).random((200_000, d))
    cusp = holder_target(x, alpha)
    assert cusp.var() == pytest.approx(cusp_variance(d, alpha), rel=0.02)
    assert lacunary_target(x, alpha).var() == pytest.approx(cusp_variance(d, alpha), rel=0.03)


def test_lacunary_target_is_not_additive_in_2d():
    """For f(x1, x2) = g(x1) + h(x2) the mixed difference below is 0; the lacunary target's is
    of the order of its own size."""
    rng = np.random.default_rng(3)
    x, h = rng.random((2000, 2)), 0.05
    e1, e2 = np.array([h, 0.0]), np.array([0.0, h])
    mixed = (lacunary_target(x + e1 + e2, 1.0) - lacunary_target(x + e1, 1.0)
             - lacunary_target(x + e2, 1.0) + lacunary_target(x, 1.0))
    cusp = (holder_target(x + e1 + e2, 1.0) - holder_target(x + e1, 1.0)
            - holder_target(x + e2, 1.0) + holder_target(x, 1.0))
    np.testing.assert_allclose(cusp, 0.0, atol=1e-12)
    assert np.abs(mixed).max() > 0.2 * lacunary_target(x, 1.0).std()


def _modulus_slope(alpha, d, log2_h, order):
    """Slope of log sup_x |Δ_h^order f(x)| vs log h (Δ_h: difference along a random unit
    direction per point; the sup over 5000 random points)."""
    rng = np.random.default_rng(4)
    x = rng.random((5000, d))
    u = rng.standard_normal((5000, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    f0 = lacunary_target(x, alpha)
    hs = 2.0 ** -np.asarray(log2_h, float)
    sup = []
    for h in hs:
        fp = lacunary_target(x + h * u, alpha)
        if order == 1:
            sup.append(np.abs(fp - f0).max())
        else:
            sup.append(np.abs(fp + lacunary_target(x - h * u, alpha) - 2 * f0).max())
    return np.polyfit(np.log(hs), np.log(sup), 1)[0]


@pytest.mark.parametrize("d", [1, 2])
def test_lacunary_target_modulus_scales_as_h_to_the_alpha(d):
    # first differences: exactly alpha-Holder for alpha < 1 (the geometric sum of the coarse
    # scales settles for small h, hence the range)
    assert _modulus_slope(0.5, d, range(6, 16), order=1) == pytest.approx(0.5, abs=0.1)
    # second differences (Zygmund modulus): h^alpha for every alpha <= 1, including alpha = 1
    for alpha in (0.5, 1.0):
        assert _modulus_slope(alpha, d, range(3, 12), order=2) == pytest.approx(alpha, abs=0.1)


def test_rate_target_bad_name():
    assert sorted(RATE_TARGETS) == ["cusp", "lacunary"]
    with pytest.raises(ConfigError, match="unknown target 'bumps'; choose one of cusp, lacunary"):
        rate_target("bumps", np.zeros((2, 1)), 0.5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_family("cubic", 3), "unknown function family 'cubic'"),
        (lambda: make_family("linear", 0), "d must be an integer >= 1"),
        (lambda: make_family("holder", 2, alpha=0.0), r"alpha must be in \(0, 1\]"),
        (lambda: make_family("holder", 2, alpha=1.5), r"alpha must be in \(0, 1\]"),
        (lambda: make_family("sparse_linear", 3, sparsity=4), "sparsity must be in"),
        (lambda: make_family("manifold", 2, intrinsic_dim=2), "intrinsic_dim"),
        (lambda: make_family("linear", 3, sigma=1.0), "unknown option"),
        (lambda: make_family("linear", 3, noise_std=-1.0), "noise_std"),
        (lambda: sample_prompts(make_family("linear", 3), np.random.default_rng(0), 2, 0),
         "k .* must be >= 1"),
    ],
)
def test_bad_input_is_a_clear_config_error(call, match):
    with pytest.raises(ConfigError, match=match):
        call()

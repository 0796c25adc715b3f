"""Context-algorithm kernels: numpy = compiled = torch (CPU) = per-game reference loops; backend
helpers."""

import numpy as np
import pytest

from icarena.agents.games import (
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    compiled,
    run_exp3,
    run_viulcb,
    run_vlearning,
)
from icarena.agents.games.cce import mwu_cce
from icarena.agents.games.reference import exp3_loop, viulcb_loop, vlearning_loop
from icarena.agents.games.rollout import step_uniforms
from icarena.agents.games.viulcb import _Planner, plan
from icarena.envs.games import TabularGame, sample_categorical
from icarena.envs.games.backend import NUMPY, row_max, row_min, row_sum, sample_rows

pytest.importorskip("torch")

DTYPES = {"traj/h": np.int64, "traj/s": np.int64, "traj/s_next": np.int64, "act/max": np.int64,
          "act/min": np.int64, "rew/max": np.float64}


@pytest.fixture(params=["compiled", "numpy"])
def lane(request):
    """Run the test body with ``device=None`` on the compiled kernels or on the numpy ones."""
    if request.param == "compiled":
        if not compiled.available():
            pytest.skip("numba is not installed")
        yield request.param
    else:
        with compiled.disabled():
            yield request.param


def _close(rec, ref, atol=1e-9):
    a, b, px, py = ref
    np.testing.assert_array_equal(rec["act/max"], a)
    np.testing.assert_array_equal(rec["act/min"], b)
    np.testing.assert_allclose(rec["pi/max"], px, atol=atol, rtol=0)
    np.testing.assert_allclose(rec["pi/min"], py, atol=atol, rtol=0)


def _same_fields(a, b, atol=1e-9):
    assert set(a) == set(b)
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, k
        if a[k].dtype.kind == "i":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=0, err_msg=k)


@pytest.mark.parametrize("dims", [(5, 5), (3, 7), (9, 4)])
def test_exp3_numpy_torch_loop(dims):
    A, B = dims
    g = TabularGame.random(1, 1, A, B, seed=A, n_games=4)
    rec = run_exp3(g, 80, seed=2, dtype=np.float64)
    tor = run_exp3(g, 80, seed=2, dtype=np.float64, device="cpu")
    _close(rec, exp3_loop(g, 80, seed=2))
    _same_fields(rec, tor)
    for k, dt in DTYPES.items():
        assert rec[k].dtype == dt and rec[k].shape == (4, 80)
    assert rec["pi/max"].shape == (4, 80, 1, 1, A) and rec["pi/min"].shape == (4, 80, 1, 1, B)
    cfg = EXP3Config(eta=0.2, gamma=0.05)  # EXP3-IX with a set step
    ix = run_exp3(g, 30, cfg=cfg, seed=1, dtype=np.float64)
    _close(ix, exp3_loop(g, 30, eta=0.2, gamma=0.05, seed=1))
    _same_fields(ix, run_exp3(g, 30, cfg=cfg, seed=1, dtype=np.float64, device="cpu"))


@pytest.mark.parametrize("dims,init", [((2, 4, 5, 5), "fixed"), ((3, 2, 3, 9), "uniform"),
                                       ((1, 1, 4, 2), "fixed")])
def test_vlearning_numpy_torch_loop(lane, dims, init):
    g = TabularGame.random(*dims, seed=1, n_games=3, initial=init)
    cfg = VLearningConfig(c=0.2)
    rec = run_vlearning(g, 25, cfg=cfg, seed=3, dtype=np.float64)
    tor = run_vlearning(g, 25, cfg=cfg, seed=3, dtype=np.float64, device="cpu")
    _close(rec, vlearning_loop(g, 25, c=0.2, seed=3))
    _same_fields(rec, tor)
    H, S, A, B = dims
    assert rec["cert/max"].shape == (3, 25, H, S, A) and rec["cert/min"].shape == (3, 25, H, S, B)
    f32 = run_vlearning(g, 25, cfg=cfg, seed=3)
    assert f32["pi/max"].dtype == np.float32 and f32["cert/min"].dtype == np.float32
    np.testing.assert_array_equal(f32["pi/max"], rec["pi/max"].astype(np.float32))


@pytest.mark.parametrize("dims,init", [((2, 3, 3, 2), "fixed"), ((2, 2, 2, 9), "uniform")])
def test_viulcb_numpy_torch_loop(lane, dims, init):
    g = TabularGame.random(*dims, seed=2, n_games=3, initial=init)
    cfg = VIULCBConfig(c=0.05, mwu_iters=15)
    rec = run_viulcb(g, 10, cfg=cfg, seed=4, dtype=np.float64)
    tor = run_viulcb(g, 10, cfg=cfg, seed=4, dtype=np.float64, device="cpu")
    _close(rec, viulcb_loop(g, 10, c=0.05, mwu_iters=15, seed=4))
    _same_fields(rec, tor)
    H, S, A, B = dims
    assert rec["pi/joint"].shape == (3, 10 * H, H, S, A * B)
    joint = rec["pi/joint"].reshape(3, 10 * H, H, S, A, B)
    np.testing.assert_allclose(joint.sum(-2), rec["pi/min"], atol=1e-12)


def _stats(rng, G, H, S, A, B):
    counts = rng.integers(0, 3, (G, H, S, A, B))
    nxt = rng.integers(0, S, counts.shape)
    trans = (nxt[..., None] == np.arange(S)) * counts[..., None]
    return counts, trans, rng.random(counts.shape) * counts


def test_viulcb_plan_is_the_textbook_pass():
    rng = np.random.default_rng(0)
    G, H, S, A, B = 3, 2, 3, 3, 4
    counts, trans, sums = _stats(rng, G, H, S, A, B)
    cfg = VIULCBConfig(mwu_iters=25)
    pi = plan(counts, trans, sums, cfg, 3.0)
    v_up, v_low = np.zeros((G, S)), np.zeros((G, S))
    for h in range(H - 1, -1, -1):  # an MWU solve at every (g, h, s)
        n = counts[:, h].astype(float)
        n1 = np.maximum(n, 1.0)
        beta = cfg.c * np.sqrt(S * H**2 * 3.0 / n1)
        p_hat = trans[:, h] / n1[..., None]
        cont_up = np.einsum("gsabt,gt->gsab", p_hat, v_up)
        cont_low = np.einsum("gsabt,gt->gsab", p_hat, v_low)
        up = np.where(n > 0, np.minimum(sums[:, h] / n1 + cont_up + beta, H - h), H - h)
        low = np.where(n > 0, np.maximum(sums[:, h] / n1 + cont_low - beta, 0.0), 0.0)
        pi_h = mwu_cce(up, low, iters=25, scale=H - h)
        np.testing.assert_allclose(pi[:, h], pi_h, atol=1e-12)
        v_up, v_low = (pi_h * up).sum((-2, -1)), (pi_h * low).sum((-2, -1))


def test_viulcb_memoised_plan_equals_solving_every_state():
    """Re-solving only the changed states gives exactly the policies of solving all of them."""
    rng = np.random.default_rng(1)
    shape = (4, 3, 3, 3, 2)
    cfg = VIULCBConfig(mwu_iters=20)
    planner = _Planner(shape, cfg, 2.5, NUMPY)
    counts, trans, sums = _stats(rng, *shape)
    planner.reach[...] = trans.sum((3, 4)) > 0  # the states each (g, h, s) has reached so far
    planner.plan(counts, trans, sums)
    for _ in range(3):  # visit one (h, s, a, b) per game and step, as an episode does
        g, h = np.arange(4), rng.integers(0, 3, 4)
        s, a, b = rng.integers(0, 3, 4), rng.integers(0, 3, 4), rng.integers(0, 2, 4)
        s2 = rng.integers(0, 3, 4)
        counts[g, h, s, a, b] += 1
        trans[g, h, s, a, b, s2] += 1
        sums[g, h, s, a, b] += rng.random(4)
        planner.visit((g * 3 + h) * 3 + s, s2)
        np.testing.assert_array_equal(planner.plan(counts, trans, sums),
                                      plan(counts, trans, sums, cfg, 2.5))


@pytest.mark.parametrize("n", [1, 2, 5, 7, 8, 11])
def test_backend_reductions_are_bit_equal_to_numpy(n):
    rng = np.random.default_rng(n)
    x = np.exp(-30 * rng.random((2000, n)))
    np.testing.assert_array_equal(row_sum(x), x.sum(-1))
    np.testing.assert_array_equal(row_sum(np.ascontiguousarray(x.T), axis=0), x.sum(-1))
    np.testing.assert_array_equal(row_max(x, NUMPY), x.max(-1))
    np.testing.assert_array_equal(row_min(x, NUMPY), x.min(-1))
    x3 = x.reshape(200, 10, n).swapaxes(1, 2).copy()  # (200, n, 10): sum over the middle axis
    np.testing.assert_array_equal(row_sum(x3, axis=-2), x3.sum(-2))
    p = x / x.sum(-1, keepdims=True)
    u = rng.random(2000)
    np.testing.assert_array_equal(sample_rows(p, u, NUMPY), sample_categorical(p, u))
    np.testing.assert_array_equal(sample_rows(np.ascontiguousarray(p.T), u, NUMPY, axis=0),
                                  sample_categorical(p, u))


def test_step_uniforms_reproduce_the_per_step_draws():
    G, K, H = 7, 5, 3
    rng = np.random.default_rng(11)
    expect = []
    for _ in range(K):
        u0 = rng.random(G)
        for _ in range(H):
            expect.append((u0, rng.random((G, 3))))
    got = list(step_uniforms(np.random.default_rng(11), G, K, NUMPY, H=H, block=50))
    assert [t for t, _, _ in got] == list(range(K * H))
    for (u0, u), (_, gu, gu0) in zip(expect, got, strict=True):
        np.testing.assert_array_equal(gu, u)
        np.testing.assert_array_equal(gu0, u0)

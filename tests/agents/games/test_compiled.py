"""The compiled (numba) lane of device=None equals the numpy kernels: same draws, same record."""

import numpy as np
import pytest

from icarena.agents.games import (
    VIULCBConfig,
    VLearningConfig,
    compiled,
    mwu_cce,
    run_viulcb,
    run_vlearning,
)
from icarena.envs.games import TabularGame

pytest.importorskip("numba")


def _numpy(fn, *args, **kw):
    with compiled.disabled():
        return fn(*args, **kw)


def _equal(rec, ref, atol=1e-9):
    """Same fields, shapes, dtypes; integers (actions, states) equal; floats to atol."""
    assert set(rec) == set(ref)
    for k, v in ref.items():
        assert rec[k].shape == v.shape and rec[k].dtype == v.dtype, k
        if v.dtype.kind == "i":
            np.testing.assert_array_equal(rec[k], v, err_msg=k)
        else:
            np.testing.assert_allclose(rec[k], v, rtol=0, atol=atol, err_msg=k)


@pytest.mark.parametrize("dims,init,schedule", [((2, 4, 5, 5), "fixed", "jin2021"),
                                                ((3, 2, 3, 9), "uniform", "bai2020"),
                                                ((2, 3, 10, 2), "uniform", "jin2021")])
def test_vlearning_compiled_equals_numpy(dims, init, schedule):
    g = TabularGame.random(*dims, seed=3, n_games=30, initial=init)
    cfg = VLearningConfig(schedule=schedule, c=0.3)
    rec = run_vlearning(g, 25, cfg=cfg, seed=2, dtype=np.float64)
    _equal(rec, _numpy(run_vlearning, g, 25, cfg=cfg, seed=2, dtype=np.float64))
    f32 = run_vlearning(g, 25, cfg=cfg, seed=2)  # the float32 record is the float64 one cast
    for k in ("pi/max", "pi/min", "cert/max", "cert/min"):
        assert f32[k].dtype == np.float32
        np.testing.assert_array_equal(f32[k], rec[k].astype(np.float32))


@pytest.mark.parametrize("dims", [(2, 3, 4, 4), (2, 2, 3, 9)])
def test_viulcb_compiled_equals_numpy(dims):
    g = TabularGame.random(*dims, seed=4, n_games=12, initial="uniform")
    cfg = VIULCBConfig(c=0.05, mwu_iters=30)
    _equal(run_viulcb(g, 8, cfg=cfg, seed=5, dtype=np.float64),
           _numpy(run_viulcb, g, 8, cfg=cfg, seed=5, dtype=np.float64))


@pytest.mark.parametrize("dims", [(5, 5), (3, 8), (12, 2)])
def test_mwu_compiled_equals_numpy(dims):
    rng = np.random.default_rng(dims[0])
    up = rng.random((3, 70, *dims)) * 2  # a batch of 3 x 70 pairs
    low = up - rng.random(up.shape)
    got = mwu_cce(up, low, iters=50, scale=2.0)
    ref = _numpy(mwu_cce, up, low, iters=50, scale=2.0)
    assert got.shape == ref.shape == up.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum((-2, -1)), 1.0, atol=1e-12)


def test_compiled_sums_are_numpys_sums():
    """The compiled sums reproduce numpy's pairwise summation bit for bit (1..128 terms)."""
    rng = np.random.default_rng(0)
    for n in range(1, compiled.MAX_TERMS + 1):
        x = np.exp(30 * rng.standard_normal((50, n)))
        got = np.array([compiled._sum(row, 0, n) for row in x])
        np.testing.assert_array_equal(got, x.sum(-1))
        tot = np.empty(50)
        compiled._col_sum(np.ascontiguousarray(x.T), tot)
        np.testing.assert_array_equal(tot, x.sum(-1))


def test_lane_selection_falls_back_to_numpy():
    assert compiled.use(np.float32, None, 5) and compiled.use(np.float64, None, 128)
    assert not compiled.use(np.float16, None, 5)  # float16 records: numpy kernels
    assert not compiled.use(np.float32, "cpu", 5)  # a torch device: torch kernels
    assert not compiled.use(np.float32, None, compiled.MAX_TERMS + 1)
    with compiled.disabled():
        assert not compiled.use(np.float32, None, 5)
    assert compiled.use(np.float32, None, 5)
    g = TabularGame.random(2, 2, 3, 3, seed=0, n_games=5)
    f16 = run_vlearning(g, 6, seed=0, dtype=np.float16)
    ref = run_vlearning(g, 6, seed=0, dtype=np.float64)
    assert f16["pi/max"].dtype == np.float16
    np.testing.assert_array_equal(f16["act/max"], ref["act/max"])
    np.testing.assert_allclose(f16["pi/max"], ref["pi/max"], atol=1e-3)

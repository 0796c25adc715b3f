"""The compiled (numba) lane of device=None equals the numpy kernels: same draws, same record."""

import itertools

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


def _same_bytes(rec, ref):
    assert set(rec) == set(ref)
    for k, v in ref.items():
        assert rec[k].dtype == v.dtype and rec[k].shape == v.shape, k
        assert rec[k].tobytes() == v.tobytes(), k


@pytest.mark.parametrize("dims,G", [((2, 4, 5, 5), 37), ((3, 2, 3, 9), 5)])
def test_vlearning_record_is_the_same_bytes_on_any_thread_count(dims, G, monkeypatch):
    """Blocks of games on several threads, and blocks of episodes of any size, give the bytes
    of one thread; every game runs once per block of episodes."""
    g = TabularGame.random(*dims, seed=7, n_games=G, initial="uniform")
    with compiled.threads(1):
        ref = run_vlearning(g, 12, seed=4, dtype=np.float64)
    monkeypatch.setattr(compiled, "BLOCK", 3 * G * (1 + 3 * dims[0]))  # blocks of 3 episodes
    kernel, spans = compiled._vl_block, []

    def spy(raw, k0, g0, g1, *args):
        spans.append((k0, g0, g1))
        return kernel(raw, k0, g0, g1, *args)

    monkeypatch.setattr(compiled, "_vl_block", spy)
    for n in (2, 3, 64):
        spans.clear()
        with compiled.threads(n):
            rec = run_vlearning(g, 12, seed=4, dtype=np.float64)
        _same_bytes(rec, ref)
        assert len(spans) > 4  # several blocks of games per block of episodes
        for k0 in (0, 3, 6, 9):
            parts = sorted((lo, hi) for k, lo, hi in spans if k == k0)
            assert parts[0][0] == 0 and parts[-1][1] == G
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
            assert all(lo < hi for lo, hi in parts)
    _equal(ref, _numpy(run_vlearning, g, 12, seed=4, dtype=np.float64))


def test_mwu_and_viulcb_are_the_same_bytes_on_any_thread_count(monkeypatch):
    monkeypatch.setattr(compiled, "MWU_CHUNK", 16)  # several chunks per solve
    rng = np.random.default_rng(9)
    up = rng.random((75, 4, 6))
    low = up - rng.random(up.shape)
    g = TabularGame.random(2, 3, 4, 3, seed=2, n_games=40, initial="uniform")
    cfg = VIULCBConfig(c=0.05, mwu_iters=20)
    with compiled.threads(1):
        ref_m = mwu_cce(up, low, iters=40)
        ref_v = run_viulcb(g, 5, cfg=cfg, seed=1, dtype=np.float64)
    for n in (2, 5):
        with compiled.threads(n):
            assert mwu_cce(up, low, iters=40).tobytes() == ref_m.tobytes()
            _same_bytes(run_viulcb(g, 5, cfg=cfg, seed=1, dtype=np.float64), ref_v)
    np.testing.assert_allclose(ref_m, _numpy(mwu_cce, up, low, iters=40), rtol=0, atol=1e-12)


def test_thread_count_setting(monkeypatch):
    from icarena.errors import IcarenaError

    monkeypatch.delenv("ICARENA_THREADS", raising=False)
    assert compiled.num_threads() == len(__import__("os").sched_getaffinity(0))
    monkeypatch.setenv("ICARENA_THREADS", "3")
    assert compiled.num_threads() == 3
    with compiled.threads(1):
        assert compiled.num_threads() == 1
        with compiled.threads(None):
            assert compiled.num_threads() == 3
    assert compiled.num_threads() == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(IcarenaError, match="threads must be an int >= 1"):
            compiled.set_threads(bad)
    monkeypatch.setenv("ICARENA_THREADS", "two")
    with pytest.raises(IcarenaError, match="ICARENA_THREADS must be an int >= 1"):
        compiled.num_threads()


def test_spawned_workers_share_the_cores(monkeypatch):
    import os

    from icarena.lifecycle import spawn_pool

    monkeypatch.delenv("ICARENA_THREADS", raising=False)
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    with spawn_pool(2) as pool:
        assert list(pool.map(os.getenv, ["ICARENA_THREADS"] * 2)) == [share, share]
    monkeypatch.setenv("ICARENA_THREADS", "5")  # the user's setting wins
    with spawn_pool(2) as pool:
        assert list(pool.map(os.getenv, ["ICARENA_THREADS"])) == ["5"]

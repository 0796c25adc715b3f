"""Benchmark: the context-algorithm kernels against their references, measured in one process.

Rows (the figures vary with machine load, the ratios much less):

* EXP3 self-play, 10,000 5x5 matrix games x 100 steps, every per-step policy recorded:
  ``run_exp3`` (numpy, one thread) vs a per-game loop -- one PettingZoo ``icarena/matrix_game-v0``
  env per game, actions drawn with ``numpy.random.Generator.choice``, the same EXP3 update in
  numpy, one thread (timed on a subset of the games; steps/s is games x steps / wall time);
  goal >= 500x. Also shown: the implementation before the kernels, and the torch kernel on the CPU.
* V-learning and VI-ULCB on 10,000 H=2, S=4, A=B=5 games: the kernels vs the implementations
  before them (``baseline_games``, same seeds; the records are checked to be equal: integer
  fields exactly, policies to the record's float rounding); goal >= 5x on the machine, i.e. the
  row on ``--threads`` threads (every core) on an otherwise idle machine. VI-ULCB's kernel
  solves one equilibrium for all never-visited states in the first episode and later only the
  states whose matrices changed (about one per game and step), so its ratio depends on K:
  highest for small K, tending to the per-episode ratio as K grows. ``--vi-episodes`` defaults
  to the K = 10 of the former version of this benchmark.

With numba installed, ``device=None`` runs the compiled kernels of
``icarena.agents.games.compiled`` (EXP3 has none: its numpy kernel is the faster one); the
"numpy kernel" rows time the numpy kernels (the reference and fallback) in the same process.
Each kernel is warmed up first (numba compiles it, or loads it from its cache, once per
process; the time is printed). EXP3 and V-learning figures are the best of 3 runs (each side),
VI-ULCB's of one.

The compiled kernels run on ``--threads`` threads (default: every core, as the library) and
also on one, in the same process; their records are checked to be the same bytes. The
one-thread rows (and everything else, which runs on one thread) use ``--clock``: by default
the process's CPU time (``time.process_time``), which on an idle machine equals the wall time
and on a shared one leaves out the waits for a core that other jobs cause. The N-thread rows
are timed with the wall clock on both sides (CPU time would add up both threads' time), so
they are the fair figure only when the machine is otherwise idle (the load average is
printed at the start and end).

    python benchmarks/bench_games_generation.py [--scale 1.0] [--vi-episodes 10] [--clock cpu]
        [--threads N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pettingzoo  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline_games  # noqa: E402

import icarena  # noqa: E402,F401  (registers icarena/matrix_game-v0)
from icarena.agents.games import compiled, run_exp3, run_viulcb, run_vlearning  # noqa: E402
from icarena.envs.games import TabularGame  # noqa: E402

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCK["cpu"]


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best time (``clock``) of ``repeat`` runs of fn, and its output."""
    (best, _), out = timed2(fn, repeat)
    return best, out


def timed2(fn, repeat: int = 1) -> tuple[tuple[float, float], object]:
    """Best ``clock`` time and best wall time of ``repeat`` runs of fn, and its output."""
    best, best_wall, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, w0 = clock(), time.perf_counter()
        out = fn()
        best, best_wall = min(best, clock() - t0), min(best_wall, time.perf_counter() - w0)
    return (best, best_wall), out


def same_record(rec: dict, ref: dict, name: str) -> None:
    """Same fields, shapes and dtypes; integer fields equal; policies equal up to the record's
    float rounding (the compiled kernels equal the former code to ~1e-15 in float64, which can
    move a float32 record by one unit in the last place)."""
    assert set(rec) == set(ref), f"{name}: fields differ"
    for k, v in ref.items():
        assert rec[k].shape == v.shape and rec[k].dtype == v.dtype, f"{name}: {k} differs"
        if v.dtype.kind == "i":
            assert np.array_equal(rec[k], v), f"{name}: {k} differs"
        else:
            tol = 0.0 if v.dtype == np.float64 and k == "rew/max" else 4 * np.finfo(v.dtype).eps
            assert np.allclose(rec[k], v, rtol=0, atol=tol), f"{name}: {k} differs"


def exp3_pettingzoo_loop(R: np.ndarray, K: int, seed: int = 0) -> np.ndarray:
    """EXP3 self-play game by game: one PettingZoo env per game, Generator.choice draws.

    Fixed η = √(2 ln n / (n K)) per player, γ = 0, the update of ``run_exp3``; returns the
    recorded per-step policies (G, K, A) of the max player (the min player's are kept too).
    """
    rng = np.random.default_rng(seed)
    G, A, B = R.shape
    eta_x = np.sqrt(2.0 * np.log(A) / (A * K))
    eta_y = np.sqrt(2.0 * np.log(B) / (B * K))
    pis_x, pis_y = np.zeros((G, K, A)), np.zeros((G, K, B))
    for g in range(G):
        env = pettingzoo.make("parallel", "icarena/matrix_game-v0", R=R[g], episodes=K)
        env.reset(seed=seed + g)
        Lx, Ly = np.zeros(A), np.zeros(B)
        for t in range(K):
            wx = np.exp(-eta_x * (Lx - Lx.min()))
            wy = np.exp(-eta_y * (Ly - Ly.min()))
            x, y = wx / wx.sum(), wy / wy.sum()
            pis_x[g, t], pis_y[g, t] = x, y
            a, b = int(rng.choice(A, p=x)), int(rng.choice(B, p=y))
            _, rewards, _, _, _ = env.step({"max": a, "min": b})
            r = rewards["max"]
            Lx[a] += (1.0 - r) / x[a]
            Ly[b] += r / y[b]
    return pis_x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of games")
    ap.add_argument("--vi-episodes", type=int, default=10, help="VI-ULCB episodes K")
    ap.add_argument("--clock", choices=sorted(CLOCK), default="cpu",
                    help="cpu: the process's CPU time (default); wall: elapsed time")
    ap.add_argument("--threads", type=int, default=compiled.num_threads(),
                    help="threads of the compiled kernels' parallel rows (default: every core)")
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None

    def n(x: int) -> int:
        return max(1, int(round(x * args.scale)))

    rows = []
    lane = "compiled (numba)" if compiled.available() else "numpy (numba not installed)"
    print(f"kernels: {lane}; load average at start {os.getloadavg()[0]:.1f}")
    # warm-up: numba compiles (or loads from its cache) each kernel once per process
    tiny_m = TabularGame.random(1, 1, 5, 5, seed=0, n_games=4)
    tiny_k = TabularGame.random(2, 4, 5, 5, seed=0, n_games=4)
    t_warm, _ = timed(lambda: (run_exp3(tiny_m, 2), run_vlearning(tiny_k, 2),
                               run_viulcb(tiny_k, 2)))
    print(f"warm-up (compile or cache load): {t_warm:.1f} s")
    # ---- EXP3
    G, K = n(10_000), 100
    mg = TabularGame.random(1, 1, 5, 5, seed=0, n_games=G)
    t_new, rec = timed(lambda: run_exp3(mg, K, seed=0), repeat=3)
    g_loop = max(1, min(G, n(30)))
    t_loop, _ = timed(lambda: exp3_pettingzoo_loop(mg.rewards[:g_loop, 0, 0], K))
    t_old, old = timed(lambda: baseline_games.run_exp3(mg, K, seed=0), repeat=3)
    same_record(rec, old, "EXP3")
    steps, loop_rate = G * K, g_loop * K / t_loop
    rows.append((f"EXP3 5x5, G={G}, K={K} vs PettingZoo loop", args.clock, steps / t_new,
                 loop_rate, ">= 500x"))
    rows.append(("  same, vs before", args.clock, steps / t_new, steps / t_old, "info"))
    if torch is not None:
        t_torch, _ = timed(lambda: run_exp3(mg, K, seed=0, device="cpu"))
        rows.append(("  torch kernel (cpu) vs PettingZoo loop", args.clock, steps / t_torch,
                     loop_rate, "info"))

    # ---- V-learning and VI-ULCB on Markov games
    G = n(10_000)
    kg = TabularGame.random(2, 4, 5, 5, seed=0, n_games=G)
    N = args.threads
    for name, K, new, old_fn, rep in (
        ("V-learning", 20, lambda K: run_vlearning(kg, K, seed=0),
         lambda K: baseline_games.run_vlearning(kg, K, seed=0), 3),
        ("VI-ULCB (M=200)", args.vi_episodes, lambda K: run_viulcb(kg, K, seed=0),
         lambda K: baseline_games.run_viulcb(kg, K, seed=0), 1),
    ):
        with compiled.threads(1):
            (t_new, _), rec = timed2(lambda: new(K), repeat=rep)  # noqa: B023
        with compiled.threads(N):
            (_, w_par), rec_par = timed2(lambda: new(K), repeat=rep)  # noqa: B023
        (t_old, w_old), old = timed2(lambda: old_fn(K), repeat=rep)  # noqa: B023
        same_record(rec, old, name)
        assert all(rec[k].tobytes() == rec_par[k].tobytes() for k in rec), \
            f"{name}: the {N}-thread record differs from the 1-thread one"
        steps = G * K * 2
        rows.append((f"{name} H2 S4 5x5, G={G}, K={K} vs before", "", None, None, ""))
        rows.append(("  compiled, 1 thread", args.clock, steps / t_new, steps / t_old,
                     "info (one core)"))
        rows.append((f"  compiled, {N} threads", "wall", steps / w_par, steps / w_old,
                     ">= 5x (every core; idle machine)"))
        with compiled.disabled():
            t_np, _ = timed(lambda: new(K), repeat=rep)  # noqa: B023
        rows.append(("  numpy kernel", args.clock, steps / t_np, steps / t_old, "info"))

    print(f"clock: {args.clock} (rows marked wall: the wall clock on both sides); "
          f"compiled kernels' parallel rows on {N} threads, same bytes as on 1")
    print(f"{'case':<50}{'clock':>6}{'steps/s':>13}{'reference/s':>13}{'ratio':>10}  goal")
    for name, clk, ours, ref, goal in rows:
        if ours is None:
            print(name)
            continue
        print(f"{name:<50}{clk:>6}{ours:>13,.0f}{ref:>13,.0f}{ours / ref:>9.1f}x  {goal}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: the exact Nash gap kernel against its references, measured in one process.

Rows (the figures vary with machine load, the ratios much less):

* matrix games -- the public ``icarena.evaluation.nash_gap`` (validation included) on 20,000
  random 5x5 games (``TabularGame.from_matrix``, policies (n, 1, 1, 5)) vs a plain batched
  einsum duality gap max_a (R y)_a - min_b (x^T R)_b on the same arrays; goal >= 0.9x. OpenSpiel's
  ``nash_conv`` (the game built per call, on a subset) is printed for reference when installed
  (``pip install -e '.[bench]'``), else skipped with a note.
* Markov games -- ``nash_gap`` on 10,000 H=2, S=4, A=B=5 games vs the implementation before the
  kernels (``baseline_games.nash_gap``, same process); goal >= 3x. Also shown: one read pass
  over the transition arrays (a whole-array sum), the floor of any exact method, and the torch
  kernel on the CPU (``device="cpu"``).

Every timing is the best of ``--repeats`` calls; all numpy/torch work runs on one thread.

    python benchmarks/bench_nash_gap.py [--scale 1.0] [--repeats 7]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline_games  # noqa: E402

from icarena.envs.games import TabularGame  # noqa: E402
from icarena.evaluation import nash_gap  # noqa: E402


def best(fn, repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls of fn (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def policies(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.random(shape)
    return x / x.sum(-1, keepdims=True)


def einsum_gap(R: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The plain batched duality gap of matrix games R (n, A, B), x (n, A), y (n, B)."""
    return np.einsum("nab,nb->na", R, y).max(-1) - np.einsum("na,nab->nb", x, R).min(-1)


def openspiel_rate(R: np.ndarray, x: np.ndarray, y: np.ndarray, ours: np.ndarray) -> float | None:
    """Games/s of OpenSpiel's nash_conv (game and policy built per call), or None if absent;
    checks that it agrees with ``ours`` (NashConv = the duality gap)."""
    try:
        import pyspiel
        from open_spiel.python import policy as os_policy
        from open_spiel.python.algorithms import exploitability
    except ImportError:
        return None

    def one(i: int) -> float:
        A, B = R.shape[1:]
        game = pyspiel.create_matrix_game(R[i].tolist(), (1.0 - R[i]).tolist())
        pol = os_policy.TabularPolicy(game)
        state = game.new_initial_state()
        for player, probs in ((0, x[i]), (1, y[i])):
            pol.policy_for_key(state.information_state_string(player))[:] = probs
        return exploitability.nash_conv(game, pol)

    t0 = time.perf_counter()
    vals = np.array([one(i) for i in range(len(R))])
    dt = time.perf_counter() - t0
    assert np.allclose(vals, ours[: len(R)], atol=1e-9), "OpenSpiel nash_conv disagrees"
    return len(R) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of games")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    rng = np.random.default_rng(0)
    rows = []

    # ---- matrix games
    n = max(100, int(20_000 * args.scale))
    R = TabularGame.random(1, 1, 5, 5, seed=1, n_games=n).rewards[:, 0, 0]
    game = TabularGame.from_matrix(R)
    mu, nu = policies(rng, (n, 1, 1, 5)), policies(rng, (n, 1, 1, 5))
    x, y = mu[:, 0, 0], nu[:, 0, 0]
    ours = nash_gap(game, mu, nu)
    assert np.allclose(ours, einsum_gap(R, x, y), atol=1e-12)
    t_ours = best(lambda: nash_gap(game, mu, nu), args.repeats)
    t_ein = best(lambda: einsum_gap(R, x, y), args.repeats)
    rows.append((f"matrix 5x5, n={n}: nash_gap vs einsum gap", n / t_ours, n / t_ein, ">= 0.9x"))
    os_rate = openspiel_rate(R[:200], x, y, ours)
    if os_rate is None:
        print("OpenSpiel: skipped (open_spiel is not installed; pip install -e '.[bench]')")
    else:
        rows.append(("  same, vs OpenSpiel nash_conv (game per call)", n / t_ours, os_rate,
                     "reference"))

    # ---- Markov games
    n = max(100, int(10_000 * args.scale))
    games = TabularGame.random(2, 4, 5, 5, seed=2, n_games=n)
    mu, nu = policies(rng, (n, 2, 4, 5)), policies(rng, (n, 2, 4, 5))
    ours = nash_gap(games, mu, nu)
    assert np.allclose(ours, baseline_games.nash_gap(games, mu, nu), atol=1e-12)
    t_ours = best(lambda: nash_gap(games, mu, nu), args.repeats)
    t_old = best(lambda: baseline_games.nash_gap(games, mu, nu), max(1, args.repeats // 2))
    t_read = best(lambda: games.transitions.sum(), args.repeats)
    rows.append((f"Markov H2 S4 5x5, n={n}: nash_gap vs before", n / t_ours, n / t_old, ">= 3x"))
    rows.append(("  same, vs one read pass over P", n / t_ours, n / t_read, "floor"))
    if torch is not None:
        assert np.allclose(nash_gap(games, mu, nu, device="cpu"), ours, atol=1e-12)
        t_torch = best(lambda: nash_gap(games, mu, nu, device="cpu"), args.repeats)
        rows.append(("  torch kernel (cpu) vs before", n / t_torch, n / t_old, "info"))

    print(f"{'case':<50}{'games/s':>13}{'reference/s':>13}{'ratio':>11}  goal")
    for name, ours_rate, ref_rate, goal in rows:
        print(f"{name:<50}{ours_rate:>13,.0f}{ref_rate:>13,.0f}{ours_rate / ref_rate:>10.2f}x  "
              f"{goal}")


if __name__ == "__main__":
    main()

"""Benchmark: batched exact Nash gap vs a per-game loop of the same function.

Scores random policy pairs on 10,000 random 5x5 matrix games and on 1,000 H=2, S=4, A=B=5
Markov games with one batched ``icarena.evaluation.nash_gap`` call, and compares games/s with
calling ``nash_gap`` game by game (on a subset, then scaled), checking that both agree.

    python benchmarks/bench_nash_gap.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from icarena.envs.games import TabularGame
from icarena.evaluation import nash_gap


def policies(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.random(shape)
    return x / x.sum(-1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of games")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'games':<26}{'n':>7}{'batched games/s':>17}{'loop games/s':>14}{'ratio':>9}")
    for label, dims, n in (("5x5 matrix", (1, 1, 5, 5), 10_000),
                           ("Markov H=2 S=4 A=B=5", (2, 4, 5, 5), 1_000)):
        n = max(10, int(n * args.scale))
        H, S, A, B = dims
        games = TabularGame.random(*dims, seed=1, n_games=n)
        mu, nu = policies(rng, (n, H, S, A)), policies(rng, (n, H, S, B))
        nash_gap(games[:10], mu[:10], nu[:10])  # warm-up
        t0 = time.perf_counter()
        gaps = nash_gap(games, mu, nu)
        tb = time.perf_counter() - t0
        m = min(n, 500)
        singles = [games[i] for i in range(m)]
        t0 = time.perf_counter()
        loop = np.array([nash_gap(singles[i], mu[i], nu[i]) for i in range(m)])
        tl = time.perf_counter() - t0
        assert np.allclose(loop, gaps[:m], atol=1e-12)
        print(f"{label:<26}{n:>7}{n / tb:>17,.0f}{m / tl:>14,.0f}{(n / tb) / (m / tl):>8.1f}x")


if __name__ == "__main__":
    main()

"""Benchmark: batched context-algorithm generation vs an explicit per-game Python loop.

Runs each context algorithm (EXP3 on 5x5 matrix games, V-learning and VI-ULCB on H=2, S=4,
A=B=5 Markov games) batched over G games (``icarena.agents.games``) and as the per-game loop of
the same algorithm (``icarena.agents.games.reference``, identical random draws), and prints
environment steps per second (games x steps / wall time) and the speed-up ratio.

    python benchmarks/bench_games_generation.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import time

from icarena.agents.games import VIULCBConfig, run_exp3, run_viulcb, run_vlearning
from icarena.agents.games.reference import exp3_loop, viulcb_loop, vlearning_loop
from icarena.envs.games import TabularGame


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply all problem sizes")
    args = ap.parse_args()
    sc = args.scale

    def n(x: int) -> int:
        return max(1, int(round(x * sc)))

    cases = []
    mg = TabularGame.random(1, 1, 5, 5, seed=0, n_games=n(200))
    K = 500
    cases.append(("EXP3 5x5", n(200), n(20), K, 1,
                  lambda g, G: run_exp3(g[:G], K, seed=0),
                  lambda g, G: exp3_loop(g[:G], K, seed=0), mg))
    kg = TabularGame.random(2, 4, 5, 5, seed=0, n_games=n(200))
    K2 = 100
    cases.append(("V-learning H2S4", n(200), n(10), K2, 2,
                  lambda g, G: run_vlearning(g[:G], K2, seed=0),
                  lambda g, G: vlearning_loop(g[:G], K2, seed=0), kg))
    K3 = 10
    cases.append(("VI-ULCB H2S4 (M=200)", n(64), n(2), K3, 2,
                  lambda g, G: run_viulcb(g[:G], K3, cfg=VIULCBConfig(), seed=0),
                  lambda g, G: viulcb_loop(g[:G], K3, seed=0), kg))
    print(f"{'algorithm':<22}{'G batch':>8}{'batched steps/s':>17}{'G loop':>8}"
          f"{'loop steps/s':>14}{'ratio':>9}")
    for name, g_b, g_l, k, H, batched, loop, game in cases:
        tb = timed(lambda: batched(game, g_b))  # noqa: B023
        tl = timed(lambda: loop(game, g_l))  # noqa: B023
        sb, sl = g_b * k * H / tb, g_l * k * H / tl
        print(f"{name:<22}{g_b:>8}{sb:>17,.0f}{g_l:>8}{sl:>14,.0f}{sb / sl:>8.1f}x")


if __name__ == "__main__":
    main()

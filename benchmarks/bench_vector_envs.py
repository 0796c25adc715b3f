"""Benchmark: env steps/s of every id as a single env, a SyncVectorEnv and the native vector env.

For each registered id (default arguments) it steps, with random actions and NEXT_STEP
autoresets, (1) one env from ``gymnasium.make`` (reset when an episode ends), (2)
``gymnasium.make_vec(..., vectorization_mode="sync")`` -- Gymnasium's ``SyncVectorEnv`` of N
single envs -- and (3) the native ``make_vec(..., vectorization_mode="vector_entry_point")``,
and prints env steps/s (N per vector step) and the ratios. Thread pools are pinned to one thread
before numpy is imported; each figure is the best of ``--repeats`` runs of at least ``--seconds``
(the least disturbed by other processes) and, for the native
env, past one full episode of the game ids so that their autoreset is in the figure.

    python benchmarks/bench_vector_envs.py [--num-envs 1024] [--seconds 2] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402

import icarena  # noqa: E402, F401  (registers the ids)
from icarena.envs.regression import FAMILY_NAMES  # noqa: E402

IDS = ["icarena/MatrixGame-v0", "icarena/MarkovGame-v0", "icarena/PathFinding-v0",
       "icarena/Blocksworld-v0", "icarena/Regression-v0"]


def episode_steps(env_id: str) -> int:
    """Steps of one env episode when every episode has the same length (game ids), else 1."""
    kw = gym.spec(env_id).kwargs
    return kw["episodes"] * kw["H"] if "episodes" in kw else 1


def single_rate(env_id: str, seconds: float, **kwargs: Any) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(512)]
    steps, t0 = 0, time.perf_counter()
    while True:
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        steps += len(actions)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return steps / elapsed


def vector_rate(venv: Any, seconds: float, min_steps: int) -> float:
    venv.reset(seed=0)
    venv.action_space.seed(0)
    actions = [venv.action_space.sample() for _ in range(16)]
    steps, t0 = 0, time.perf_counter()
    while True:
        venv.step(actions[steps % len(actions)])
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= min_steps:
            return steps * venv.num_envs / elapsed


def best_of(repeats: int, measure: Callable[..., float], *args: Any, **kwargs: Any) -> float:
    """The highest of ``repeats`` measurements (the least disturbed by other processes)."""
    return max(measure(*args, **kwargs) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, default=1024, help="sub-envs N of the vector envs")
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum time per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    ap.add_argument("--ids", nargs="*", default=IDS, help="env ids to measure")
    ap.add_argument("--no-families", dest="families", action="store_false",
                    help="skip the table of Regression-v0 function families")
    args = ap.parse_args()
    n = args.num_envs
    print(f"env steps/s, N = {n}, one thread, best of {args.repeats}\n")
    print(f"| {'id':<24} | {'single':>9} | {'SyncVectorEnv':>13} | {'native':>11} | "
          f"{'native / single':>15} | {'native / sync':>13} |")
    print(f"|{'-' * 26}|{'-' * 10}:|{'-' * 14}:|{'-' * 12}:|{'-' * 16}:|{'-' * 14}:|")
    best = functools.partial(best_of, args.repeats)
    for env_id in args.ids:
        single = best(single_rate, env_id, args.seconds)
        sync_env = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
        sync = best(vector_rate, sync_env, args.seconds, 1)
        native_env = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
        native = best(vector_rate, native_env, args.seconds, episode_steps(env_id) + 1)
        print(f"| {env_id:<24} | {single:>9,.0f} | {sync:>13,.0f} | {native:>11,.0f} | "
              f"{native / single:>14.0f}x | {native / sync:>12.0f}x |", flush=True)
    if not args.families:
        return
    print(f"\nicarena/Regression-v0 by function family (d = 5, k = 11), N = {n}\n")
    print(f"| {'family':<14} | {'single':>9} | {'native':>11} | {'native / single':>15} |")
    print(f"|{'-' * 16}|{'-' * 10}:|{'-' * 12}:|{'-' * 16}:|")
    for family in FAMILY_NAMES:
        kw = {"family": family, "family_kwargs": {"intrinsic_dim": 2} if family == "manifold"
              else {}}
        single = best(single_rate, "icarena/Regression-v0", args.seconds, **kw)
        native_env = gym.make_vec("icarena/Regression-v0", num_envs=n,
                                  vectorization_mode="vector_entry_point", **kw)
        native = best(vector_rate, native_env, args.seconds, 1)
        print(f"| {family:<14} | {single:>9,.0f} | {native:>11,.0f} | {native / single:>14.0f}x |",
              flush=True)


if __name__ == "__main__":
    main()

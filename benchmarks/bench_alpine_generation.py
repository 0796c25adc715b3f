"""ALPINE dataset generation throughput (training lines per second) at n = 100 and n = 500.

Run: ``python benchmarks/bench_alpine_generation.py [--quick]``

Measures the in-memory pipeline of ``icarena generate alpine`` (random DAG, reachability, split,
20 random walks per train pair + every edge, token encoding; no disk write) and prints lines/s.
Ratios: each size against n = 100, and the vectorised walker against a plain-Python reference
walker (one walk at a time, the authors' loop structure) on the same pairs in the same process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from icarena.envs.planning.dag import alpine_split, random_dag, reachability, sample_paths
from icarena.pretraining.data.alpine import build_lines


def pipeline(n: int, seed: int = 0) -> tuple[int, float]:
    """(train lines, seconds) of the full in-memory generation at n nodes, p = 0.1."""
    t0 = time.perf_counter()
    g = random_dag(n, 0.1, seed=seed)
    R = reachability(g)
    train, test = alpine_split(g, seed=[seed, 1], reach=R)
    lines = build_lines(g, train, test, paths_per_pair=20, edge_lines=True, seed=seed, reach=R)
    return len(lines["train/tokens"]), time.perf_counter() - t0


def python_walks(g, pairs: np.ndarray, seed: int) -> int:
    """Reference: one ALPINE Alg. 1 walk at a time with Python lists (returns total nodes)."""
    rng = np.random.default_rng(seed)
    R = reachability(g)
    succ = {i: list(g.successors(i)) for i in g.nodes}
    total = 0
    for s, t in pairs.tolist():
        path, cur = [s], s
        while cur != t:
            cand = [k for k in succ[cur] if k == t or R[k, t]]
            cur = cand[int(rng.integers(len(cand)))]
            path.append(cur)
        total += len(path)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 100 and 200 only")
    args = ap.parse_args()
    sizes = (100, 200) if args.quick else (100, 500)
    print(f"{'n':>5} {'lines':>10} {'seconds':>9} {'lines/s':>11} {'vs n=100':>9}")
    ref = None
    for n in sizes:
        lines, secs = pipeline(n)
        rate = lines / secs
        ref = rate if ref is None else ref
        print(f"{n:>5} {lines:>10,d} {secs:>9.2f} {rate:>11,.0f} {rate / ref:>8.2f}x")
    g = random_dag(100, 0.1, seed=0)
    R = reachability(g)
    train, _ = alpine_split(g, seed=[0, 1], reach=R)
    pairs = np.repeat(train, 20, axis=0)
    t0 = time.perf_counter()
    sample_paths(g, pairs, seed=0, reach=R)
    vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    python_walks(g, pairs, seed=0)
    py = time.perf_counter() - t0
    print(f"walks only, n=100 ({len(pairs):,d} walks): vectorised {len(pairs) / vec:,.0f}/s, "
          f"python reference {len(pairs) / py:,.0f}/s, speed-up {py / vec:.1f}x")


if __name__ == "__main__":
    main()

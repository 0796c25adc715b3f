"""Classical path-finding baselines: BFS shortest paths and random walks.

Both planners produce the same outputs as a sampled language model - token rows
``s t v_1 ... v_m \\n PAD ...`` in the ALPINE format (:mod:`icarena.envs.planning.tokens`) - so
they are scored with exactly the same metric
(:func:`icarena.evaluation.planning.score_completions`). They also act in
``icarena/PathFinding-v0`` through ``act(obs)``.

* :class:`BFSPlanner`: a shortest path (fewest edges) by breadth-first search; among shortest
  paths the next node is the smallest-index out-neighbour one step closer to the target. Always
  valid on reachable pairs (accuracy 1): the upper reference.
* :class:`RandomWalkPlanner`: from the current node step to a uniformly random out-neighbour
  (``reach_aware=False``: the naive baseline, which can walk into nodes that cannot reach the
  target) or to a uniformly random out-neighbour that can still reach the target
  (``reach_aware=True``: ALPINE's path-sampling rule, the training distribution), until the
  target or ``max_steps`` steps.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from icarena.envs.planning.dag import adjacency, distances, num_nodes, reachability
from icarena.envs.planning.dag import successor_table as _successor_table
from icarena.envs.planning.tokens import NEWLINE, NODE_OFFSET, block_size_for
from icarena.errors import check


def _check_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    pairs = np.asarray(pairs)
    check(pairs.ndim == 2 and pairs.shape[1] == 2, f"pairs must be (M, 2), got {pairs.shape}")
    check(pairs.size == 0 or np.issubdtype(pairs.dtype, np.integer),
          f"pairs must hold integer node ids, got {pairs.dtype}")
    pairs = pairs.astype(np.int64)
    if pairs.size:
        check(int(pairs.min()) >= 0 and int(pairs.max()) < n,
              f"pairs name unknown nodes; node ids must lie in 0..{n - 1}")
    return pairs


def _rows(pairs: np.ndarray, paths: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Token rows ``s t path... \\n PAD...`` of width ``width``; paths padded with -1."""
    M = len(pairs)
    rows = np.zeros((M, width), dtype=np.int64)
    rows[:, :2] = pairs + NODE_OFFSET
    L = paths.shape[1]
    rows[:, 2:2 + L] = np.where(paths >= 0, paths + NODE_OFFSET, 0)
    ar = np.arange(M)
    has_room = 2 + lengths < width
    rows[ar[has_room], 2 + lengths[has_room]] = NEWLINE
    return rows


class BFSPlanner:
    """Shortest-path planner on a DiGraph with nodes 0..n-1 (vectorised over pairs).

    ``next_hop[s, t]`` = smallest-index out-neighbour u of s with ``D[u, t] = D[s, t] - 1``
    (-1 where t is unreachable), computed once from the BFS distance matrix D.
    """

    def __init__(self, graph: nx.DiGraph):
        self.n = num_nodes(graph)
        self.A = adjacency(graph)
        self.D = distances(graph)
        self.next_hop = self._next_hop(self.A, self.D)

    @staticmethod
    def _next_hop(A: np.ndarray, D: np.ndarray) -> np.ndarray:
        n = A.shape[0]
        nh = np.full((n, n), -1, dtype=np.int64)
        for s in range(n):
            succ = np.flatnonzero(A[s])
            if not succ.size:
                continue
            closer = D[succ] == (D[s] - 1)[None, :]  # (deg, n)
            closer &= np.isfinite(D[s])[None, :]
            has = closer.any(axis=0)
            nh[s, has] = succ[np.argmax(closer, axis=0)[has]]
        return nh

    def plan(self, source: int, target: int) -> list[int] | None:
        """A shortest path ``[source, ..., target]``, or None if target is unreachable."""
        pairs = _check_pairs(np.array([[source, target]]), self.n)
        paths, lengths = self.plan_batch(pairs)
        return paths[0, : lengths[0]].tolist() if lengths[0] else None

    def plan_batch(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortest paths for (M, 2) pairs: int64 (M, Lmax) padded with -1, lengths (M,)
        (0 for unreachable pairs or s == t)."""
        pairs = _check_pairs(pairs, self.n)
        s, t = pairs[:, 0], pairs[:, 1]
        d = self.D[s, t]
        ok = np.isfinite(d) & (s != t)
        lengths = np.where(ok, np.nan_to_num(d, posinf=-1) + 1, 0).astype(np.int64)
        width = max(int(lengths.max()) if len(lengths) else 0, 1)
        paths = np.full((len(pairs), width), -1, dtype=np.int64)
        cur = s.copy()
        paths[ok, 0] = s[ok]
        for i in range(1, width):
            live = ok & (i < lengths)
            cur = np.where(live, self.next_hop[cur, t], cur)
            paths[live, i] = cur[live]
        return paths, lengths

    def complete(self, pairs: np.ndarray, width: int | None = None) -> np.ndarray:
        """Token rows ``s t path \\n`` (int64 (M, width)) to score like model samples."""
        pairs = _check_pairs(pairs, self.n)
        paths, lengths = self.plan_batch(pairs)
        width = block_size_for(int(lengths.max(initial=0)) + 3) if width is None else width
        return _rows(pairs, paths, lengths, width)

    def act(self, obs: dict[str, Any]) -> int:
        """Next node for a ``PathFinding-v0`` observation (on this planner's graph)."""
        nh = self.next_hop[int(obs["current"]), int(obs["target"])]
        return int(nh) if nh >= 0 else 0


class RandomWalkPlanner:
    """Random-walk planner (vectorised over pairs); see the module docstring.

    Args:
        graph: DiGraph on 0..n-1.
        reach_aware: only step to out-neighbours that can still reach the target.
        max_steps: steps before giving up (None = n - 1, the longest simple path).
        seed: seed of the walk RNG.
    """

    def __init__(self, graph: nx.DiGraph, *, reach_aware: bool = False,
                 max_steps: int | None = None, seed: int | None = None):
        self.n = num_nodes(graph)
        self.A = adjacency(graph)
        self.reach_aware = bool(reach_aware)
        self.ok_to = np.ones((self.n + 1, self.n), dtype=bool)
        self.ok_to[self.n] = False  # sentinel slot
        if self.reach_aware:
            self.ok_to[: self.n] = reachability(graph) | np.eye(self.n, dtype=bool)
        self.max_steps = self.n - 1 if max_steps is None else int(max_steps)
        check(self.max_steps >= 1, f"max_steps must be >= 1, got {max_steps}")
        self.succ = _successor_table(self.A)
        self.rng = np.random.default_rng(seed)

    def plan_batch(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Walks for (M, 2) pairs: int64 (M, max_steps + 1) padded with -1, lengths (M,).

        A walk stops at the target, at a node with no admissible out-neighbour, or after
        ``max_steps`` steps (then it does not end at the target and scores as invalid).
        """
        pairs = _check_pairs(pairs, self.n)
        M = len(pairs)
        s, t = pairs[:, 0], pairs[:, 1]
        paths = np.full((M, self.max_steps + 1), -1, dtype=np.int64)
        paths[:, 0] = s
        lengths = np.ones(M, dtype=np.int64)
        cur = s.copy()
        alive = np.flatnonzero(cur != t)
        for _ in range(self.max_steps):
            if not alive.size:
                break
            cand = self.succ[cur[alive]]
            ok = self.ok_to[cand, t[alive, None]]
            keys = self.rng.random(cand.shape)
            keys[~ok] = -1.0
            j = np.argmax(keys, axis=1)
            moved = ok[np.arange(len(alive)), j]
            alive = alive[moved]
            nxt = cand[moved, j[moved]]
            paths[alive, lengths[alive]] = nxt
            lengths[alive] += 1
            cur[alive] = nxt
            alive = alive[nxt != t[alive]]
        return paths, lengths

    def complete(self, pairs: np.ndarray, width: int | None = None) -> np.ndarray:
        """Token rows ``s t walk \\n`` (int64 (M, width)); a row that is too short for the walk
        is cut and has no newline."""
        pairs = _check_pairs(pairs, self.n)
        paths, lengths = self.plan_batch(pairs)
        width = block_size_for(int(lengths.max(initial=0)) + 3) if width is None else width
        paths = paths[:, : max(width - 2, 0)]
        return _rows(pairs, paths, np.minimum(lengths, paths.shape[1]), width)

    def act(self, obs: dict[str, Any]) -> int:
        """A random admissible next node for a ``PathFinding-v0`` observation."""
        cur, t = int(obs["current"]), int(obs["target"])
        cand = self.succ[cur]
        cand = cand[self.ok_to[cand, t]]
        return int(self.rng.choice(cand)) if cand.size else 0

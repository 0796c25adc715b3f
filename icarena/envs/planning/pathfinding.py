"""``icarena/PathFinding-v0``: walk from a source to a target on a directed graph.

The agent sits on a node and emits the next node (ALPINE's next-token view of planning,
arXiv 2405.09220; reward of the RL follow-up, arXiv 2509.22613):

* moving along an edge ``current -> action`` is legal; reaching the target ends the episode
  (``terminated``) with reward ``+1``;
* emitting a node that is not an out-neighbour of the current node ends the episode
  (``terminated``) with reward ``-invalid_penalty`` (default 1) and ``info["invalid"] = True``;
  the position does not change;
* every other step gives reward 0; the episode is truncated after ``max_steps`` steps
  (default: the number of nodes, a bound on the length of any simple path).

Observation (flattenable ``Dict``; ecosystem.md Sec. 1 - no ``Graph`` space):
``adjacency`` MultiBinary(N*N) (row-major ``A[i, k]``, zero-padded to ``N = max_nodes`` nodes),
``current`` Discrete(N), ``target`` Discrete(N). Actions: Discrete(N); ids >= n are non-edges.
``info`` holds ``source``, ``target``, ``path`` (nodes visited so far) and ``can_reach``
(whether the target is still reachable from the current node).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import networkx as nx
import numpy as np
from gymnasium import spaces

from icarena import limits
from icarena.envs.checks import integer_action, penalty, positive_int, strict_kwargs
from icarena.envs.planning.dag import adjacency, num_nodes, random_dag, reachability
from icarena.errors import ConfigError, check


class PathFindingEnv(gym.Env):
    """Path finding on a fixed graph (a random DAG by default, or any DiGraph on 0..n-1).

    Args:
        graph: a networkx DiGraph with nodes 0..n-1; None = ``random_dag(n_nodes, p, graph_seed)``.
        n_nodes: nodes of the default random DAG (ALPINE: 100..500).
        p: edge probability of the default random DAG (ALPINE: 0.1).
        graph_seed: seed of the default random DAG.
        source, target: a fixed pair; None = each reset draws a uniformly random reachable pair
            (s != t) with the env's ``np_random``. ``reset(options={"source": s, "target": t})``
            overrides per episode.
        max_nodes: padding size N >= n of the observation and action spaces (None = n).
        max_steps: truncation horizon (None = n).
        invalid_penalty: the reward for a non-edge move is ``-invalid_penalty``.
        render_mode: None or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    @strict_kwargs
    def __init__(
        self,
        graph: nx.DiGraph | None = None,
        *,
        n_nodes: int = 100,
        p: float = 0.1,
        graph_seed: int = 0,
        source: int | None = None,
        target: int | None = None,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        invalid_penalty: float = 1.0,
        render_mode: str | None = None,
    ):
        check(render_mode in (None, "ansi"),
              f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.invalid_penalty = penalty(invalid_penalty)
        if graph is None:
            n_nodes = positive_int(n_nodes, "n_nodes")
            limits.require(11 * n_nodes**2, f"a PathFinding graph of {n_nodes} nodes",
                           "n_nodes")
        self.graph = random_dag(n_nodes, p, seed=graph_seed) if graph is None else graph
        self.n = num_nodes(self.graph)
        self.A = adjacency(self.graph)
        self.R = reachability(self.graph)
        self.pairs = np.argwhere(self.R)
        check(len(self.pairs) > 0,
              "the graph has no reachable pair (s, t) with s != t; give it at least one edge")
        self.N = self.n if max_nodes is None else positive_int(max_nodes, "max_nodes")
        check(self.N >= self.n, f"max_nodes={max_nodes} is smaller than the graph ({self.n})")
        # the padded N x N adjacency of the observation space, and one copy per observation
        limits.require(2 * self.N * self.N, f"PathFinding observations of {self.N} x {self.N}",
                       "max_nodes")
        self.max_steps = self.n if max_steps is None else positive_int(max_steps, "max_steps")
        check(self.max_steps >= 1, f"max_steps must be >= 1, got {max_steps}")
        self.render_mode = render_mode
        self.fixed_pair = None
        if source is not None or target is not None:
            check(source is not None and target is not None,
                  "give both source and target, or neither")
            self.fixed_pair = self._check_pair(source, target)
        padded = np.zeros((self.N, self.N), dtype=np.int8)
        padded[: self.n, : self.n] = self.A
        self._adj_obs = padded.reshape(-1)
        self.observation_space = spaces.Dict(
            {
                "adjacency": spaces.MultiBinary(self.N * self.N),
                "current": spaces.Discrete(self.N),
                "target": spaces.Discrete(self.N),
            }
        )
        self.action_space = spaces.Discrete(self.N)
        self.source = self.target = self.current = 0
        self.path: list[int] = []
        self.steps = 0
        self._ended = False

    def _check_pair(self, source: Any, target: Any) -> tuple[int, int]:
        for name, v in (("source", source), ("target", target)):
            check(isinstance(v, int | np.integer) and 0 <= int(v) < self.n,
                  f"{name}={v!r} is not a node of the graph (nodes are 0..{self.n - 1})")
        s, t = int(source), int(target)
        check(bool(self.R[s, t]),
              f"target {t} is not reachable from source {s} (or s == t); pick a reachable pair")
        return s, t

    def _obs(self) -> dict[str, Any]:
        return {
            "adjacency": self._adj_obs.copy(),
            "current": np.int64(self.current),
            "target": np.int64(self.target),
        }

    def _info(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "path": list(self.path),
            "can_reach": bool(self.current == self.target or self.R[self.current, self.target]),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"source", "target"}
        check(not unknown, f"unknown reset options {sorted(unknown)}; use source and target")
        if "source" in options or "target" in options:
            self.source, self.target = self._check_pair(options.get("source"),
                                                        options.get("target"))
        elif self.fixed_pair is not None:
            self.source, self.target = self.fixed_pair
        else:
            s, t = self.pairs[self.np_random.integers(len(self.pairs))]
            self.source, self.target = int(s), int(t)
        self.current = self.source
        self.path = [self.source]
        self.steps = 0
        self._ended = False
        return self._obs(), self._info()

    def step(self, action):
        if not self.path:
            raise ConfigError("call reset() before step()")
        if self._ended:
            raise ConfigError("the episode has ended (terminated or truncated); call reset() "
                              "to start a new one")
        a = integer_action(action, self.N)
        self.steps += 1
        info_invalid = False
        if a < self.n and self.A[self.current, a]:
            self.current = a
            self.path.append(a)
            terminated = a == self.target
            reward = 1.0 if terminated else 0.0
        else:
            info_invalid = True
            terminated = True
            reward = -self.invalid_penalty
        truncated = (not terminated) and self.steps >= self.max_steps
        self._ended = bool(terminated or truncated)
        info = self._info()
        info["invalid"] = info_invalid
        return self._obs(), reward, bool(terminated), bool(truncated), info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        succ = np.flatnonzero(self.A[self.current]).tolist()
        return (
            f"graph: {self.n} nodes, {int(self.A.sum())} edges | source {self.source} -> "
            f"target {self.target}\npath: {' -> '.join(map(str, self.path))}\n"
            f"current {self.current}, out-neighbours {succ}\n"
        )


class PathFindingVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of :class:`PathFindingEnv` on one graph, stepped in numpy.

    Same keyword arguments as :class:`PathFindingEnv`. Sub-env i is the single env reset with
    seed ``seed + i`` (Gymnasium's ``SyncVectorEnv`` convention), draw for draw and across
    autoresets: each sub-env draws its (source, target) pairs from its own generator
    (:class:`icarena.envs.substreams.SubEnvStreams`). Autoreset mode NEXT_STEP: the step after
    a sub-env terminates or truncates resets it (its action is ignored) and returns its first
    observation with reward 0.

    Observations are the batched ``Dict`` of the single env; ``adjacency`` is the same for every
    sub-env and is returned as a read-only broadcast view (num_envs, N*N), not N copies. ``info``
    holds arrays ``source``, ``target``, ``can_reach`` and, for the sub-envs that stepped,
    ``invalid`` (with Gymnasium's ``_key`` masks); the visited path is not tracked.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any):
        from icarena.envs.substreams import SubEnvStreams, vector_setup

        self.env = env = vector_setup(self, PathFindingEnv, num_envs, kwargs)
        self._adj = np.broadcast_to(env._adj_obs, (num_envs, env.N * env.N))
        self._streams = SubEnvStreams(num_envs, "integers", low=0, high=len(env.pairs))
        self._rows = np.arange(num_envs)
        self.source = np.zeros(num_envs, dtype=np.int64)
        self.target = np.zeros(num_envs, dtype=np.int64)
        self.current = np.zeros(num_envs, dtype=np.int64)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._ready = False

    def _reset_rows(self, rows: np.ndarray, pair: tuple[int, int] | None) -> None:
        if pair is None:
            pair = self.env.fixed_pair
        if pair is not None:
            self.source[rows], self.target[rows] = pair
        else:
            s, t = self.env.pairs[self._streams.take(rows, 1)[:, 0]].T
            self.source[rows], self.target[rows] = s, t
        self.current[rows] = self.source[rows]
        self.steps[rows] = 0

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        options = options or {}
        unknown = set(options) - {"source", "target"}
        check(not unknown, f"unknown reset options {sorted(unknown)}; use source and target")
        pair = None
        if "source" in options or "target" in options:
            pair = self.env._check_pair(options.get("source"), options.get("target"))
        self._streams.seed(seed)
        self._reset_rows(self._rows, pair)
        self._autoreset[:] = False
        self._ready = True
        return self._obs(), self._info()

    def step(self, actions: Any):
        if not self._ready:
            raise ConfigError("call reset() before step()")
        a = np.asarray(actions)
        check(a.shape == (self.num_envs,) and np.issubdtype(a.dtype, np.integer),
              f"actions must be {self.num_envs} integer node ids, got {actions!r}")
        a = a.astype(np.int64)
        env, live = self.env, ~self._autoreset
        bad = live & ((a < 0) | (a >= env.N))
        check(not bad.any(), f"actions {a[bad]} are outside Discrete({env.N}); emit node ids")
        self.steps += 1
        valid = (a < env.n) & env.A[self.current, np.minimum(a, env.n - 1)].astype(bool)
        hit = valid & (a == self.target)
        self.current = np.where(valid & live, a, self.current)
        reward = np.where(valid, hit.astype(np.float64), -env.invalid_penalty)
        terminated = ~valid | hit
        truncated = ~terminated & (self.steps >= env.max_steps)
        reset = np.flatnonzero(self._autoreset)
        if len(reset):
            self._reset_rows(reset, None)
            reward[reset], terminated[reset], truncated[reset] = 0.0, False, False
        self._autoreset = terminated | truncated
        return self._obs(), reward, terminated, truncated, self._info(~valid, live)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"adjacency": self._adj, "current": self.current.copy(),
                "target": self.target.copy()}

    def _info(self, invalid: np.ndarray | None = None,
              stepped: np.ndarray | None = None) -> dict[str, np.ndarray]:
        env, every = self.env, np.ones(self.num_envs, dtype=bool)
        can = (self.current == self.target) | env.R[self.current, self.target]
        info = {"source": self.source.copy(), "_source": every, "target": self.target.copy(),
                "_target": every, "can_reach": can, "_can_reach": every}
        if invalid is not None:
            info["invalid"], info["_invalid"] = invalid & stepped, stepped
        return info

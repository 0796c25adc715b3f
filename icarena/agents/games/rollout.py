"""Batched play of many games for K episodes, recording what in-context learners imitate.

Every context algorithm here (and :func:`play`, which drives any policy source such as a
pretrained transformer) returns a **record**: a dict of numpy arrays with the game axis first
(Shi et al. 2024, arXiv 2410.09701, §3; G games, K episodes, T = K·H steps):

=================  ====================  ==================================================
key                shape                 meaning
=================  ====================  ==================================================
``traj/h``         (G, T) int64          in-episode step h ∈ [0, H) of step t
``traj/s``         (G, T) int64          state s_t
``traj/s_next``    (G, T) int64          next state within the episode (s' ~ P_h)
``act/max``        (G, T) int64          max player's action a_t
``act/min``        (G, T) int64          min player's action b_t
``rew/max``        (G, T) float64        r_h(s_t, a_t, b_t); the min player's reward is 1 − r
``pi/max``         (G, T, H, S, A) f32   the max player's policy at **every** (h, s) used to act
                                         at step t (after seeing D_{t−1})
``pi/min``         (G, T, H, S, B) f32   same for the min player
``pi/joint``       (G, T, H, S, A·B) f32 centralized algorithms only: the correlated policy
                                         (flattened as a·B + b); pi/max, pi/min = its marginals
``cert/max|min``   (G, K, H, S, ·) f32   V-learning only: the certified output policy after
                                         k + 1 episodes (exact for H = 1; see vlearning.py)
=================  ====================  ==================================================

Random numbers (shared by every algorithm and by :func:`play`, so that a batched run, a per-game
loop and a replay of recorded policies see identical draws): at the start of every episode
``rng.random(G)`` draws s_1 ~ ρ; at every step ``u = rng.random((G, 3))`` draws the max action
(``u[:, 0]``; the joint action for correlated policies), the min action (``u[:, 1]``) and the next
state (``u[:, 2]``), all by inverse CDF (:func:`icarena.envs.games.sample_categorical`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from icarena.envs.games.game import TabularGame
from icarena.envs.games.vector import initial_states, sample_categorical, step_states
from icarena.errors import ConfigError, check

PolicyOutput = tuple[np.ndarray, np.ndarray] | np.ndarray
HISTORY_KEYS = ("traj/h", "traj/s", "traj/s_next", "act/max", "act/min", "rew/max")
PolicyFn = Callable[[dict[str, np.ndarray]], PolicyOutput]


def check_games(game: TabularGame) -> tuple[int, int, int, int, int]:
    """(G, H, S, A, B) of a game batch with exactly one batch axis, else ConfigError."""
    check(isinstance(game, TabularGame), f"expected a TabularGame, got {type(game).__name__}")
    check(len(game.batch_shape) == 1, "context algorithms need a batch of games with batch shape "
          f"(G,), got {game.batch_shape}; use TabularGame.random(..., n_games=G) or "
          "game.reshape(1)")
    return (game.batch_shape[0], *game.dims)


def check_episodes(episodes: Any) -> int:
    check(isinstance(episodes, int | np.integer) and episodes >= 1,
          f"episodes must be an int >= 1, got {episodes!r}")
    return int(episodes)


class Recorder:
    """Preallocated record arrays (see the module docstring), filled step by step."""

    def __init__(self, G: int, K: int, H: int, S: int, A: int, B: int, *, joint: bool,
                 dtype: Any = np.float32):
        T = K * H
        self.H = H
        self.data: dict[str, np.ndarray] = {
            "traj/h": np.zeros((G, T), np.int64),
            "traj/s": np.zeros((G, T), np.int64),
            "traj/s_next": np.zeros((G, T), np.int64),
            "act/max": np.zeros((G, T), np.int64),
            "act/min": np.zeros((G, T), np.int64),
            "rew/max": np.zeros((G, T)),
            "pi/max": np.zeros((G, T, H, S, A), dtype),
            "pi/min": np.zeros((G, T, H, S, B), dtype),
        }
        if joint:
            self.data["pi/joint"] = np.zeros((G, T, H, S, A * B), dtype)

    def policies(self, t: int, pi_max: np.ndarray, pi_min: np.ndarray,
                 joint: np.ndarray | None = None) -> None:
        self.data["pi/max"][:, t] = pi_max
        self.data["pi/min"][:, t] = pi_min
        if joint is not None:
            self.data["pi/joint"][:, t] = joint.reshape(*joint.shape[:-2], -1)

    def step(self, t: int, s: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray,
             s_next: np.ndarray) -> None:
        d = self.data
        d["traj/h"][:, t] = t % self.H
        d["traj/s"][:, t], d["act/max"][:, t], d["act/min"][:, t] = s, a, b
        d["rew/max"][:, t], d["traj/s_next"][:, t] = r, s_next


def step_uniforms(rng: np.random.Generator, G: int, K: int, xp: Any, *, H: int = 1,
                  block: int = 1 << 20):
    """The uniforms of the protocol above for K episodes of H steps in G games.

    Yields ``(t, u, u0)`` per step t = k·H + h: ``u`` (G, 3) is the step's ``rng.random((G,
    3))`` (max action, min action, next state) and ``u0`` (G,) the episode's ``rng.random(G)``
    initial-state draw (the same array at every h of an episode), both on the backend ``xp``.
    Many episodes are drawn in one call of about ``block`` numbers: the generator's stream is
    sequential, so this consumes exactly the numbers of the per-step calls, in the same order.
    """
    per_episode = G * (1 + 3 * H)
    n_ep = max(1, min(K, block // per_episode))
    for k0 in range(0, K, n_ep):
        ne = min(n_ep, K - k0)
        raw = xp.asarray(rng.random(ne * per_episode).reshape(ne, per_episode))
        for j in range(ne):
            u0 = raw[j, :G]
            steps = raw[j, G:].reshape(H, G, 3)
            for h in range(H):
                yield (k0 + j) * H + h, steps[h], u0


class Trace:
    """A (G, T) or (G, T, n) record column filled one step at a time from (G,) or action-major
    (n, G) rows: kept time-major (contiguous writes; on the device for torch) and turned into
    the record's game-major layout once, at the end."""

    def __init__(self, G: int, T: int, n: int | None, xp: Any, dtype: Any):
        self.xp, self.dtype = xp, dtype
        shape = (T, G) if n is None else (T, n, G)
        if xp.is_torch:
            self.buf = xp.zeros(shape, "int64" if np.dtype(dtype).kind == "i" else "float64")
        else:
            self.buf = np.zeros(shape, dtype)

    def put(self, t: int, x: Any) -> None:
        self.buf[t] = x

    def result(self) -> np.ndarray:
        return game_major(self.buf, self.xp, self.dtype)


class Snapshots:
    """A (G, T, *shape) record column of game-major snapshots (G, *shape), one per step:
    numpy writes each into the record (cast to ``dtype``); torch keeps a time-major buffer on
    the device and copies it to the host once, at the end."""

    def __init__(self, G: int, T: int, shape: tuple[int, ...], xp: Any, dtype: Any):
        self.xp, self.dtype = xp, dtype
        if xp.is_torch:
            self.buf = xp.zeros((T, G, *shape))
        else:
            self.out = np.zeros((G, T, *shape), dtype)

    def put(self, t: int, x: Any) -> None:
        if self.xp.is_torch:
            self.buf[t] = x
        else:
            self.out[:, t] = x

    def put_divided(self, t: int, x: Any, d: float) -> None:
        """Record x / d (computed in float64, then cast, as ``put(t, x / d)``; numpy divides
        straight into the record)."""
        if self.xp.is_torch:
            self.buf[t] = x / d
        else:
            np.divide(x, d, out=self.out[:, t], casting="same_kind")

    def result(self) -> np.ndarray:
        if not self.xp.is_torch:
            return self.out
        return np.ascontiguousarray(self.xp.to_numpy(self.buf).swapaxes(0, 1).astype(self.dtype))


def game_major(x: Any, xp: Any, dtype: Any) -> np.ndarray:
    """A time-major kernel buffer (T, G) or (T, n, G) as the record's (G, T) / (G, T, n)."""
    a = xp.to_numpy(x)
    axes = (1, 0) if a.ndim == 2 else (2, 0, 1)
    return a.transpose(axes).astype(dtype, order="C")


def _history(rec: Recorder | None, t: int, G: int) -> dict[str, np.ndarray]:
    """The record's first t steps (HISTORY_KEYS and the pi/* policies used); before step 0,
    when no record exists yet, empty HISTORY_KEYS columns."""
    if rec is None:
        return {key: np.zeros((G, 0), np.float64 if key == "rew/max" else np.int64)
                for key in HISTORY_KEYS}
    return {key: v[:, :t] for key, v in rec.data.items()}


def episode_policies(record: dict[str, np.ndarray], H: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode Markov policies (G, K, H, S, A), (G, K, H, S, B): each episode's first step."""
    return record["pi/max"][:, ::H], record["pi/min"][:, ::H]


def _as_pair(out: PolicyOutput, G: int, H: int, S: int, A: int, B: int):
    """Validate a policy source's output -> (pi_max, pi_min, joint or None)."""
    if isinstance(out, tuple | list):
        check(len(out) == 2, "policy_fn must return (pi_max, pi_min) or a joint policy array")
        pmax, pmin = (np.asarray(x, dtype=np.float64) for x in out)
        check(pmax.shape == (G, H, S, A) and pmin.shape == (G, H, S, B),
              f"policy_fn returned shapes {pmax.shape}, {pmin.shape}; expected "
              f"{(G, H, S, A)} and {(G, H, S, B)}")
        joint = None
    else:
        joint = np.asarray(out, dtype=np.float64)
        if joint.shape == (G, H, S, A * B):
            joint = joint.reshape(G, H, S, A, B)
        check(joint.shape == (G, H, S, A, B), f"policy_fn returned a joint policy of shape "
              f"{joint.shape}; expected {(G, H, S, A, B)} or {(G, H, S, A * B)}")
        pmax, pmin = joint.sum(-1), joint.sum(-2)
    for name, p in (("pi_max", pmax), ("pi_min", pmin)):
        if not (np.all(np.isfinite(p)) and np.all(p >= -1e-6)
                and np.allclose(p.sum(-1), 1.0, atol=1e-4)):
            raise ConfigError(f"policy_fn returned an invalid {name}: every (g, h, s) row must be "
                              "a probability distribution")
    return pmax, pmin, joint


def play(
    game: TabularGame,
    policy_fn: PolicyFn,
    episodes: int,
    *,
    seed: int | np.random.SeedSequence | None = 0,
    query: str = "step",
) -> dict[str, np.ndarray]:
    """Play G games for K episodes with the policies a policy source proposes; return the record.

    ``policy_fn(history)`` receives the trajectory so far -- a dict with ``traj/h``, ``traj/s``,
    ``traj/s_next``, ``act/max``, ``act/min``, ``rew/max``, each (G, t), and the policies it
    proposed before, ``pi/max`` (G, t, H, S, A), ``pi/min`` (G, t, H, S, B) (and ``pi/joint``
    for a joint source) -- the full joint stream; a decentralized source must read only its own
    player's columns -- and returns the policy to act with next, at every (h, s) of every
    game, as either

    * ``(pi_max (G, H, S, A), pi_min (G, H, S, B))`` (independent players), or
    * a joint policy (G, H, S, A, B) or (G, H, S, A·B) (centralized / correlated play).

    Args:
        game: G games (batch shape (G,)).
        policy_fn: the policy source (e.g. a transformer read-out).
        episodes: K.
        seed: seed of the random draws (same protocol as the context algorithms).
        query: ``"step"`` (default) calls policy_fn before every step t with D_{t−1};
            ``"episode"`` calls it once per episode (the policy is then fixed within it).
    Returns:
        The record (module docstring); ``pi/joint`` is present iff policy_fn returns joint
        policies.
        Score it with :func:`icarena.evaluation.nash.record_gap_curves`.
    """
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    check(query in ("step", "episode"), f"query must be 'step' or 'episode', got {query!r}")
    rng = np.random.default_rng(seed)
    rec: Recorder | None = None
    g = np.arange(G)
    cur = None
    for k in range(K):
        s = initial_states(game, rng.random(G))
        for h in range(H):
            t = k * H + h
            if query == "step" or h == 0:
                hist = _history(rec, t, G)
                cur = _as_pair(policy_fn(hist), G, H, S, A, B)
                if rec is None:
                    rec = Recorder(G, K, H, S, A, B, joint=cur[2] is not None)
                check((cur[2] is not None) == ("pi/joint" in rec.data),
                      "policy_fn must return the same kind (pair or joint) at every call")
            pmax, pmin, joint = cur
            rec.policies(t, pmax, pmin, joint)
            u = rng.random((G, 3))
            if joint is not None:
                ab = sample_categorical(joint[g, h, s].reshape(G, A * B), u[:, 0])
                a, b = ab // B, ab % B
            else:
                a = sample_categorical(pmax[g, h, s], u[:, 0])
                b = sample_categorical(pmin[g, h, s], u[:, 1])
            r, s_next = step_states(game, h, s, a, b, u[:, 2])
            rec.step(t, s, a, b, r, s_next)
            s = s_next
    return rec.data

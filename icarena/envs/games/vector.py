"""Batched numpy stepping of many tabular games at once, and its Gymnasium vector env.

Three layers, each usable alone:

* pure functions on arrays -- :func:`sample_categorical` (inverse-CDF draw from given uniforms),
  :func:`initial_states` and :func:`step_states`, which the context algorithms
  (``icarena.agents.games``) and the data generators call with their own uniforms, so that a
  batched run and a per-game loop consume identical random numbers;
* :class:`GameBatch` -- the stateful stepper: G games advanced in lock-step for K episodes of
  horizon H (T = K·H steps per env episode); it also builds the observations of both observation
  modes (:func:`encode_obs`) used by every env in this package;
* :class:`GameVectorEnv` -- ``gymnasium.vector.VectorEnv`` over a ``GameBatch`` (one player against
  a fixed opponent policy in every game); it is the ``vector_entry_point`` of
  ``icarena/MatrixGame-v0`` and ``icarena/MarkovGame-v0`` (``gymnasium.make_vec``).

Observation layout (float32 vectors in [0, 1]); "previous" means the previous step of the
stream of T steps (it crosses episode boundaries; at t = 0 it is "none" with reward 0):

* ``"decentralized"`` (a player sees the state and only its own action and reward):
  ``[onehot(h; H), onehot(s; S), onehot(prev own action; n + 1, index n = none), prev own reward]``
  of size H + S + n + 2 (n = A for the max player, B for the min player; the min player's reward
  is 1 − r);
* ``"centralized"`` (both actions and both rewards):
  ``[onehot(h; H), onehot(s; S), onehot(prev a; A + 1), onehot(prev b; B + 1), prev r, prev 1 − r]``
  of size H + S + A + B + 4.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from icarena.envs.games.game import TabularGame
from icarena.errors import ConfigError, check

OBSERVATION_MODES = ("decentralized", "centralized")
PLAYERS = ("max", "min")


# ------------------------------------------------------------------------ pure functions
def sample_categorical(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: index i with probability probs[..., i], given uniforms u in [0, 1).

    Args:
        probs: (..., n) non-negative, rows summing to 1 (up to rounding).
        u: (...) uniforms, one per row.
    Returns:
        (...) int64 indices; rounding is absorbed by clamping to n − 1.
    """
    cdf = np.cumsum(probs, axis=-1)
    idx = (cdf <= u[..., None] * cdf[..., -1:]).sum(-1)
    return np.minimum(idx, probs.shape[-1] - 1)


def initial_states(game: TabularGame, u: np.ndarray) -> np.ndarray:
    """s_1 ~ ρ for a batch of games (batch shape (G,)) given uniforms u (G,)."""
    return sample_categorical(game.initial, u)


def step_states(
    game: TabularGame,
    h: int,
    s: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One simultaneous move in G games (batch shape (G,)) at step h (0-based).

    Returns ``(r, s_next)``: the max player's rewards r_h(s, a, b) (G,) and s' ~ P_h(·|s, a, b)
    drawn with the uniforms u (G,).
    """
    g = np.arange(game.batch_shape[0])
    r = game.rewards[g, h, s, a, b]
    s_next = sample_categorical(game.transitions[g, h, s, a, b], u)
    return r, s_next


def obs_dim(mode: str, H: int, S: int, A: int, B: int, player: str = "max") -> int:
    """Length of the observation vector of ``player`` in observation ``mode``."""
    check(mode in OBSERVATION_MODES, f"observation_mode must be one of {OBSERVATION_MODES}, "
          f"got {mode!r}")
    check(player in PLAYERS, f"player must be one of {PLAYERS}, got {player!r}")
    if mode == "centralized":
        return H + S + A + B + 4
    return H + S + (A if player == "max" else B) + 2


def encode_obs(
    mode: str,
    player: str,
    dims: tuple[int, int, int, int],
    h: int,
    s: np.ndarray,
    prev_a: np.ndarray,
    prev_b: np.ndarray,
    prev_r: np.ndarray,
) -> np.ndarray:
    """Observation vectors (G, obs_dim) float32; prev_a / prev_b = A / B mean "none"."""
    H, S, A, B = dims
    G = s.shape[0]
    out = np.zeros((G, obs_dim(mode, H, S, A, B, player)), dtype=np.float32)
    rows = np.arange(G)
    out[:, h] = 1.0
    out[rows, H + s] = 1.0
    o = H + S
    none = prev_a == A  # no previous step yet
    if mode == "centralized":
        out[rows, o + prev_a] = 1.0
        out[rows, o + A + 1 + prev_b] = 1.0
        out[:, -2] = np.where(none, 0.0, prev_r)
        out[:, -1] = np.where(none, 0.0, 1.0 - prev_r)
    elif player == "max":
        out[rows, o + prev_a] = 1.0
        out[:, -1] = np.where(none, 0.0, prev_r)
    else:
        out[rows, o + prev_b] = 1.0
        out[:, -1] = np.where(none, 0.0, 1.0 - prev_r)
    return out


def check_action(x: Any, n: int, who: str) -> int:
    """An action of ``who`` as an int in [0, n), or a ConfigError naming the fix."""
    try:
        arr = np.asarray(x)
        ok = arr.shape in ((), (1,)) and np.issubdtype(arr.dtype, np.integer)
        v = int(arr.reshape(())) if ok else None
    except (TypeError, ValueError):
        v = None
    if v is None or not 0 <= v < n:
        raise ConfigError(f"action of {who} must be an int in [0, {n}), got {x!r}")
    return v


def check_policy(policy: Any, H: int, S: int, n: int, name: str) -> np.ndarray:
    """A Markov policy array (H, S, n) of distributions, or a ConfigError."""
    try:
        pol = np.array(policy, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a numeric array of shape (H, S, n) ({e})") from e
    if pol.shape == (n,):
        pol = np.broadcast_to(pol, (H, S, n)).copy()
    check(pol.shape == (H, S, n), f"{name} must have shape (H, S, n) = {(H, S, n)} (or (n,)), "
          f"got {pol.shape}")
    check(bool(np.all(np.isfinite(pol)) and np.all(pol >= 0)),
          f"{name} must be finite and non-negative")
    check(bool(np.allclose(pol.sum(-1), 1.0, atol=1e-6)),
          f"{name} must sum to 1 over actions at every (h, s)")
    return pol


# ------------------------------------------------------------------------ the stepper
class GameBatch:
    """G games (a TabularGame with batch shape (G,)) played in lock-step for K episodes.

    State after :meth:`reset`: step counter t ∈ [0, K·H], episode k = t // H, in-episode step
    h = t % H, current states ``s`` (G,), and the previous step's actions/reward (``prev_a = A`` /
    ``prev_b = B`` mean "none yet"). :meth:`step` takes both players' actions (G,) and returns the
    max player's rewards (G,); after the last step of an episode the next s is drawn from ρ.
    """

    def __init__(self, game: TabularGame, episodes: int):
        check(isinstance(game, TabularGame) and len(game.batch_shape) == 1,
              "GameBatch needs a TabularGame with one batch axis (G,); use TabularGame.random("
              "..., n_games=G) or stack([...])")
        check(isinstance(episodes, int | np.integer) and episodes >= 1,
              f"episodes must be an int >= 1, got {episodes!r}")
        self.game = game
        self.episodes = int(episodes)
        self.G = game.batch_shape[0]
        self.t = -1  # not reset

    @property
    def T(self) -> int:
        return self.episodes * self.game.H

    @property
    def h(self) -> int:
        return self.t % self.game.H

    @property
    def k(self) -> int:
        return self.t // self.game.H

    @property
    def done(self) -> bool:
        return self.t >= self.T

    def reset(self, rng: np.random.Generator) -> None:
        """Start a new stream of K episodes: s_1 ~ ρ (uses G uniforms of ``rng``)."""
        self.reset_from(rng.random(self.G))

    def reset_from(self, u: np.ndarray) -> None:
        """:meth:`reset` with the uniforms (G,) given."""
        self.t = 0
        self.s = initial_states(self.game, np.asarray(u).reshape(self.G))
        self.prev_a = np.full(self.G, self.game.A, dtype=np.int64)
        self.prev_b = np.full(self.G, self.game.B, dtype=np.int64)
        self.prev_r = np.zeros(self.G)

    def step(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Both players act in every game; returns the max player's rewards (G,)."""
        return self.step_from(a, b, None, rng)

    def step_from(self, a: np.ndarray, b: np.ndarray, u: np.ndarray | None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
        """:meth:`step` with the uniforms u (G, 2) given (or drawn from ``rng`` when None)."""
        if self.t < 0:
            raise ConfigError("call reset() before step()")
        if self.done:
            raise ConfigError(f"all {self.episodes} episodes are finished; call reset() first")
        a = np.asarray(a, dtype=np.int64).reshape(self.G)
        b = np.asarray(b, dtype=np.int64).reshape(self.G)
        for name, x, n in (("max", a, self.game.A), ("min", b, self.game.B)):
            if np.any((x < 0) | (x >= n)):
                raise ConfigError(f"actions of player {name} must lie in [0, {n}), got {x}")
        u = rng.random((self.G, 2)) if u is None else np.asarray(u).reshape(self.G, 2)
        r, s_next = step_states(self.game, self.h, self.s, a, b, u[:, 0])
        self.t += 1
        if self.h == 0 and not self.done:  # an episode just ended: restart from ρ
            s_next = initial_states(self.game, u[:, 1])
        self.s, self.prev_a, self.prev_b, self.prev_r = s_next, a, b, r
        return r

    def observe(self, mode: str, player: str) -> np.ndarray:
        """(G, obs_dim) observation of ``player`` in ``mode`` (see the module docstring)."""
        h = min(self.h, self.game.H - 1) if not self.done else 0
        return encode_obs(mode, player, self.game.dims, h, self.s, self.prev_a, self.prev_b,
                          self.prev_r)


def make_games(
    game: TabularGame | None,
    R: Any,
    dims: tuple[int, int, int, int],
    n: int,
    rng: np.random.Generator,
    transition: str = "dirichlet",
    initial: str = "fixed",
) -> TabularGame:
    """The game batch (n,) an env plays: the given game/matrix (broadcast) or n fresh draws."""
    if R is not None:
        check(game is None, "pass either game or R, not both")
        game = TabularGame.from_matrix(R)
    if game is None:
        seed = int(rng.integers(0, 2**63 - 1))
        return TabularGame.random(*dims, seed=seed, n_games=n, transition=transition,
                                  initial=initial)
    check(isinstance(game, TabularGame), f"game must be a TabularGame, got {type(game).__name__}")
    if game.batch_shape == ():
        return TabularGame(
            np.broadcast_to(game.rewards, (n, *game.rewards.shape)),
            np.broadcast_to(game.transitions, (n, *game.transitions.shape)),
            np.broadcast_to(game.initial, (n, *game.initial.shape)),
        )
    check(game.batch_shape == (n,), f"game batch shape {game.batch_shape} does not match "
          f"num_envs = {n}; pass one game or a batch of exactly num_envs games")
    return game


class GameVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` games played by one player against a fixed opponent, batched in numpy.

    Sub-env i is :class:`icarena.envs.games.single.GameEnv` (same arguments and semantics) reset
    with seed ``seed + i``, draw for draw, as in Gymnasium's ``SyncVectorEnv``: each sub-env has
    its own generator (:class:`icarena.envs.substreams.SubEnvStreams`), so unless ``game``/``R``
    is given every reset draws sub-env i's game from its own stream. Every env episode lasts
    T = K·H steps, so all sub-envs end at the same step; autoreset mode is NEXT_STEP (the step
    after the last one resets every sub-env and returns the first observation with reward 0).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any):
        from icarena.envs.games.single import EnvSettings
        from icarena.envs.substreams import SubEnvStreams

        check(isinstance(num_envs, int) and num_envs >= 1, f"num_envs must be an int >= 1, "
              f"got {num_envs!r}")
        self.num_envs = num_envs
        self.cfg = EnvSettings.from_kwargs(kwargs)
        self.single_observation_space = self.cfg.observation_space()
        self.single_action_space = self.cfg.action_space()
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space,
                                                              num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        self._batch: GameBatch | None = None
        self._needs_reset = False
        # per step each sub-env draws 3 uniforms: the opponent's action, then GameBatch.step's
        self._streams = SubEnvStreams(num_envs, "random", block=3 * 256)
        self._rows = np.arange(num_envs)

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None, options=options)
        check("reset_mask" not in (options or {}), "reset_mask is not supported: all sub-envs "
              "play in lock-step and reset together")
        st = self._streams
        st.seed(seed)
        st.sync(self._rows)
        game = make_batch_games(self.cfg.game, self.cfg.dims, st.gens, self.cfg.transition,
                                self.cfg.initial)
        self._batch = GameBatch(game, self.cfg.episodes)
        self._batch.reset_from(st.take(self._rows, 1)[:, 0])
        self._needs_reset = False
        return self._obs(), {}

    def step(self, actions: np.ndarray):
        if self._batch is None:
            raise ConfigError("call reset() before step()")
        if self._needs_reset:
            obs, info = self.reset()
            z = np.zeros(self.num_envs, dtype=bool)
            return obs, np.zeros(self.num_envs), z, z.copy(), info
        own = np.asarray(actions).reshape(self.num_envs).astype(np.int64)
        u = self._streams.take(self._rows, 3)
        batch = self._batch
        opp = sample_categorical(self.cfg.opponent_policy[batch.h, batch.s], u[:, 0])
        a, b = (own, opp) if self.cfg.player == "max" else (opp, own)
        r = batch.step_from(a, b, u[:, 1:])
        reward = r if self.cfg.player == "max" else 1.0 - r
        done = batch.done
        self._needs_reset = done
        term = np.full(self.num_envs, done)
        return self._obs(), reward.astype(np.float64), term, np.zeros(self.num_envs, bool), {}

    def _obs(self) -> np.ndarray:
        return self._batch.observe(self.cfg.observation_mode, self.cfg.player)


def make_batch_games(
    game: TabularGame | None,
    dims: tuple[int, int, int, int],
    gens: list[np.random.Generator],
    transition: str = "dirichlet",
    initial: str = "fixed",
) -> TabularGame:
    """A batch of len(gens) games: ``game`` broadcast, or game i drawn as :func:`make_games`
    draws it from generator i (what a single env with that generator would play)."""
    if game is not None:
        return make_games(game, None, dims, len(gens), gens[0], transition, initial)
    drawn = [make_games(None, None, dims, 1, g, transition, initial) for g in gens]
    return TabularGame(*(np.concatenate([getattr(d, name) for d in drawn])
                         for name in ("rewards", "transitions", "initial")))

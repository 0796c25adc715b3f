"""Gymnasium single-agent views of a zero-sum game: one player against a fixed opponent policy.

``gymnasium.make("icarena/MatrixGame-v0")`` (defaults H = S = 1, A = B = 5) and
``gymnasium.make("icarena/MarkovGame-v0")`` (defaults H = 2, S = 4, A = B = 5) create
:class:`GameEnv`; ``gymnasium.make_vec`` of the same ids creates the batched
:class:`icarena.envs.games.vector.GameVectorEnv`.

Keyword arguments (all envs of this package share them, see :class:`EnvSettings`):

* ``game`` (a single :class:`TabularGame`) or ``R`` (an (A, B) payoff matrix in [0, 1]): play this
  fixed game. When neither is given, every ``reset`` draws a fresh game from the ICGP prior
  (``TabularGame.random`` with ``transition``/``initial``), seeded by the reset seed -- the
  in-context setting where each env episode is a new game.
* ``H, S, A, B``: sizes of drawn games (ignored when ``game``/``R`` fixes them).
* ``episodes`` (K): game episodes of horizon H per env episode (T = K·H steps, then terminated).
* ``player``: ``"max"`` (default; reward r) or ``"min"`` (reward 1 − r).
* ``opponent``: ``"uniform"`` (default) or a Markov policy array (H, S, n_opponent) (or (n,)).
* ``observation_mode``: ``"decentralized"`` (default; own action/reward only) or ``"centralized"``
  (both actions and rewards); layouts in :mod:`icarena.envs.games.vector`.
* ``render_mode``: None or ``"ansi"``.

Out-of-range actions, unknown keyword arguments and stepping a finished env raise
:class:`icarena.errors.ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from icarena.envs.games.game import INITIALS, TRANSITIONS, TabularGame
from icarena.envs.games.vector import (
    OBSERVATION_MODES,
    PLAYERS,
    GameBatch,
    check_action,
    check_policy,
    make_games,
    obs_dim,
    sample_categorical,
)
from icarena.errors import ConfigError, check


@dataclass
class EnvSettings:
    """Validated keyword arguments shared by the single-agent and vector game envs."""

    H: int = 1
    S: int = 1
    A: int = 5
    B: int = 5
    episodes: int = 100
    player: str = "max"
    opponent: Any = "uniform"
    observation_mode: str = "decentralized"
    transition: str = "dirichlet"
    initial: str = "fixed"
    game: TabularGame | None = None
    R: Any = None
    render_mode: str | None = None
    opponent_policy: np.ndarray = field(init=False, repr=False)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> EnvSettings:
        known = {f for f in cls.__dataclass_fields__ if f != "opponent_policy"}
        unknown = sorted(set(kwargs) - known)
        check(not unknown, f"unknown game env argument(s) {unknown}; valid: {sorted(known)}")
        return cls(**kwargs)

    def __post_init__(self) -> None:
        if self.R is not None:
            check(self.game is None, "pass either game or R, not both")
            self.game = TabularGame.from_matrix(self.R)
            self.R = None
        if self.game is not None:
            check(isinstance(self.game, TabularGame) and self.game.batch_shape == (),
                  "game must be a single (unbatched) TabularGame; for a batch use make_vec")
            self.H, self.S, self.A, self.B = self.game.dims
        for name in ("H", "S", "A", "B", "episodes"):
            v = getattr(self, name)
            check(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1,
                  f"{name} must be an int >= 1, "
                  f"got {v!r}")
        check(self.player in PLAYERS, f"player must be one of {PLAYERS}, got {self.player!r}")
        check(self.observation_mode in OBSERVATION_MODES,
              f"observation_mode must be one of {OBSERVATION_MODES}, got {self.observation_mode!r}")
        check(self.transition in TRANSITIONS, f"transition must be one of {TRANSITIONS}")
        check(self.initial in INITIALS, f"initial must be one of {INITIALS}")
        check(self.render_mode in (None, "ansi"),
              f"render_mode must be None or 'ansi', got {self.render_mode!r}")
        n_opp = self.B if self.player == "max" else self.A
        if isinstance(self.opponent, str):
            check(self.opponent == "uniform",
                  f"opponent must be 'uniform' or a policy array (H, S, {n_opp}), "
                  f"got {self.opponent!r}")
            self.opponent_policy = np.full((self.H, self.S, n_opp), 1.0 / n_opp)
        else:
            self.opponent_policy = check_policy(self.opponent, self.H, self.S, n_opp, "opponent")

    @property
    def dims(self) -> tuple[int, int, int, int]:
        return (self.H, self.S, self.A, self.B)

    @property
    def n_own(self) -> int:
        return self.A if self.player == "max" else self.B

    def observation_space(self) -> gym.spaces.Box:
        d = obs_dim(self.observation_mode, *self.dims, self.player)
        return gym.spaces.Box(0.0, 1.0, shape=(d,), dtype=np.float32)

    def action_space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.n_own)

    def opponent_actions(self, batch: GameBatch, rng: np.random.Generator) -> np.ndarray:
        """The opponent's actions (G,) drawn from its policy at (h, s) of every game."""
        return sample_categorical(self.opponent_policy[batch.h, batch.s], rng.random(batch.G))


class GameEnv(gym.Env):
    """One player of a zero-sum tabular game against a fixed opponent (see module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, **kwargs: Any):
        self.cfg = EnvSettings.from_kwargs(kwargs)
        self.render_mode = self.cfg.render_mode
        self.observation_space = self.cfg.observation_space()
        self.action_space = self.cfg.action_space()
        self._batch: GameBatch | None = None
        self.game: TabularGame | None = self.cfg.game

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        games = make_games(self.cfg.game, None, self.cfg.dims, 1, self.np_random,
                           self.cfg.transition, self.cfg.initial)
        self.game = games[0]
        self._batch = GameBatch(games, self.cfg.episodes)
        self._batch.reset(self.np_random)
        return self._obs(), self._info()

    def step(self, action: Any):
        if self._batch is None:
            raise ConfigError("call reset() before step()")
        if self._batch.done:
            raise ConfigError("the env episode is finished (all K game episodes played); "
                              "call reset() first")
        own = check_action(action, self.cfg.n_own, f"player {self.cfg.player}")
        opp = int(self.cfg.opponent_actions(self._batch, self.np_random)[0])
        a, b = (own, opp) if self.cfg.player == "max" else (opp, own)
        r = float(self._batch.step(np.array([a]), np.array([b]), self.np_random)[0])
        reward = r if self.cfg.player == "max" else 1.0 - r
        return self._obs(), reward, self._batch.done, False, self._info()

    def _obs(self) -> np.ndarray:
        return self._batch.observe(self.cfg.observation_mode, self.cfg.player)[0]

    def _info(self) -> dict[str, Any]:
        b = self._batch
        return {"t": b.t, "episode": b.k, "h": b.h, "s": int(b.s[0])}

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._batch is None:
            return None
        b = self._batch
        return (f"t={b.t}/{b.T} episode={b.k} h={b.h} s={int(b.s[0])} "
                f"prev(a={int(b.prev_a[0])}, b={int(b.prev_b[0])}, r={float(b.prev_r[0]):.3f})\n")

"""PettingZoo parallel env of a two-player zero-sum tabular game (agents ``"max"`` and ``"min"``).

``pettingzoo.make("parallel", "icarena/matrix_game-v0")`` (defaults H = S = 1, A = B = 5) and
``pettingzoo.make("parallel", "icarena/markov_game-v0")`` (defaults H = 2, S = 4, A = B = 5)
create :class:`MarkovGameParallelEnv`; the AEC form is ``pettingzoo.utils.parallel_to_aec(env)``
(or :func:`aec_env`). ``icarena/matrix_game_batch-v0`` and ``icarena/markov_game_batch-v0`` (keyword
``num_games``) create :class:`BatchedGameParallelEnv`, which steps N games at once.

One env episode = K (``episodes``) game episodes of horizon H, i.e. T = K·H simultaneous moves;
after the last one both agents are terminated (and removed from ``agents``). Rewards: ``"max"``
gets r_h(s, a, b), ``"min"`` gets 1 − r. ``observation_mode="decentralized"`` (default) shows each
player the state and only its own previous action and reward; ``"centralized"`` shows both actions
and both rewards (layouts in :mod:`icarena.envs.games.vector`). Infos carry ``t``, ``episode``,
``h`` and ``s`` as ints.

Keyword arguments: ``game`` / ``R`` (a fixed game; otherwise each reset draws a fresh game from
the ICGP prior, seeded by the reset seed), ``H, S, A, B``, ``episodes``, ``observation_mode``,
``transition``, ``initial``, ``max_cycles`` (truncate after this many moves; None = no limit),
``render_mode`` (None or ``"ansi"``). Missing or extra agent names, out-of-range actions and
stepping a finished env raise :class:`icarena.errors.ConfigError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from icarena.envs.games.game import INITIALS, TRANSITIONS, TabularGame
from icarena.envs.games.vector import (
    OBSERVATION_MODES,
    GameBatch,
    check_action,
    make_games,
    obs_dim,
)
from icarena.errors import ConfigError, check


def check_joint_action(env: Any, actions: Any, shape: str) -> None:
    """The checks every parallel game env's ``step`` makes before reading ``actions``: reset
    called, episode not over, a dict naming exactly the live agents."""
    if env._batch is None:
        raise ConfigError("call reset() before step()")
    if not env.agents:
        raise ConfigError("the env episode is finished (all agents are done); call reset()")
    check(isinstance(actions, dict), f"actions must be a dict {shape}, "
          f"got {type(actions).__name__}")
    unknown = sorted(set(actions) - set(env.possible_agents))
    if unknown:
        raise ConfigError(f"unknown agent name(s) {unknown} in actions; use 'max' and 'min'")
    missing = sorted(set(env.agents) - set(actions))
    if missing:
        raise ConfigError(f"missing action(s) for {missing}; both players move every step")

class MarkovGameParallelEnv(ParallelEnv):
    """Two-player zero-sum tabular game as a PettingZoo ``ParallelEnv`` (see module docstring)."""

    metadata = {"name": "icarena_markov_game_v0", "render_modes": ["ansi"],
                "is_parallelizable": True, "render_fps": 4}

    def __init__(
        self,
        game: TabularGame | None = None,
        R: Any = None,
        H: int = 2,
        S: int = 4,
        A: int = 5,
        B: int = 5,
        episodes: int = 100,
        observation_mode: str = "decentralized",
        transition: str = "dirichlet",
        initial: str = "fixed",
        max_cycles: int | None = None,
        render_mode: str | None = None,
    ):
        if R is not None:
            check(game is None, "pass either game or R, not both")
            game = TabularGame.from_matrix(R)
        if game is not None:
            check(isinstance(game, TabularGame) and game.batch_shape == (),
                  "game must be a single (unbatched) TabularGame")
            H, S, A, B = game.dims
        for name, v in (("H", H), ("S", S), ("A", A), ("B", B), ("episodes", episodes)):
            check(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1,
                  f"{name} must be an int >= 1, "
                  f"got {v!r}")
        check(observation_mode in OBSERVATION_MODES,
              f"observation_mode must be one of {OBSERVATION_MODES}, got {observation_mode!r}")
        check(transition in TRANSITIONS, f"transition must be one of {TRANSITIONS}")
        check(initial in INITIALS, f"initial must be one of {INITIALS}")
        check(max_cycles is None or (isinstance(max_cycles, int) and max_cycles >= 1),
              f"max_cycles must be None or an int >= 1, got {max_cycles!r}")
        check(render_mode in (None, "ansi"), f"render_mode must be None or 'ansi', "
              f"got {render_mode!r}")
        self.fixed_game = game
        self.game = game
        self.dims = (int(H), int(S), int(A), int(B))
        self.episodes = int(episodes)
        self.observation_mode = observation_mode
        self.transition, self.initial = transition, initial
        self.max_cycles = max_cycles
        self.render_mode = render_mode
        self.possible_agents = ["max", "min"]
        self.agents: list[str] = []
        self._batch: GameBatch | None = None
        self._rng = np.random.default_rng()
        # the same space objects every call (PettingZoo seeds them in place)
        self._obs_spaces = {
            ag: spaces.Box(0.0, 1.0, shape=(obs_dim(observation_mode, *self.dims, ag),),
                           dtype=np.float32)
            for ag in self.possible_agents
        }
        self._act_spaces = {"max": spaces.Discrete(self.dims[2]),
                            "min": spaces.Discrete(self.dims[3])}

    def observation_space(self, agent: str) -> spaces.Box:
        self._check_agent(agent)
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        self._check_agent(agent)
        return self._act_spaces[agent]

    def _check_agent(self, agent: str) -> None:
        if agent not in self.possible_agents:
            raise ConfigError(f"unknown agent {agent!r}; the agents are 'max' and 'min'")

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        games = make_games(self.fixed_game, None, self.dims, 1, self._rng, self.transition,
                           self.initial)
        self.game = games[0]
        self._batch = GameBatch(games, self.episodes)
        self._batch.reset(self._rng)
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def step(self, actions: dict[str, Any]):
        check_joint_action(self, actions, "{'max': a, 'min': b}")
        a = check_action(actions["max"], self.dims[2], "player max")
        b = check_action(actions["min"], self.dims[3], "player min")
        r = float(self._batch.step(np.array([a]), np.array([b]), self._rng)[0])
        done = self._batch.done
        trunc = (not done and self.max_cycles is not None and self._batch.t >= self.max_cycles)
        obs, infos = self._observations(), self._infos()
        rewards = {"max": r, "min": 1.0 - r}
        terms = {ag: done for ag in self.agents}
        truncs = {ag: trunc for ag in self.agents}
        if done or trunc:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _observations(self) -> dict[str, np.ndarray]:
        return {ag: self._batch.observe(self.observation_mode, ag)[0]
                for ag in self.possible_agents}

    def _infos(self) -> dict[str, dict[str, int]]:
        b = self._batch
        info = {"t": b.t, "episode": b.k, "h": b.h, "s": int(b.s[0])}
        return {ag: dict(info) for ag in self.possible_agents}

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._batch is None:
            return None
        b = self._batch
        return (f"t={b.t}/{b.T} episode={b.k} h={b.h} s={int(b.s[0])} "
                f"prev(a={int(b.prev_a[0])}, b={int(b.prev_b[0])}, r={float(b.prev_r[0]):.3f})\n")

    def close(self) -> None:
        pass


def aec_env(**kwargs: Any):
    """The AEC form (``parallel_to_aec``) of :class:`MarkovGameParallelEnv`."""
    return parallel_to_aec(MarkovGameParallelEnv(**kwargs))


class BatchedGameParallelEnv(ParallelEnv):
    """N two-player zero-sum games stepped at once, as one PettingZoo ``ParallelEnv``.

    PettingZoo has no vector API; this env plays ``num_games`` copies of
    :class:`MarkovGameParallelEnv` (same keyword arguments) in numpy. The agents are the same,
    ``"max"`` and ``"min"``; every per-agent value gains a leading game axis: observations
    (N, obs_dim) float32, actions (N,) ints, rewards (N,) float64, terminations and truncations
    (N,) bool. Spaces are the single game's spaces batched with
    ``gymnasium.vector.utils.batch_space`` (actions: ``MultiDiscrete``). Game i is the single
    env reset with seed ``seed + i``, draw for draw; ``reset(seed=None)`` keeps each game's
    generator running. All games last T = K·H moves (or ``max_cycles``), so they end together
    and then ``agents`` is empty until the next ``reset`` (no autoreset). Infos carry ``t``,
    ``episode`` and ``h`` as ints and ``s`` as an (N,) array.
    """

    metadata = {"name": "icarena_batched_game_v0", "render_modes": [],
                "is_parallelizable": True}

    def __init__(self, num_games: int = 1, **kwargs: Any):
        from gymnasium.vector.utils import batch_space

        from icarena.envs.substreams import SubEnvStreams

        check(isinstance(num_games, int | np.integer) and num_games >= 1,
              f"num_games must be an int >= 1, got {num_games!r}")
        check(kwargs.get("render_mode") is None, "the batched env does not render")
        self.env = MarkovGameParallelEnv(**kwargs)  # validates the arguments
        self.num_games = int(num_games)
        self.possible_agents = list(self.env.possible_agents)
        self.agents: list[str] = []
        self.render_mode = None
        self._obs_spaces = {ag: batch_space(self.env.observation_space(ag), self.num_games)
                            for ag in self.possible_agents}
        self._act_spaces = {ag: batch_space(self.env.action_space(ag), self.num_games)
                            for ag in self.possible_agents}
        # per move each game draws 2 uniforms (GameBatch.step)
        self._streams = SubEnvStreams(self.num_games, "random", block=2 * 256)
        self._rows = np.arange(self.num_games)
        self._batch: GameBatch | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        self.env._check_agent(agent)
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.MultiDiscrete:
        self.env._check_agent(agent)
        return self._act_spaces[agent]

    def reset(self, seed: int | list[int | None] | None = None, options: dict | None = None):
        from icarena.envs.games.vector import make_batch_games

        env, st = self.env, self._streams
        st.seed(seed)
        st.sync(self._rows)
        game = make_batch_games(env.fixed_game, env.dims, st.gens, env.transition, env.initial)
        self.game = game
        self._batch = GameBatch(game, env.episodes)
        self._batch.reset_from(st.take(self._rows, 1)[:, 0])
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def step(self, actions: dict[str, Any]):
        check_joint_action(self, actions, "{'max': a, 'min': b} of (N,) arrays")
        moves = {}
        for ag in self.possible_agents:  # GameBatch checks the action ranges
            x = np.asarray(actions[ag])
            check(x.shape == (self.num_games,) and np.issubdtype(x.dtype, np.integer),
                  f"actions of player {ag} must be {self.num_games} ints, got {actions[ag]!r}")
            moves[ag] = x.astype(np.int64)
        r = self._batch.step_from(moves["max"], moves["min"],
                                  self._streams.take(self._rows, 2))
        done = self._batch.done
        cap = self.env.max_cycles
        trunc = not done and cap is not None and self._batch.t >= cap
        obs, infos = self._observations(), self._infos()
        rewards = {"max": r, "min": 1.0 - r}
        terms = {ag: np.full(self.num_games, done) for ag in self.agents}
        truncs = {ag: np.full(self.num_games, trunc) for ag in self.agents}
        if done or trunc:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _observations(self) -> dict[str, np.ndarray]:
        return {ag: self._batch.observe(self.env.observation_mode, ag)
                for ag in self.possible_agents}

    def _infos(self) -> dict[str, dict[str, Any]]:
        b = self._batch
        return {ag: {"t": b.t, "episode": b.k, "h": b.h, "s": b.s.copy()}
                for ag in self.possible_agents}

    def render(self) -> None:
        return None

    def close(self) -> None:
        pass

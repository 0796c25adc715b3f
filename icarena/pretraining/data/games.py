"""The ``games`` dataset generator: context-algorithm trajectories on N sampled games.

``icarena generate games --setting decentralized|centralized --n-games N --episodes K ...``
samples N games from the ICGP prior (:meth:`icarena.envs.games.TabularGame.random`: truncated-
normal rewards; Dirichlet(1) transitions and s_1 = 0 by default), runs the setting's context
algorithm on all of them at once (Shi et al. 2024, arXiv 2410.09701, §3) and writes one row per
game:

* decentralized (default algorithm ``exp3`` on matrix games; ``vlearning`` for any H, S): the
  per-player streams -- max: (``traj/s``, ``act/max``, ``rew/max``); min: (``traj/s``,
  ``act/min``, ``rew/min`` = 1 − r) -- and each player's policy at every step and (h, s):
  ``pi/max`` (N, T, H, S, A), ``pi/min`` (N, T, H, S, B);
* centralized (``viulcb``): the joint stream (``traj/s``, ``act/max``, ``act/min``, ``rew/max``)
  and the correlated policy ``pi/joint`` (N, T, H, S, A·B) (plus its marginals ``pi/max|min``);

both with ``traj/h``, ``traj/s_next`` (T = K·H steps; int16 indices, float32 rewards, policies in
``pi_dtype``) and the games themselves as arrays ``game/R`` (N, H, S, A, B), ``game/P``
(N, H, S, A, B, S) and ``game/initial`` (N, S) (float64, exact; no pickle), so evaluation can
recompute Nash gaps. Defaults follow the paper's experiments: decentralized = 5×5 matrix games
with K = 3000; centralized = H=2, S=4, A=B=5 with K = 300.

Seeds: the games come from ``SeedSequence(seed).spawn(2)[0]`` and the algorithm's draws from
``[1]``; games are processed in chunks of ``chunk_games``, chunk i drawing from the i-th child of
``[1]``, so the output bytes depend only on the config (``chunk_games`` included) and the seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icarena import limits
from icarena.agents.games import (
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    run_algorithm,
)
from icarena.envs.games.game import INITIALS, TRANSITIONS, TabularGame
from icarena.errors import check
from icarena.lifecycle import recorded_config, writes_dataset
from icarena.pretraining.data.store import write_dataset

SETTINGS = {
    "decentralized": {"H": 1, "S": 1, "A": 5, "B": 5, "episodes": 3000, "algorithm": "exp3"},
    "centralized": {"H": 2, "S": 4, "A": 5, "B": 5, "episodes": 300, "algorithm": "viulcb"},
}
ALGORITHMS_BY_SETTING = {"decentralized": ("exp3", "vlearning"), "centralized": ("viulcb",)}
PI_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass
class Config:
    """Write context-algorithm trajectories (with per-step policies) on sampled zero-sum games."""

    out_dir: str = "data/games"
    """Output dataset directory."""
    seed: int = 0
    """Seed of the games and of the algorithm's random draws."""
    overwrite: bool = False
    """Replace an existing icarena dataset at ``out_dir``."""
    setting: str = "decentralized"
    """'decentralized' (per-player streams; EXP3 or V-learning) or 'centralized' (VI-ULCB)."""
    n_games: int = 20
    """Number N of sampled games (one dataset row each)."""
    episodes: int | None = None
    """Episodes K per game (None: 3000 decentralized, 300 centralized)."""
    H: int | None = None
    """Horizon (None: 1 decentralized, 2 centralized)."""
    S: int | None = None
    """Number of states (None: 1 decentralized, 4 centralized)."""
    A: int = 5
    """Max-player actions."""
    B: int = 5
    """Min-player actions."""
    algorithm: str | None = None
    """Context algorithm (None: exp3 decentralized -- vlearning when H or S > 1 -- and viulcb
    centralized)."""
    transition: str = "dirichlet"
    """Transition prior: 'dirichlet' (P ~ Dirichlet(1)) or 'deterministic'."""
    initial: str = "fixed"
    """Initial state: 'fixed' (s_1 = 0) or 'uniform'."""
    exp3_eta: float | None = None
    """EXP3 learning rate (None: √(2 ln A / (A K)))."""
    exp3_gamma: float = 0.0
    """EXP3 implicit exploration γ (0: plain EXP3)."""
    vlearning_schedule: str = "jin2021"
    """V-learning schedule: 'jin2021' or 'bai2020'."""
    vlearning_c: float = 0.1
    """V-learning bonus constant c."""
    viulcb_c: float = 0.02
    """VI-ULCB bonus constant c."""
    viulcb_eq: str = "mwu"
    """VI-ULCB per-state equilibrium: 'mwu' (approximate CCE) or 'lp' (exact CCE)."""
    mwu_iters: int = 200
    """VI-ULCB MWU rounds."""
    pi_dtype: str = "float16"
    """Stored dtype of the policy arrays: 'float16' or 'float32'."""
    chunk_games: int = 64
    """Games run at once (bounds memory; part of the seed protocol: it changes the draws)."""
    shard_rows: int | None = None
    """Games per shard (None: one shard)."""


def resolve(cfg: Config) -> Config:
    """Fill the setting-dependent defaults and validate; returns a new Config."""
    check(cfg.setting in SETTINGS, f"setting must be one of {sorted(SETTINGS)}, "
          f"got {cfg.setting!r}")
    d = SETTINGS[cfg.setting]
    H = d["H"] if cfg.H is None else cfg.H
    S = d["S"] if cfg.S is None else cfg.S
    K = d["episodes"] if cfg.episodes is None else cfg.episodes
    algo = cfg.algorithm
    if algo is None:
        algo = d["algorithm"] if (cfg.setting == "centralized" or (H == 1 and S == 1)) \
            else "vlearning"
    check(algo in ALGORITHMS_BY_SETTING[cfg.setting], f"algorithm {algo!r} does not fit setting "
          f"{cfg.setting!r}; choose from {ALGORITHMS_BY_SETTING[cfg.setting]}")
    check(algo != "exp3" or (H == 1 and S == 1), "exp3 needs matrix games (H = S = 1); use "
          "--algorithm vlearning for Markov games")
    for name, v in (("n_games", cfg.n_games), ("episodes", K), ("H", H), ("S", S), ("A", cfg.A),
                    ("B", cfg.B), ("chunk_games", cfg.chunk_games)):
        check(isinstance(v, int) and v >= 1, f"{name} must be an int >= 1, got {v!r}")
    check(cfg.pi_dtype in PI_DTYPES, f"pi_dtype must be one of {sorted(PI_DTYPES)}")
    check(cfg.transition in TRANSITIONS, f"transition must be one of {TRANSITIONS}")
    check(cfg.initial in INITIALS, f"initial must be one of {INITIALS}")
    return dataclasses.replace(cfg, H=H, S=S, episodes=K, algorithm=algo)


def algorithm_config(cfg: Config):
    """The resolved algorithm's hyperparameter dataclass."""
    if cfg.algorithm == "exp3":
        return EXP3Config(eta=cfg.exp3_eta, gamma=cfg.exp3_gamma)
    if cfg.algorithm == "vlearning":
        return VLearningConfig(schedule=cfg.vlearning_schedule, c=cfg.vlearning_c)
    return VIULCBConfig(c=cfg.viulcb_c, eq=cfg.viulcb_eq, mwu_iters=cfg.mwu_iters)


def generate_arrays(cfg: Config) -> dict[str, np.ndarray]:
    """All dataset arrays (one row per game) for a resolved config."""
    cfg = resolve(cfg)
    game_ss, algo_ss = np.random.SeedSequence(cfg.seed).spawn(2)
    games = TabularGame.random(cfg.H, cfg.S, cfg.A, cfg.B, seed=game_ss, n_games=cfg.n_games,
                               transition=cfg.transition, initial=cfg.initial)
    algo_cfg = algorithm_config(cfg)
    pi_dtype = PI_DTYPES[cfg.pi_dtype]
    idx_dtype = np.int16 if max(cfg.S, cfg.A, cfg.B, cfg.H) < 2**15 else np.int32
    keep = ["traj/h", "traj/s", "traj/s_next", "act/max", "act/min", "rew/max", "pi/max",
            "pi/min"] + (["pi/joint"] if cfg.setting == "centralized" else [])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keep}
    chunk_seeds = algo_ss.spawn((cfg.n_games + cfg.chunk_games - 1) // cfg.chunk_games)
    for i, start in enumerate(range(0, cfg.n_games, cfg.chunk_games)):
        sub = games[start:start + cfg.chunk_games]
        rec = run_algorithm(cfg.algorithm, sub, cfg.episodes, cfg=algo_cfg, seed=chunk_seeds[i],
                            dtype=np.float32)
        for k in keep:
            parts[k].append(rec[k])
    arrays: dict[str, np.ndarray] = {}
    for k in keep:
        x = np.concatenate(parts[k])
        if k.startswith("pi/"):
            x = x.astype(pi_dtype)
        elif k == "rew/max":
            x = x.astype(np.float32)
        else:
            x = x.astype(idx_dtype)
        arrays[k] = x
    if cfg.setting == "decentralized":
        arrays["rew/min"] = (1.0 - arrays["rew/max"]).astype(np.float32)
    arrays["game/R"] = games.rewards
    arrays["game/P"] = games.transitions
    arrays["game/initial"] = games.initial
    return arrays


def load_games(ds) -> TabularGame:
    """The games (batch (N,)) saved in a ``games`` dataset (a loaded :class:`Dataset`)."""
    return TabularGame(np.asarray(ds["game/R"]), np.asarray(ds["game/P"]),
                       np.asarray(ds["game/initial"]))


@writes_dataset
def generate(cfg: Config) -> Path:
    """Write the dataset at ``cfg.out_dir`` and return its path."""
    cfg = resolve(cfg)
    # the recorded arrays (float32 policies pi/max, pi/min (, pi/joint), rewards, int indices),
    # held twice while the chunks are concatenated
    per_step = cfg.A + cfg.B + (cfg.A * cfg.B if cfg.setting == "centralized" else 0) + 6
    limits.require(8 * cfg.n_games * cfg.episodes * cfg.H * per_step,
                   f"{cfg.n_games} games x {cfg.episodes} episodes x H={cfg.H} of recorded play",
                   "--n-games, --episodes or --H / --A / --B")
    inner = cfg.mwu_iters if cfg.algorithm == "viulcb" else 1
    limits.require_work(cfg.n_games * cfg.episodes * cfg.H * cfg.S * cfg.A * cfg.B
                        * (cfg.S + inner),
                        f"{cfg.n_games} games x {cfg.episodes} episodes of {cfg.algorithm}",
                        "--n-games, --episodes or --mwu-iters")
    arrays = generate_arrays(cfg)
    return write_dataset(cfg.out_dir, arrays, generator="games", config=recorded_config(cfg),
                         seed=cfg.seed, shard_rows=cfg.shard_rows, overwrite=cfg.overwrite)

"""The ``games`` dataset: the one producer of in-context game-playing (ICGP) data.

``icarena generate games --setting decentralized|centralized --n-games N --episodes K ...``
samples N games from the ICGP prior (:meth:`icarena.envs.games.TabularGame.random`: truncated-
normal rewards; Dirichlet(1) transitions and s_1 = 0 by default), runs the setting's context
algorithm ``trajectories_per_game`` times on each (Shi et al. 2024, arXiv 2410.09701, §3) and
writes everything ``icarena pretrain icgp --data D`` trains on. Two splits in one dataset:

* ``train``: the N pretraining games and M = N · ``trajectories_per_game`` trajectories;
* ``val``: ``val_games`` further games from the same prior, one trajectory each (the held-out
  imitation error of pretraining; 0: none). Evaluation games are not stored: evaluation draws
  its own (:func:`icarena.pretraining.game_lm.eval_games`).

Arrays (``<p>`` is ``""`` for the train split and ``"val/"`` for the validation split; M rows of
trajectories, trajectory j of game g at row j·N + g, T = K·H steps):

* ``<p>traj/h``, ``<p>traj/s``, ``<p>traj/s_next``, ``<p>act/max``, ``<p>act/min`` (M, T) int16,
  ``<p>rew/max`` (M, T) float32 (the max player's reward; the min player's is 1 − r, also stored
  as ``<p>rew/min`` in the decentralized setting), ``<p>traj/game`` (M,) int32 (the game's row);
* the policies of the stream(s) at every step and (h, s), in ``pi_dtype`` (float32 by default:
  the exact training targets): decentralized ``<p>pi/max`` (M, T, H, S, A) and ``<p>pi/min``
  (M, T, H, S, B) (the per-player streams are (``traj/s``, own action, own reward)); centralized
  ``<p>pi/joint`` (M, T, H, S, A·B) (the correlated policy, joint action a·B + b) plus its
  marginals ``<p>pi/max|min``;
* the games: ``<p>game/R`` (N, H, S, A, B), ``<p>game/P`` (N, H, S, A, B, S), ``<p>game/initial``
  (N, S), float64, exact (no pickle), so evaluation can recompute Nash gaps.

Seed protocol (the bytes depend on the config and the seed only, never on ``workers``): the
training games come from ``SeedSequence([seed, 1])``, the validation games from ``[seed, 2]``;
the M training trajectories are split into ``chunks`` contiguous parts (bounds
``linspace(0, M, chunks + 1)`` rounded down), part c drawing from ``SeedSequence([s11, c])`` with
s11 = :func:`derived_seed` ``(seed, 11)``; the validation trajectories are one part drawn from
``[derived_seed(seed, 12), 0]``. ``workers`` processes only share the parts out. With one part
this is exactly the data that ``icarena pretrain icgp`` drew itself before it read datasets
(one batched run seeded with s11), and with two parts the data of its ``--data.workers 2``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from icarena import limits
from icarena.agents.games import (
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    run_algorithm,
)
from icarena.envs.games.game import INITIALS, TRANSITIONS, TabularGame
from icarena.errors import DatasetError, check
from icarena.lifecycle import recorded_config, writes_dataset
from icarena.pretraining.data.store import write_dataset
from icarena.pretraining.options import Option, Options  # noqa: F401  (re-exported)

GENERATOR = "games"
SETTINGS = {
    "decentralized": {"H": 1, "S": 1, "A": 5, "B": 5, "episodes": 300, "algorithm": "exp3"},
    "centralized": {"H": 2, "S": 4, "A": 5, "B": 5, "episodes": 150, "algorithm": "viulcb"},
}
# The paper's scale (Shi et al. 2024, arXiv 2410.09701, §5): K = 3000 episodes of 5x5 matrix
# games (decentralized) and K = 300 of H=2, S=4 Markov games (centralized); N = 10 and 20.
PAPER_EPISODES = {"decentralized": 3000, "centralized": 300}
PRESET_NAMES = ("cpu", "paper")
ALGORITHMS_BY_SETTING = {"decentralized": ("exp3", "vlearning"), "centralized": ("viulcb",)}
ALGORITHM_CONFIGS = {"exp3": EXP3Config, "vlearning": VLearningConfig, "viulcb": VIULCBConfig}
PI_DTYPES = {"float16": np.float16, "float32": np.float32}
STEP_COLUMNS = ("traj/h", "traj/s", "traj/s_next", "act/max", "act/min")
SPLITS = {"train": "", "val": "val/"}


# ------------------------------------------------------------------ options given as KEY VALUE
def check_options(options: Any, name: str) -> None:
    """``options`` must be a dict of named options (ConfigError naming ``name`` otherwise)."""
    check(isinstance(options, dict) and all(isinstance(k, str) for k in options),
          f"{name} must be a dict of named options (--{name.replace('_', '-')} KEY VALUE ...), "
          f"got {options!r}")


def algorithm_config(algorithm: str, options: dict[str, Any] | None = None):
    """The context algorithm's hyperparameter dataclass with ``options`` set (ConfigError on an
    unknown algorithm or option)."""
    cls = ALGORITHM_CONFIGS.get(algorithm)
    check(cls is not None, f"unknown context algorithm {algorithm!r}; choose exp3, vlearning "
          "or viulcb")
    options = dict(options or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    check(not unknown, f"{algorithm} has no option(s) {unknown}; valid: {sorted(names)}")
    return cls(**options)


def derived_seed(*parts: int) -> int:
    """A 31-bit seed derived from integer parts (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] >> 1)


# ------------------------------------------------------------------------------------ config
@dataclass
class Config:
    """Context-algorithm trajectories (with per-step policies) on sampled zero-sum games: the
    pretraining data of in-context game players (train and validation splits)."""

    out_dir: str = "data/games"
    """Output dataset directory."""
    seed: int = 0
    """Seed of the games and of the algorithm's random draws."""
    overwrite: bool = False
    """Replace an existing icarena dataset at ``out_dir``."""
    preset: Literal["cpu", "paper"] = "cpu"
    """'cpu' (K = 300 decentralized, 150 centralized) or 'paper' (K = 3000 / 300, Shi et al.
    2024); fills --episodes when it is not given."""
    setting: str = "decentralized"
    """'decentralized' (per-player streams; EXP3 or V-learning) or 'centralized' (VI-ULCB)."""
    n_games: int = 20
    """Number N of pretraining games."""
    trajectories_per_game: int = 1
    """Context-algorithm runs (different random draws) per pretraining game."""
    val_games: int = 4
    """Validation games (seed branch [seed, 2], one trajectory each; 0: none)."""
    episodes: int | None = None
    """Episodes K per trajectory (None: from the preset; T = K·H steps)."""
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
    context_options: Options = field(default_factory=dict)
    """Options of the context algorithm, e.g. --context-options c 0.05 mwu_iters 100 (viulcb)
    (icarena.agents.games: EXP3Config, VLearningConfig, VIULCBConfig)."""
    transition: str = "dirichlet"
    """Transition prior: 'dirichlet' (P ~ Dirichlet(1)) or 'deterministic'."""
    initial: str = "fixed"
    """Initial state: 'fixed' (s_1 = 0) or 'uniform'."""
    chunks: int = 1
    """Parts the training trajectories are generated in, part c from seed branch [s11, c] (part
    of the seed protocol: it changes the draws; more parts bound the memory of one part)."""
    workers: int = 1
    """Processes generating the parts side by side (the bytes do not depend on it)."""
    pi_dtype: str = "float32"
    """Stored dtype of the policy arrays: 'float32' (exact training targets) or 'float16'."""
    shard_rows: int | None = None
    """Rows per shard (None: one shard)."""


def resolve(cfg: Config) -> Config:
    """Fill the preset- and setting-dependent defaults and validate; returns a new Config."""
    check(cfg.preset in PRESET_NAMES,
              f"preset must be one of {PRESET_NAMES}, got {cfg.preset!r}")
    check(cfg.setting in SETTINGS, f"setting must be one of {sorted(SETTINGS)}, "
          f"got {cfg.setting!r}")
    d = SETTINGS[cfg.setting]
    H = d["H"] if cfg.H is None else cfg.H
    S = d["S"] if cfg.S is None else cfg.S
    K = cfg.episodes
    if K is None:
        K = PAPER_EPISODES[cfg.setting] if cfg.preset == "paper" else d["episodes"]
    algo = cfg.algorithm
    if algo is None:
        algo = d["algorithm"] if (cfg.setting == "centralized" or (H == 1 and S == 1)) \
            else "vlearning"
    check(algo in ALGORITHMS_BY_SETTING[cfg.setting], f"algorithm {algo!r} does not fit setting "
          f"{cfg.setting!r}; choose from {ALGORITHMS_BY_SETTING[cfg.setting]}")
    check(algo != "exp3" or (H == 1 and S == 1), "exp3 needs matrix games (H = S = 1); use "
          "--algorithm vlearning for Markov games")
    for name, v in (("n_games", cfg.n_games), ("episodes", K), ("H", H), ("S", S), ("A", cfg.A),
                    ("B", cfg.B), ("trajectories_per_game", cfg.trajectories_per_game),
                    ("chunks", cfg.chunks), ("workers", cfg.workers)):
        check(isinstance(v, int) and v >= 1, f"{name} must be an int >= 1, got {v!r}")
    check(isinstance(cfg.val_games, int) and cfg.val_games >= 0,
          f"val_games must be an int >= 0, got {cfg.val_games!r}")
    check(cfg.pi_dtype in PI_DTYPES, f"pi_dtype must be one of {sorted(PI_DTYPES)}")
    check(cfg.transition in TRANSITIONS, f"transition must be one of {TRANSITIONS}")
    check(cfg.initial in INITIALS, f"initial must be one of {INITIALS}")
    check_options(cfg.context_options, "context_options")
    acfg = algorithm_config(algo, cfg.context_options)
    getattr(acfg, "validate", lambda: None)()
    return dataclasses.replace(cfg, H=H, S=S, episodes=K, algorithm=algo)


# ------------------------------------------------------------------------------- generation
def sample_games(cfg: Config, split: str = "train") -> TabularGame:
    """The games of ``split`` (batch (N,)): seed branch [seed, 1] (train) or [seed, 2] (val)."""
    n = cfg.n_games if split == "train" else cfg.val_games
    return TabularGame.random(cfg.H, cfg.S, cfg.A, cfg.B,
                              seed=np.random.SeedSequence([cfg.seed, 1 if split == "train" else 2]),
                              n_games=n, transition=cfg.transition, initial=cfg.initial)


def chunk_bounds(rows: int, chunks: int) -> list[tuple[int, int]]:
    """[(start, stop)] of the ``chunks`` contiguous parts of ``rows`` rows (empty parts dropped)."""
    b = np.linspace(0, rows, chunks + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(b[:-1], b[1:], strict=True) if hi > lo]


def run_trajectories(games: TabularGame, algorithm: str, episodes: int, trajectories: int,
                     seed: int, *, options: dict[str, Any] | None = None, chunks: int = 1,
                     workers: int = 1) -> dict[str, np.ndarray]:
    """Run the context algorithm ``trajectories`` times on each of the G games.

    Returns the record (``traj/*``, ``act/*``, ``rew/max``, ``pi/*``) with M = G·trajectories
    rows, trajectory j of game g at row j·G + g. The rows are run in ``chunks`` contiguous parts,
    part c drawing from ``SeedSequence([seed, c])`` (one part = one batched run seeded with
    ``seed``); ``workers`` spawned processes share the parts out, so the result does not depend
    on ``workers``.
    """
    check(isinstance(workers, int) and workers >= 1,
          f"workers must be an int >= 1, got {workers!r}")
    check(isinstance(chunks, int) and chunks >= 1, f"chunks must be an int >= 1, got {chunks!r}")
    G = len(games)
    M = G * trajectories
    rep = games if trajectories == 1 else TabularGame(
        np.tile(games.rewards, (trajectories, 1, 1, 1, 1)),
        np.tile(games.transitions, (trajectories, 1, 1, 1, 1, 1)),
        np.tile(games.initial, (trajectories, 1)))
    acfg = algorithm_config(algorithm, options)
    jobs = [(algorithm, TabularGame(rep.rewards[a:b], rep.transitions[a:b], rep.initial[a:b])
             if (a, b) != (0, M) else rep, episodes, acfg, np.random.SeedSequence([seed, c]))
            for c, (a, b) in enumerate(chunk_bounds(M, chunks))]
    workers = min(workers, len(jobs))
    if workers <= 1:
        parts = [_run_part(job) for job in jobs]
    else:
        from icarena.lifecycle import spawn_pool

        with spawn_pool(workers) as pool:
            parts = list(pool.map(_run_part, jobs))
    rec = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts])
                                            for k in parts[0]}
    assert rec["traj/h"].shape[0] == M, "unexpected record size"  # internal invariant
    return rec


def _run_part(job: tuple) -> dict[str, np.ndarray]:
    algorithm, game, episodes, acfg, seed = job
    return run_algorithm(algorithm, game, episodes, cfg=acfg, seed=seed)


def _split_arrays(cfg: Config, rec: dict[str, np.ndarray], games: TabularGame,
                  trajectories: int) -> dict[str, np.ndarray]:
    pi_dtype = PI_DTYPES[cfg.pi_dtype]
    idx_dtype = np.int16 if max(cfg.S, cfg.A, cfg.B, cfg.H) < 2**15 else np.int32
    out = {k: np.asarray(rec[k]).astype(idx_dtype) for k in STEP_COLUMNS}
    out["rew/max"] = np.asarray(rec["rew/max"], dtype=np.float32)
    if cfg.setting == "decentralized":
        out["rew/min"] = (1.0 - out["rew/max"]).astype(np.float32)
    for k in ("pi/max", "pi/min") + (("pi/joint",) if cfg.setting == "centralized" else ()):
        out[k] = np.asarray(rec[k]).astype(pi_dtype)
    out["traj/game"] = np.tile(np.arange(len(games), dtype=np.int32), trajectories)
    out["game/R"] = games.rewards
    out["game/P"] = games.transitions
    out["game/initial"] = games.initial
    return out


def generate_arrays(cfg: Config) -> dict[str, np.ndarray]:
    """All dataset arrays (both splits) for a config (resolved here)."""
    cfg = resolve(cfg)
    games = sample_games(cfg, "train")
    rec = run_trajectories(games, cfg.algorithm, cfg.episodes, cfg.trajectories_per_game,
                           derived_seed(cfg.seed, 11), options=cfg.context_options,
                           chunks=cfg.chunks, workers=cfg.workers)
    arrays = _split_arrays(cfg, rec, games, cfg.trajectories_per_game)
    if cfg.val_games:
        vg = sample_games(cfg, "val")
        vrec = run_trajectories(vg, cfg.algorithm, cfg.episodes, 1, derived_seed(cfg.seed, 12),
                                options=cfg.context_options)
        arrays.update({SPLITS["val"] + k: v for k, v in _split_arrays(cfg, vrec, vg, 1).items()})
    return arrays


def manifest_config(cfg: Config) -> dict[str, Any]:
    """The resolved config as the manifest records it: without where it was written, the
    workers (the bytes do not depend on them) and the preset (its values are recorded)."""
    return {k: v for k, v in recorded_config(resolve(cfg)).items()
            if k not in ("workers", "preset")}


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
    inner = int(cfg.context_options.get("mwu_iters", 200)) if cfg.algorithm == "viulcb" else 1
    limits.require_work(cfg.n_games * cfg.episodes * cfg.H * cfg.S * cfg.A * cfg.B
                        * (cfg.S + inner),
                        f"{cfg.n_games} games x {cfg.episodes} episodes of {cfg.algorithm}",
                        "--n-games, --episodes or --context-options mwu_iters N")
    arrays = generate_arrays(cfg)
    return write_dataset(cfg.out_dir, arrays, generator=GENERATOR, config=manifest_config(cfg),
                         seed=cfg.seed, shard_rows=cfg.shard_rows, overwrite=cfg.overwrite)


# ---------------------------------------------------------------------------------- reading
def split_columns(ds, split: str = "train") -> dict[str, np.ndarray]:
    """The trajectory columns of ``split`` of a loaded games dataset, under their record names
    (``traj/h``, ``act/max``, ``rew/max``, ``pi/<stream>``, ...; memory maps where possible)."""
    check(split in SPLITS, f"split must be one of {sorted(SPLITS)}, got {split!r}")
    p = SPLITS[split]
    own = [k for k in ds.names() if (k.startswith(p) if p else not k.startswith("val/"))]
    return {k[len(p):]: ds[k] for k in own if not k[len(p):].startswith("game/")}


def has_split(ds, split: str) -> bool:
    """Whether the dataset holds trajectories of ``split``."""
    return SPLITS[split] + "traj/h" in ds


def load_games(ds, split: str = "train") -> TabularGame:
    """The games (batch (N,)) of ``split`` saved in a ``games`` dataset (a loaded Dataset)."""
    p = SPLITS[split]
    return TabularGame(np.asarray(ds[p + "game/R"]), np.asarray(ds[p + "game/P"]),
                       np.asarray(ds[p + "game/initial"]))


def dataset_settings(ds) -> dict[str, Any]:
    """What a games dataset fixes for pretraining, from its manifest: setting, H, S, A, B, K
    (``episodes``), context algorithm and options, transition / initial rule, N, trajectories
    per game. DatasetError if ``ds`` is not a games dataset of this layout."""
    if ds.generator != GENERATOR:
        raise DatasetError(f"{ds.path} was made by generator {ds.generator!r}, not 'games'; "
                           "pass a dataset from `icarena generate games`")
    c = ds.config
    need = ("setting", "H", "S", "A", "B", "episodes", "algorithm", "n_games",
            "trajectories_per_game")
    missing = [k for k in need if k not in c]
    if missing or "traj/game" not in ds:
        absent = missing or ["traj/game"]
        raise DatasetError(f"{ds.path} is a games dataset of an older layout (no {absent}); "
                           "regenerate it with `icarena generate games`")
    out = {k: c[k] for k in need}
    out.update(context_options=dict(c.get("context_options") or {}),
               transition=c.get("transition", "dirichlet"), initial=c.get("initial", "fixed"),
               val_games=int(c.get("val_games", 0)))
    return out


__all__ = [
    "Config",
    "Options",
    "algorithm_config",
    "chunk_bounds",
    "dataset_settings",
    "derived_seed",
    "generate",
    "generate_arrays",
    "has_split",
    "load_games",
    "manifest_config",
    "resolve",
    "run_trajectories",
    "sample_games",
    "split_columns",
]

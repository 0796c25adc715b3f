"""Single-agent episodes of an icarena dataset as a Minari dataset: ``icarena export minari``.

Minari (Farama, ``pip install 'icarena[minari]'``) stores offline-RL episodes of one agent; it
has no multi-agent support, so each source becomes one agent's episodes:

* ``games`` dataset -> one episode per game: ``player``'s view (``max`` or ``min``) of the
  recorded run against the recorded opponent, with the observations of ``icarena/MatrixGame-v0``
  / ``MarkovGame-v0`` in decentralized mode (:func:`icarena.envs.games.vector.encode_obs`),
  T = K·H steps, terminated after the last one. The final observation is taken at h = 0 in the
  last step's next state, as the env's.
* ``alpine`` / ``blocksworld`` dataset -> one episode per (source, target) pair of the chosen
  split: the ``bfs`` or ``random_walk`` planner (:mod:`icarena.agents.planning`) acting in
  ``icarena/PathFinding-v0`` on the dataset's graph, recorded step by step from the env.
* ``regression`` dataset -> one episode per prompt in ``icarena/Regression-v0``'s layout
  (observation ``x`` and ``prev_y``; action = least squares' prediction from the earlier points
  of the prompt, 0 at the first; reward −(ŷ − y)²).

Dataset ids follow Minari's ``namespace/name-vN`` rule (default ``icarena/<generator>-...-v0``);
the storage root is Minari's: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``. The dataset
is written under a temporary root beside it and moved into place complete; an existing id is
refused unless ``--overwrite``, which replaces only a Minari dataset.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import ConfigError, DatasetError, check
from icarena.lifecycle import locked
from icarena.pretraining.data.store import load_dataset

ID_RE = re.compile(r"(?P<namespace>[\w.-]+(?:/[\w.-]+)*)/(?P<name>[\w.]+(?:-[\w.]+)*?)-v(\d+)")
PLANNERS = ("bfs", "random_walk")
SOURCES = ("games", "alpine", "blocksworld", "regression")


@dataclass
class Config:
    """Write a dataset's single-agent episodes as a Minari dataset (needs icarena[minari])."""

    data: str = "data/games"
    """A dataset from `icarena generate games|alpine|blocksworld|regression`."""
    dataset_id: str = ""
    """Minari id namespace/name-vN ('' = icarena/<generator>-<player or planner>-v0)."""
    overwrite: bool = False
    """Replace a Minari dataset with the same id."""
    player: str = "max"
    """games: whose view to export, 'max' or 'min'."""
    planner: str = "bfs"
    """alpine / blocksworld: 'bfs' (shortest paths) or 'random_walk'."""
    split: str = "test"
    """alpine / blocksworld: the (source, target) pairs to roll out: 'test', 'train' or 'all'."""
    reach_aware: bool = False
    """random_walk: step only to nodes that can still reach the target (ALPINE's sampler)."""
    seed: int = 0
    """Seed of the random-walk planner."""


def require_minari() -> Any:
    """The ``minari`` module, or a ConfigError saying how to install it."""
    try:
        import minari
    except ImportError as e:
        raise ConfigError("the Minari export needs the optional extra: pip install "
                          "'icarena[minari]' (or pip install 'minari[hdf5]')") from e
    return minari


def check_dataset_id(dataset_id: str) -> str:
    """``dataset_id`` if it has Minari's ``namespace/name-vN`` form, else a ConfigError."""
    check(bool(ID_RE.fullmatch(dataset_id)),
          f"Minari dataset id {dataset_id!r} must look like namespace/name-vN "
          "(e.g. icarena/games-max-v0)")
    return dataset_id


def datasets_root() -> Path:
    """Minari's storage root: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


# ---------------------------------------------------------------------------- episodes
def game_episodes(ds: Any, player: str) -> tuple[list[dict[str, np.ndarray]], Any, Any]:
    """(episodes, observation space, action space) of ``player``'s view of a games dataset."""
    from gymnasium import spaces

    from icarena.envs.games.vector import encode_obs, obs_dim

    check(player in ("max", "min"), f"player must be 'max' or 'min', got {player!r}")
    R = np.asarray(ds["game/R"])
    N, H, S, A, B = R.shape
    h, s, s_next = (np.asarray(ds[k]).astype(np.int64) for k in ("traj/h", "traj/s",
                                                                 "traj/s_next"))
    a, b = (np.asarray(ds[k]).astype(np.int64) for k in ("act/max", "act/min"))
    r = np.asarray(ds["rew/max"]).astype(np.float64)
    T = h.shape[1]
    dims = (H, S, A, B)
    prev_a, prev_b, prev_r = np.full(N, A), np.full(N, B), np.zeros(N)
    obs = np.zeros((N, T + 1, obs_dim("decentralized", H, S, A, B, player)), np.float32)
    for t in range(T):
        obs[:, t] = encode_obs("decentralized", player, dims, int(h[0, t]), s[:, t], prev_a,
                               prev_b, prev_r)
        prev_a, prev_b, prev_r = a[:, t], b[:, t], r[:, t]
    obs[:, T] = encode_obs("decentralized", player, dims, 0, s_next[:, T - 1], prev_a, prev_b,
                           prev_r)
    own = a if player == "max" else b
    reward = r if player == "max" else 1.0 - r
    done = np.zeros(T, dtype=bool)
    done[-1] = True
    episodes = [{"observations": obs[i], "actions": own[i], "rewards": reward[i],
                 "terminations": done, "truncations": np.zeros(T, dtype=bool)}
                for i in range(N)]
    return (episodes, spaces.Box(0.0, 1.0, (obs.shape[-1],), np.float32),
            spaces.Discrete(A if player == "max" else B))


def path_episodes(ds: Any, planner: str, split: str, *, reach_aware: bool = False,
                  seed: int = 0) -> tuple[list[dict[str, Any]], Any, Any]:
    """(episodes, observation space, action space): ``planner`` acting in PathFinding-v0 on
    the dataset's graph from every pair of ``split``."""
    from icarena.agents.planning import BFSPlanner, RandomWalkPlanner
    from icarena.envs.planning.dag import graph_from_edges
    from icarena.envs.planning.pathfinding import PathFindingEnv

    check(planner in PLANNERS, f"planner must be one of {PLANNERS}, got {planner!r}")
    check(split in ("test", "train", "all"), f"split must be test, train or all, got {split!r}")
    graph = graph_from_edges(int(ds.config["n"]), np.asarray(ds["graph/edges"]))
    parts = ["train", "test"] if split == "all" else [split]
    pairs = np.concatenate([np.asarray(ds[f"{p}/pairs"]) for p in parts])
    check(len(pairs) > 0, f"the {split} split of {ds.path} has no (source, target) pairs")
    agent = (BFSPlanner(graph) if planner == "bfs"
             else RandomWalkPlanner(graph, reach_aware=reach_aware, seed=seed))
    env = PathFindingEnv(graph)
    episodes = []
    for s, t in pairs:
        o, _ = env.reset(options={"source": int(s), "target": int(t)})
        obs, acts, rews, terms, truncs = [o], [], [], [], []
        done = False
        while not done:
            act = agent.act(o)
            o, rew, term, trunc, _ = env.step(act)
            obs.append(o)
            acts.append(act)
            rews.append(rew)
            terms.append(term)
            truncs.append(trunc)
            done = term or trunc
        episodes.append({
            "observations": {k: np.stack([x[k] for x in obs]) for k in obs[0]},
            "actions": np.asarray(acts, dtype=np.int64), "rewards": np.asarray(rews),
            "terminations": np.asarray(terms), "truncations": np.asarray(truncs)})
    return episodes, env.observation_space, env.action_space


def regression_episodes(ds: Any) -> tuple[list[dict[str, Any]], Any, Any]:
    """(episodes, observation space, action space): every prompt of a regression dataset as a
    Regression-v0 episode answered by least squares."""
    from gymnasium import spaces

    from icarena.agents.regression import prefix_predictions

    x = np.asarray(ds["x"], dtype=np.float64)
    y = np.asarray(ds["y"], dtype=np.float64)
    P, k, d = x.shape
    act = prefix_predictions("least_squares", x, y).astype(np.float32)
    obs_x = np.zeros((P, k + 1, d), np.float32)
    obs_x[:, :k] = x
    prev_y = np.zeros((P, k + 1, 1), np.float32)
    prev_y[:, 1:, 0] = y
    reward = -((act.astype(np.float64) - y) ** 2)
    done = np.zeros(k, dtype=bool)
    done[-1] = True
    box = spaces.Box(-np.inf, np.inf, shape=(d,), dtype=np.float32)
    obs_space = spaces.Dict({"x": box, "prev_y": spaces.Box(-np.inf, np.inf, (1,), np.float32)})
    episodes = [{"observations": {"x": obs_x[i], "prev_y": prev_y[i]}, "actions": act[i, :, None],
                 "rewards": reward[i], "terminations": done, "truncations": np.zeros(k, bool)}
                for i in range(P)]
    return episodes, obs_space, spaces.Box(-np.inf, np.inf, (1,), np.float32)


def episodes_of(cfg: Config, ds: Any) -> tuple[list[dict[str, Any]], Any, Any, str, str]:
    """(episodes, observation space, action space, default id, description) of a dataset."""
    gen = ds.generator
    if gen == "games":
        eps, o, a = game_episodes(ds, cfg.player)
        return (eps, o, a, f"icarena/games-{cfg.player}-v0",
                f"icarena games dataset: the {cfg.player} player's view (decentralized "
                f"observations of icarena/MatrixGame-v0 / MarkovGame-v0) of "
                f"{ds.config.get('algorithm')} runs against the recorded opponent")
    if gen in ("alpine", "blocksworld"):
        eps, o, a = path_episodes(ds, cfg.planner, cfg.split, reach_aware=cfg.reach_aware,
                                  seed=cfg.seed)
        return (eps, o, a, f"icarena/{gen}-{cfg.planner.replace('_', '')}-v0",
                f"icarena/PathFinding-v0 rollouts of the {cfg.planner} planner on the {gen} "
                f"graph, {cfg.split} pairs")
    eps, o, a = regression_episodes(ds)
    return (eps, o, a, "icarena/regression-leastsquares-v0",
            f"icarena/Regression-v0 episodes of the {ds.config.get('family')} prompts "
            "answered by least squares")


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def export(cfg: Config) -> dict[str, Any]:
    """``icarena export minari``: write the Minari dataset; returns the CLI summary."""
    minari = require_minari()
    from minari.data_collector import EpisodeBuffer

    if cfg.dataset_id:
        check_dataset_id(cfg.dataset_id)
    ds = load_dataset(cfg.data)
    check(ds.generator in SOURCES, f"{cfg.data} was made by {ds.generator!r}; the Minari export "
          f"reads datasets of {', '.join(SOURCES)}")
    episodes, obs_space, act_space, default_id, description = episodes_of(cfg, ds)
    dataset_id = check_dataset_id(cfg.dataset_id or default_id)
    root = datasets_root()
    target = root / dataset_id
    root.mkdir(parents=True, exist_ok=True)
    with locked(target):
        if target.exists():
            if not cfg.overwrite:
                raise DatasetError(f"a Minari dataset {dataset_id} already exists in {root}; "
                                   "pass --overwrite to replace it, or choose another "
                                   "--dataset-id")
            if not (target / "data" / "metadata.json").is_file():
                raise DatasetError(f"{target} is not a Minari dataset; refusing to replace it "
                                   "(--overwrite replaces only a Minari dataset)")
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".icarena-export-"))
        try:
            buffers = [EpisodeBuffer(id=i, observations=e["observations"], actions=e["actions"],
                                     rewards=list(np.asarray(e["rewards"], np.float64)),
                                     terminations=list(e["terminations"]),
                                     truncations=list(e["truncations"]))
                       for i, e in enumerate(episodes)]
            with _minari_root(tmp), warnings.catch_warnings():
                # Minari's reminders (no env spec on purpose: the recorded opponent or planner is
                # not an env setting; no e-mail, permalink or eval env)
                warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\.")
                minari.create_dataset_from_buffers(
                    dataset_id, buffers, observation_space=obs_space, action_space=act_space,
                    algorithm_name=description, author="icarena export",
                    description=description)
            target.parent.mkdir(parents=True, exist_ok=True)
            namespace = dataset_id.rsplit("/", 1)[0]
            meta = tmp / namespace / "namespace_metadata.json"
            if meta.is_file() and not (root / namespace / meta.name).exists():
                shutil.copyfile(meta, root / namespace / meta.name)
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=root, prefix=".icarena-replaced-"))
                os.replace(target, old / "d")
                os.replace(tmp / dataset_id, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp / dataset_id, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    steps = sum(len(e["actions"]) for e in episodes)
    return {"report": "", "rows": [{"dataset_id": dataset_id, "episodes": len(episodes),
                                    "steps": steps, "root": str(root)}]}

"""Learning histories of in-context game players, for Algorithm Distillation (Laskin et al.
2022, arXiv 2210.14215) and Decision-Pretrained Transformer (Lee et al. 2023, arXiv 2306.14892)
style training: ``icarena export history --data GAMES --out-dir H``.

A ``games`` dataset holds one complete run of a context algorithm (EXP3, V-learning or VI-ULCB)
per sampled game. The export writes every run whole (no train/validation split, no
truncation), in the run's own step order, with the algorithm's own per-step policy as the label,
as one ``.npy`` file per field plus ``manifest.json``; both read with numpy and json alone::

    import json, numpy as np
    m = json.load(open("H/manifest.json"))
    arrays = {name: np.load("H/" + spec["shards"][0]["file"], allow_pickle=False)
              for name, spec in m["arrays"].items()}
    m["config"]["fields"]        # what every array is (FIELDS below)

N runs (games), T = K·H steps each (K episodes of horizon H), S states, A / B actions of the max
/ min player. ``manifest.json`` also records the source dataset (its generator config and
manifest hash) and the sizes N, T, K, H, S, A, B; each array's SHA-256 is in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import check
from icarena.pretraining.data.store import dataset_identity, load_dataset, write_dataset

SCHEMA = "icarena-learning-history/1"

FIELDS: dict[str, str] = {
    "step_h": "(N, T) int: in-episode step h in [0, H) of step t (episode k = t // H)",
    "state": "(N, T) int: state s_t the players act in",
    "next_state": "(N, T) int: next state within the episode (s' ~ P_h(s_t, a_t, b_t))",
    "action_max": "(N, T) int: the max player's action a_t in [0, A)",
    "action_min": "(N, T) int: the min player's action b_t in [0, B)",
    "reward_max": "(N, T) float32: r_h(s_t, a_t, b_t) in [0, 1], paid to the max player",
    "reward_min": "(N, T) float32: 1 - reward_max, the min player's reward",
    "label_max": "(N, T, A): the max player's policy pi_t(. | h_t, s_t) that drew a_t (the "
                 "algorithm's own distribution after seeing steps < t): the imitation label",
    "label_min": "(N, T, B): the same for the min player",
    "policy_max": "(N, T, H, S, A): the max player's whole policy at step t, at every (h, s)",
    "policy_min": "(N, T, H, S, B): the same for the min player",
    "label_joint": "(N, T, A*B), centralized runs only: the correlated policy at (h_t, s_t) "
                   "(index a*B + b) that drew (a_t, b_t)",
    "policy_joint": "(N, T, H, S, A*B), centralized runs only: the correlated policy at every "
                    "(h, s)",
    "game_rewards": "(N, H, S, A, B) float64: the game's rewards to the max player",
    "game_transitions": "(N, H, S, A, B, S) float64: transition probabilities P_h(s' | s, a, b)",
    "game_initial": "(N, S) float64: initial-state distribution",
}

_SOURCE = {"step_h": "traj/h", "state": "traj/s", "next_state": "traj/s_next",
           "action_max": "act/max", "action_min": "act/min", "reward_max": "rew/max",
           "policy_max": "pi/max", "policy_min": "pi/min", "policy_joint": "pi/joint",
           "game_rewards": "game/R", "game_transitions": "game/P", "game_initial": "game/initial"}


@dataclass
class Config:
    """Write the complete learning histories of a games dataset (numpy + json layout)."""

    data: str = "data/games"
    """A dataset from `icarena generate games`."""
    out_dir: str = "exports/history"
    """Output directory (refused if it exists, unless --overwrite and it is an icarena export
    or dataset)."""
    overwrite: bool = False
    """Replace an earlier export at out_dir."""


def at_visited(policy: np.ndarray, h: np.ndarray, s: np.ndarray) -> np.ndarray:
    """policy (N, T, H, S, n) -> (N, T, n): the distribution at the visited (h_t, s_t)."""
    N, T = h.shape
    return policy[np.arange(N)[:, None], np.arange(T)[None, :], h.astype(np.int64),
                  s.astype(np.int64)]


def history_arrays(ds: Any) -> dict[str, np.ndarray]:
    """Every array of the export (FIELDS) from a loaded games dataset."""
    out = {name: np.asarray(ds[src]) for name, src in _SOURCE.items() if src in ds}
    out["reward_min"] = (1.0 - out["reward_max"]).astype(np.float32)
    h, s = out["step_h"], out["state"]
    for who in ("max", "min", "joint"):
        if f"policy_{who}" in out:
            out[f"label_{who}"] = at_visited(out[f"policy_{who}"], h, s)
    return out


def export(cfg: Config) -> dict[str, Any]:
    """``icarena export history``: write the histories; returns the CLI summary."""
    ds = load_dataset(cfg.data, generator="games")
    arrays = history_arrays(ds)
    N, H, S, A, B = arrays["game_rewards"].shape
    T = arrays["state"].shape[1]
    check(T % H == 0, f"{cfg.data}: T = {T} steps is not a whole number of episodes of H = {H}")
    c = ds.config
    config = {"schema": SCHEMA, "setting": c.get("setting"), "algorithm": c.get("algorithm"),
              "sizes": {"N": N, "T": T, "K": T // H, "H": H, "S": S, "A": A, "B": B},
              "fields": {k: FIELDS[k] for k in sorted(arrays)},
              "source": {**dataset_identity(ds), "path": str(cfg.data), "config": c,
                         "seed": ds.seed}}
    path = write_dataset(Path(cfg.out_dir), arrays, generator="history", config=config,
                         seed=ds.seed, overwrite=cfg.overwrite)
    return {"report": "", "rows": [{"runs": N, "steps per run": T, "algorithm":
                                    c.get("algorithm"), "out_dir": str(path)}]}

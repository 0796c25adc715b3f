"""Classical players of zero-sum games, batched over games (numpy).

* Exact solvers: :func:`solve_zero_sum` (Nash of a matrix game by LP), :func:`cce_lp` and
  :func:`mwu_cce` (coarse correlated equilibria of (Q^up, Q^low)).
* Context algorithms (what in-context transformers imitate): :func:`run_exp3` (fixed-η EXP3 on
  matrix games -- the practical decentralized baseline), :func:`run_vlearning` (V-learning with
  the certified output -- the faithful decentralized one; EXP3 with the theory schedule when
  H = 1) and :func:`run_viulcb` (VI-ULCB with an MWU-CCE per state -- centralized).
* :func:`play`: drive any policy source (e.g. a transformer) over a batch of games and get the
  same record, so the same Nash-gap curves can be computed.
* :mod:`~icarena.agents.games.reference`: explicit per-game loops of the three algorithms (the
  independent check of the kernels).

Each context algorithm is one kernel written against :mod:`icarena.envs.games.backend`: numpy
by default, torch on any device with ``device=`` (the same numpy-drawn uniforms, so both give
the same record to rounding). With numba installed, ``device=None`` runs V-learning and the
MWU equilibria of VI-ULCB on the compiled kernels of :mod:`~icarena.agents.games.compiled`
(same record to rounding; the numpy kernels stay the reference and the fallback).
"""

from icarena.agents.games.cce import cce_lp, cce_violation, mwu_cce, mwu_cce_bound
from icarena.agents.games.exp3 import EXP3Config, run_exp3
from icarena.agents.games.lp import matrix_gap, solve_zero_sum
from icarena.agents.games.rollout import episode_policies, play
from icarena.agents.games.viulcb import VIULCBConfig, run_viulcb
from icarena.agents.games.vlearning import VLearningConfig, alpha_weights, run_vlearning

ALGORITHMS = {"exp3": run_exp3, "vlearning": run_vlearning, "viulcb": run_viulcb}


def run_algorithm(name: str, game, episodes: int, *, cfg=None, seed=0, dtype=None, device=None):
    """Run context algorithm ``name`` ('exp3', 'vlearning' or 'viulcb'); returns its record.

    ``device`` None runs the numpy kernel; a torch device runs the torch kernel there.
    """
    import numpy as np

    from icarena.errors import ConfigError

    if name not in ALGORITHMS:
        raise ConfigError(f"unknown game algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    return ALGORITHMS[name](game, episodes, cfg=cfg, seed=seed,
                            dtype=np.float32 if dtype is None else dtype, device=device)


__all__ = [
    "ALGORITHMS",
    "EXP3Config",
    "VIULCBConfig",
    "VLearningConfig",
    "alpha_weights",
    "cce_lp",
    "cce_violation",
    "episode_policies",
    "matrix_gap",
    "mwu_cce",
    "mwu_cce_bound",
    "play",
    "run_algorithm",
    "run_exp3",
    "run_viulcb",
    "run_vlearning",
    "solve_zero_sum",
]

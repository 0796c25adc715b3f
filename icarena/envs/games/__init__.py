"""The games track: two-player zero-sum matrix and Markov games (Shi et al. 2024, ICGP).

* :class:`TabularGame` -- the exact game (rewards (H,S,A,B) to the max player, transitions
  (H,S,A,B,S), initial (S,)), optionally with a leading batch of games; :func:`stack` batches games.
* PettingZoo parallel envs ``icarena/matrix_game-v0`` and ``icarena/markov_game-v0``
  (:class:`MarkovGameParallelEnv`; AEC form via ``pettingzoo.utils.parallel_to_aec``), and
  :class:`BatchedGameParallelEnv` (``icarena/matrix_game_batch-v0``,
  ``icarena/markov_game_batch-v0``, keyword ``num_games``), which steps N such games at once.
* Gymnasium single-agent views ``icarena/MatrixGame-v0`` and ``icarena/MarkovGame-v0``
  (:class:`GameEnv`: one player against a fixed opponent policy), whose ``make_vec`` uses the
  batched numpy stepper :class:`GameVectorEnv`.
* :class:`GameBatch` and the pure functions :func:`step_states`, :func:`initial_states`,
  :func:`sample_categorical`: the batched stepper the context algorithms and data generators use.

All ids are registered by ``import icarena``.
"""

from icarena.envs.games.game import TabularGame, stack, truncated_normal
from icarena.envs.games.parallel import BatchedGameParallelEnv, MarkovGameParallelEnv, aec_env
from icarena.envs.games.single import GameEnv
from icarena.envs.games.vector import (
    GameBatch,
    GameVectorEnv,
    initial_states,
    sample_categorical,
    step_states,
)

MATRIX_DEFAULTS = {"H": 1, "S": 1, "A": 5, "B": 5}
MARKOV_DEFAULTS = {"H": 2, "S": 4, "A": 5, "B": 5}


def register_envs() -> None:
    """Register this track's Gymnasium and PettingZoo ids (idempotent)."""
    import gymnasium
    import pettingzoo

    for gym_id, pz_id, defaults, k in (
        ("icarena/MatrixGame-v0", "icarena/matrix_game-v0", MATRIX_DEFAULTS, 3000),
        ("icarena/MarkovGame-v0", "icarena/markov_game-v0", MARKOV_DEFAULTS, 300),
    ):
        batch_id = pz_id.replace("_game-", "_game_batch-")
        kwargs = {**defaults, "episodes": k}
        if gym_id not in gymnasium.registry:
            gymnasium.register(
                gym_id,
                entry_point="icarena.envs.games.single:GameEnv",
                vector_entry_point="icarena.envs.games.vector:GameVectorEnv",
                kwargs=kwargs,
            )
        try:
            pettingzoo.spec("parallel", pz_id)
        except Exception:  # not registered yet
            pettingzoo.register(
                "parallel", pz_id,
                entry_point="icarena.envs.games.parallel:MarkovGameParallelEnv",
                kwargs=dict(kwargs),
            )
        try:
            pettingzoo.spec("parallel", batch_id)
        except Exception:  # not registered yet
            pettingzoo.register(
                "parallel", batch_id,
                entry_point="icarena.envs.games.parallel:BatchedGameParallelEnv",
                kwargs={"num_games": 1, **kwargs},
            )


__all__ = [
    "BatchedGameParallelEnv",
    "GameBatch",
    "GameEnv",
    "GameVectorEnv",
    "MarkovGameParallelEnv",
    "TabularGame",
    "aec_env",
    "initial_states",
    "register_envs",
    "sample_categorical",
    "stack",
    "step_states",
    "truncated_normal",
]

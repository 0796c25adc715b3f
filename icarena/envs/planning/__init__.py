"""The planning track: random DAGs and ALPINE splits, path sampling, the ALPINE token format,
the path-finding env and Blocksworld (states, graphs, env, PDDL, plan validator).

Env ids: ``icarena/PathFinding-v0`` (:class:`PathFindingEnv`) and ``icarena/Blocksworld-v0``
(:class:`BlocksworldEnv`), registered by ``import icarena``.
"""

import gymnasium as gym

from icarena.envs.planning import tokens
from icarena.envs.planning.blocksworld import (
    BlocksworldEnv,
    BlocksworldProblem,
    BlocksworldVectorEnv,
    BWState,
    InvalidActionError,
    apply_action,
    blocksworld_graph,
    enumerate_states,
    legal_actions,
    make_state,
    parse_pddl_problem,
    parse_plan,
    path_to_plan,
    to_pddl,
    validate_plan,
)
from icarena.envs.planning.dag import (
    adjacency,
    alpine_split,
    dag_statistics,
    distances,
    edges_array,
    graph_from_edges,
    random_dag,
    reachability,
    reachable_pairs,
    sample_paths,
)
from icarena.envs.planning.pathfinding import PathFindingEnv, PathFindingVectorEnv

ENV_IDS = {
    "icarena/PathFinding-v0": "icarena.envs.planning.pathfinding:PathFindingEnv",
    "icarena/Blocksworld-v0": "icarena.envs.planning.blocksworld:BlocksworldEnv",
}
VECTOR_ENTRY_POINTS = {
    "icarena/PathFinding-v0": "icarena.envs.planning.pathfinding:PathFindingVectorEnv",
    "icarena/Blocksworld-v0": "icarena.envs.planning.blocksworld:BlocksworldVectorEnv",
}


def register_envs() -> None:
    """Register this track's env ids (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point,
                         vector_entry_point=VECTOR_ENTRY_POINTS[env_id])


__all__ = [
    "BWState",
    "BlocksworldEnv",
    "BlocksworldVectorEnv",
    "BlocksworldProblem",
    "InvalidActionError",
    "PathFindingEnv",
    "PathFindingVectorEnv",
    "adjacency",
    "alpine_split",
    "apply_action",
    "blocksworld_graph",
    "dag_statistics",
    "distances",
    "edges_array",
    "enumerate_states",
    "graph_from_edges",
    "legal_actions",
    "make_state",
    "parse_plan",
    "parse_pddl_problem",
    "path_to_plan",
    "random_dag",
    "reachability",
    "reachable_pairs",
    "register_envs",
    "sample_paths",
    "to_pddl",
    "tokens",
    "validate_plan",
]

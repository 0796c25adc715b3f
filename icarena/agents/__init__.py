"""Classical algorithms that act in icarena's tasks (numpy; no trained models):

* games: :func:`solve_zero_sum` (Nash LP), the context algorithms :func:`run_exp3`,
  :func:`run_vlearning`, :func:`run_viulcb` (batched over games) and :func:`play`;
* paths: :class:`BFSPlanner` (shortest paths) and :class:`RandomWalkPlanner`;
* regression: :func:`least_squares`, :func:`ridge`, :func:`knn`, :func:`averaging`,
  :func:`lasso`, ... with the signature ``(xs (P, n, d), ys (P, n), x_query (P, m, d)) ->
  (P, m)``, and :func:`prefix_predictions`.
"""

from icarena.agents.games import (
    ALGORITHMS,
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    cce_lp,
    matrix_gap,
    mwu_cce,
    play,
    run_algorithm,
    run_exp3,
    run_viulcb,
    run_vlearning,
    solve_zero_sum,
)
from icarena.agents.planning import BFSPlanner, RandomWalkPlanner
from icarena.agents.regression import (
    BASELINES,
    averaging,
    get_baseline,
    knn,
    lasso,
    least_squares,
    lsa_optimal,
    prefix_predictions,
    ridge,
    sparse_bayes,
    two_layer_nn,
)

__all__ = [
    "ALGORITHMS",
    "BASELINES",
    "BFSPlanner",
    "EXP3Config",
    "RandomWalkPlanner",
    "VIULCBConfig",
    "VLearningConfig",
    "averaging",
    "cce_lp",
    "get_baseline",
    "knn",
    "lasso",
    "least_squares",
    "lsa_optimal",
    "matrix_gap",
    "mwu_cce",
    "play",
    "prefix_predictions",
    "ridge",
    "run_algorithm",
    "run_exp3",
    "run_viulcb",
    "run_vlearning",
    "solve_zero_sum",
    "sparse_bayes",
    "two_layer_nn",
]

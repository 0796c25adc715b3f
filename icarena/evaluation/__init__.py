"""Evaluation: Nash gap, path validity, regression error curves, against classical baselines.

* games: :func:`nash_gap` (duality gap), :func:`nash_value`, :func:`best_response_values`,
  :func:`evaluate_game_players` (trained players, context algorithms and policy sources on the
  user's games -> :class:`GameCurves`), :func:`record_gap_curves`, :func:`uniform_gap`;
* paths: :func:`path_is_valid` / :func:`path_error` (the validity rule),
  :func:`evaluate_planners` (any mix of trained planners, BFS, random walks and callables on the
  user's pairs -> :class:`PlannerScores`), :func:`score_completions`, :func:`degrees`;
* regression: :func:`evaluate_regressors` (trained regressors, baselines and callables on the
  user's prompts -> :class:`RegressionCurves`), :func:`curve_stats`.
"""

from icarena.evaluation.icgp import GameCurves, evaluate_game_players
from icarena.evaluation.nash import (
    best_response_values,
    nash_gap,
    nash_value,
    record_gap_curves,
    uniform_gap,
)
from icarena.evaluation.planning import (
    CompletionScores,
    PathError,
    PlannerScores,
    degrees,
    evaluate_planners,
    path_error,
    path_is_valid,
    score_completions,
)
from icarena.evaluation.regression import RegressionCurves, curve_stats, evaluate_regressors

__all__ = [
    "CompletionScores",
    "GameCurves",
    "PathError",
    "PlannerScores",
    "RegressionCurves",
    "best_response_values",
    "curve_stats",
    "degrees",
    "evaluate_game_players",
    "evaluate_planners",
    "evaluate_regressors",
    "nash_gap",
    "nash_value",
    "path_error",
    "path_is_valid",
    "record_gap_curves",
    "score_completions",
    "uniform_gap",
]

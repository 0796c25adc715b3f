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

from icarena.lazy import lazy_exports as _lazy_exports

_EXPORTS = {  # name -> module; imported on first use (PEP 562), so that importing
    # one submodule (e.g. a dataset generator) does not import torch and every track
    "CompletionScores": "icarena.evaluation.planning",
    "GameCurves": "icarena.evaluation.icgp",
    "PathError": "icarena.evaluation.planning",
    "PlannerScores": "icarena.evaluation.planning",
    "RegressionCurves": "icarena.evaluation.regression",
    "best_response_values": "icarena.evaluation.nash",
    "curve_stats": "icarena.evaluation.regression",
    "degrees": "icarena.evaluation.planning",
    "evaluate_game_players": "icarena.evaluation.icgp",
    "evaluate_planners": "icarena.evaluation.planning",
    "evaluate_regressors": "icarena.evaluation.regression",
    "nash_gap": "icarena.evaluation.nash",
    "nash_value": "icarena.evaluation.nash",
    "path_error": "icarena.evaluation.planning",
    "path_is_valid": "icarena.evaluation.planning",
    "record_gap_curves": "icarena.evaluation.nash",
    "score_completions": "icarena.evaluation.planning",
    "uniform_gap": "icarena.evaluation.nash",
}


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())

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

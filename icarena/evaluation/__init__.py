from icarena.evaluation.nash import best_response_values, nash_gap, nash_value  # noqa: F401
from icarena.evaluation.planning import path_error, path_is_valid, score_completions  # noqa: F401

"""Run dir -> metrics and report: the registry behind ``icarena evaluate TASK``.

Each entry's module exposes an ``EvalConfig`` dataclass (with at least ``run_dir``; field
docstrings become the CLI help) and ``evaluate(cfg) -> dict`` (same summary shape as an
experiment's ``run``: ``{"report": path, "rows": [...]}``).
"""

from __future__ import annotations

# name -> (module, one-line help)
EVALUATORS: dict[str, tuple[str, str]] = {
    "path": ("icarena.evaluation.path_eval", "Path validity by degree vs BFS / random walk"),
    "icgp": ("icarena.evaluation.icgp", "Nash gap of in-context game players"),
    "regression": ("icarena.evaluation.regression", "Error vs in-context examples vs baselines"),
    "search": ("icarena.evaluation.search", "S3 evolutionary search on a trained supernet"),
}

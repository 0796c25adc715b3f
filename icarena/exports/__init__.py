"""Datasets -> other tools' formats: the registry behind ``icarena export FORMAT``.

* ``minari`` (:mod:`icarena.exports.minari_export`): single-agent episodes as a Minari dataset
  (optional extra ``icarena[minari]``): one player's view of the recorded games, rollouts of the
  BFS / random-walk planners on a path dataset's graph, regression prompts answered by least
  squares.
* ``history`` (:mod:`icarena.exports.history`): the complete learning histories of a ``games``
  dataset (each context-algorithm run, unsplit, with the algorithm's per-step policy as label),
  readable with numpy and json alone (layout in :data:`icarena.exports.history.FIELDS`).

Each module exposes a ``Config`` dataclass (field docstrings become the CLI help) and
``export(cfg) -> dict`` (the CLI summary: ``{"report": "", "rows": [...]}``). Targets follow
:mod:`icarena.lifecycle`: an existing target is refused unless ``--overwrite``, which replaces
only an export of the same kind; a target is written elsewhere and swapped in complete.
"""

from __future__ import annotations

# name -> (module, one-line help)
EXPORTERS: dict[str, tuple[str, str]] = {
    "minari": ("icarena.exports.minari_export",
               "Single-agent episodes (games, planners, regression) as a Minari dataset"),
    "history": ("icarena.exports.history",
                "Learning histories of a games dataset for AD / DPT (numpy + json)"),
}

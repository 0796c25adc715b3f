"""Dataset/task -> trained run dir: the registry behind ``icarena pretrain TASK``.

Each entry's module exposes a ``PretrainConfig`` dataclass (with at least ``out_dir``, ``seed``,
``overwrite``, ``resume`` and a ``train: TrainConfig`` section; field docstrings become the CLI
help) and ``pretrain(cfg)``, decorated with :func:`icarena.lifecycle.writes_run`.
Adding a task = one module + one line in ``PRETRAINERS``.
"""

from __future__ import annotations

# name -> (module, one-line help)
PRETRAINERS: dict[str, tuple[str, str]] = {
    "regression": ("icarena.pretraining.data.regression", "In-context regression (Garg et al.)"),
    "path": ("icarena.pretraining.path_lm", "Next-token training on ALPINE path lines"),
    "icgp": ("icarena.pretraining.game_lm", "ICGP: imitate EXP3/V-learning/VI-ULCB in context"),
    "supernet": ("icarena.pretraining.search", "S3 weight-sharing supernet on regression prompts"),
}

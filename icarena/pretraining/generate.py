"""Task -> dataset: the registry behind ``icarena generate TASK``.

Each generator module exposes a ``Config`` dataclass (with at least ``out_dir``, ``seed`` and
``overwrite`` fields; its field docstrings become the CLI help) and ``generate(cfg) -> Path``,
decorated with :func:`icarena.lifecycle.writes_dataset`, which writes a dataset with
:func:`icarena.pretraining.data.write_dataset`.
Adding a task = one module + one line in ``GENERATORS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from icarena.errors import ConfigError

# name -> (module, one-line help)
GENERATORS: dict[str, tuple[str, str]] = {
    "alpine": ("icarena.pretraining.data.alpine", "ALPINE path-finding lines on a random DAG"),
    "blocksworld": ("icarena.pretraining.data.blocksworld", "ALPINE paths on Blocksworld states"),
    "games": ("icarena.pretraining.data.games", "EXP3/V-learning/VI-ULCB runs on sampled games"),
    "regression": ("icarena.pretraining.data.regression", "In-context regression prompt pool"),
}


def generator_module(name: str) -> ModuleType:
    """Import and return the module of generator ``name``."""
    if name not in GENERATORS:
        raise ConfigError(
            f"unknown generator {name!r}; available: {', '.join(sorted(GENERATORS))}"
        )
    return importlib.import_module(GENERATORS[name][0])


def generate(name: str, cfg: Any | None = None) -> Path:
    """Run generator ``name`` with ``cfg`` (its ``Config``; defaults when None)."""
    module = generator_module(name)
    return module.generate(cfg if cfg is not None else module.Config())

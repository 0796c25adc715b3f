"""Named experiments that chain generate -> pretrain -> evaluate (``icarena run NAME``).

Each experiment module exposes a ``Config`` dataclass (with at least ``out_dir``, ``seed`` and
``overwrite``, and ``resume`` if it trains; its field docstrings become the CLI help) and
``run(cfg) -> dict``, decorated with :func:`icarena.lifecycle.writes_run`, which writes
``config.json``, ``metrics.json``, ``report.md`` and PNG plots into ``cfg.out_dir`` and returns a
summary
(``{"report": path, "rows": [...] }``) for the printed table.
Adding an experiment = one module + one line in ``EXPERIMENTS``; another installed package adds
one through the ``icarena.experiments`` entry-point group (:mod:`icarena.plugins`), read when
this registry is first imported: a module with ``Config``, ``run`` and ``quick_config`` (see
:data:`PLUGIN_API`), whose docstring's first line is the help line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from icarena.errors import ConfigError

# name -> (module, one-line help)
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "icgp-decentralized": ("icarena.experiments.icgp_decentralized", "ICGP: in-context EXP3"),
    "icgp-centralized": ("icarena.experiments.icgp_centralized", "ICGP: in-context VI-ULCB player"),
    "quickstart": (
        "icarena.experiments.quickstart",
        "A small version of every experiment (the `make demo` job).",
    ),
    "games-baselines": ("icarena.experiments.games_baselines", "Nash gap of game baselines"),
    "regression-linear": (
        "icarena.experiments.regression_linear",
        "GPT learns linear regression in context (Garg et al., d=5, k=11) vs LS / 3-NN / avg.",
    ),
    "regression-families": ("icarena.experiments.regression_families", "GPT per function family"),
    "regression-rate": ("icarena.experiments.regression_rate", "Hölder-rate slope vs theory"),
    "alpine": (
        "icarena.experiments.alpine",
        "ALPINE path-finding on a random DAG: accuracy by degree, adjacency/reachability probes.",
    ),
    "alpine-degrees": (
        "icarena.experiments.alpine_degrees",
        "ALPINE's accuracy by degree over several graphs and both splits, bootstrap intervals.",
    ),
    "blocksworld": (
        "icarena.experiments.blocksworld",
        "ALPINE on the 4-block Blocksworld graph, widths 30/60/120, plan validity.",
    ),
    "backbones": ("icarena.experiments.backbones", "Every backbone x regression/ALPINE/ICGP"),
    "sepnorm-query": (
        "icarena.experiments.sepnorm_query",
        "SepNorm vs ShareNorm on regression read at a query token, paired over seeds.",
    ),
    "search": ("icarena.experiments.search", "S3-style evolutionary search over the supernet"),
}


PLUGIN_API = ("Config", "run", "quick_config")
"""What a plugin experiment module defines, as the built-in ones do (quickstart runs every
registered experiment through ``quick_config(out_dir)``)."""


def _plugin_experiments() -> dict[str, tuple[str, str]]:
    import warnings

    from icarena import plugins

    out = {}
    for name, module in plugins.modules("icarena.experiments", EXPERIMENTS).items():
        try:
            mod = importlib.import_module(module)
            missing = [attr for attr in PLUGIN_API if not hasattr(mod, attr)]
            if missing:
                raise AttributeError(f"module {module} lacks {', '.join(missing)}")
        except Exception as e:  # a broken plugin must not break the other experiments
            warnings.warn(f"icarena plugin experiment {name!r} is skipped: "
                          f"{type(e).__name__}: {e}", stacklevel=2)
            continue
        doc = (mod.__doc__ or "").strip()
        out[name] = (module, doc.splitlines()[0] if doc else "(plugin)")
    return out


def experiment_module(name: str) -> ModuleType:
    """Import and return the module of experiment ``name``."""
    if name not in EXPERIMENTS:
        raise ConfigError(
            f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}"
        )
    return importlib.import_module(EXPERIMENTS[name][0])


# last, so that a plugin module may import this (fully defined) module
EXPERIMENTS.update(_plugin_experiments())

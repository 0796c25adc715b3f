"""Plugins: another installed package adds backbones, envs or experiments through entry points.

A plugin package declares entry points in its metadata (``pyproject.toml``)::

    [project.entry-points."icarena.backbones"]
    mybackbone = "mypkg.backbone"      # a module that registers the backbone on import, with
                                       # @icarena.pretraining.backbones.register("mybackbone", ...)
    [project.entry-points."icarena.envs"]
    mypkg = "mypkg.envs:register_envs" # called by ``import icarena``; registers Gymnasium /
                                       # PettingZoo ids (names starting with "icarena/" or not)
    [project.entry-points."icarena.experiments"]
    my-experiment = "mypkg.experiment" # a module with ``Config``, ``run(cfg)`` and
                                       # ``quick_config(out_dir)``, as icarena.experiments

Each registry reads its group lazily, the first time it is consulted; a built-in name always
wins over a plugin of the same name (the plugin is skipped with a warning). An env or experiment
plugin that fails to load is skipped with a warning naming it; a backbone plugin is imported
only when that backbone is used (``icarena list`` marks one that fails to load).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import metadata

GROUPS = ("icarena.backbones", "icarena.envs", "icarena.experiments")


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The entry points of ``group`` (one of :data:`GROUPS`), one per name, sorted by name."""
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; use one of {GROUPS}")
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins
    return [found[name] for name in sorted(found)]


def modules(group: str, builtin: dict[str, object] | None = None) -> dict[str, str]:
    """``{name: module}`` of the plugins of ``group``, without names already in ``builtin``."""
    out = {}
    for ep in entry_points(group):
        if builtin is not None and ep.name in builtin:
            warnings.warn(f"icarena plugin {ep.name!r} ({ep.value}, group {group}) is ignored: "
                          f"a built-in entry has that name; rename the plugin's entry point",
                          stacklevel=2)
            continue
        out[ep.name] = ep.module
    return out


PLUGIN_ENVS: dict[str, str] = {}
"""Env id -> name of the ``icarena.envs`` plugin that registered it (``icarena list`` shows
them whatever their names)."""


def _env_ids() -> set[str]:
    import gymnasium
    import pettingzoo

    return set(gymnasium.registry) | set(getattr(pettingzoo, "parallel_registry", {}))


def register_envs() -> None:
    """Call the ``register`` functions of every ``icarena.envs`` plugin."""
    for ep in entry_points("icarena.envs"):
        before = _env_ids()
        try:
            register: Callable[[], None] = ep.load()
            register()
        except Exception as e:  # a broken plugin must not break `import icarena`
            warnings.warn(f"icarena env plugin {ep.name!r} ({ep.value}) failed to register its "
                          f"envs: {type(e).__name__}: {e}", stacklevel=2)
        PLUGIN_ENVS.update(dict.fromkeys(_env_ids() - before, ep.name))

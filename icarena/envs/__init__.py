"""Gymnasium and PettingZoo environments and the exact objects behind them.

Importing this package registers every env id; each track registers its own ids in its
``register_envs()``, and every ``icarena.envs`` plugin (:mod:`icarena.plugins`) registers its own.
"""

from icarena.envs import games, planning, regression

for _track in (games, planning, regression):
    _track.register_envs()


def _register_plugins() -> None:
    from icarena import plugins

    plugins.register_envs()


_register_plugins()

__all__ = ["games", "planning", "regression"]

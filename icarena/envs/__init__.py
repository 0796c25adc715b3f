"""Gymnasium and PettingZoo environments and the exact objects behind them.

Importing this package registers every env id; each track registers its own ids in its
``register_envs()``.
"""

from icarena.envs import games, planning, regression

for _track in (games, planning, regression):
    _track.register_envs()

__all__ = ["games", "planning", "regression"]

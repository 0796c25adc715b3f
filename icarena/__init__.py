"""icarena: environments, datasets, backbones and evaluation for in-context learning.

``import icarena`` registers every environment id with Gymnasium (``icarena/MatrixGame-v0``, ...)
and PettingZoo (``icarena/matrix_game-v0``, ...).
"""

from icarena import envs  # noqa: F401  (registers the environment ids)
from icarena.version import __version__

__all__ = ["__version__", "envs"]

"""The regression track's environments: function families and ``icarena/Regression-v0``.

The env module is imported lazily by Gymnasium (string entry point), so ``import icarena`` stays
cheap.
"""

from icarena.envs.regression.families import (
    FAMILY_NAMES,
    RATE_TARGETS,
    Family,
    Prompts,
    holder_target,
    lacunary_target,
    make_family,
    rate_target,
    sample_prompts,
)

ENV_ID = "icarena/Regression-v0"


def register_envs() -> None:
    """Register this track's env ids (idempotent)."""
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="icarena.envs.regression.env:RegressionEnv",
                     vector_entry_point="icarena.envs.regression.env:RegressionVectorEnv")


__all__ = [
    "ENV_ID",
    "FAMILY_NAMES",
    "Family",
    "Prompts",
    "RATE_TARGETS",
    "holder_target",
    "lacunary_target",
    "make_family",
    "rate_target",
    "register_envs",
    "sample_prompts",
]

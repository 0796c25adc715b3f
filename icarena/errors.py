"""User-facing errors.

Every error that a user can fix by changing their input derives from :class:`IcarenaError`. Its
message names the problem and the fix; the CLI prints it as one line and exits with status 2
instead of showing a traceback.
"""

from __future__ import annotations


class IcarenaError(Exception):
    """A problem with the user's input (config, names, files) that they can fix."""


class ConfigError(IcarenaError, ValueError):
    """A config value, name or combination that is not allowed."""


class DatasetError(IcarenaError, OSError):
    """A dataset directory that is missing, corrupt, truncated or of the wrong kind."""


class CheckpointError(IcarenaError, OSError):
    """A run directory or checkpoint that is missing or does not fit the requested config."""


def check(condition: bool, message: str, error: type[IcarenaError] = ConfigError) -> None:
    """Raise ``error(message)`` unless ``condition`` holds."""
    if not condition:
        raise error(message)

"""User-facing errors.

Every error that a user can fix by changing their input derives from :class:`IcarenaError`. Its
message names the problem and the fix; the CLI prints it as one line and exits with status 2
instead of showing a traceback.
"""

from __future__ import annotations


class IcarenaError(Exception):
    """A problem with the user's input (config, names, files) that they can fix.

    ``fields`` names the settings the message is about, as Python argument paths
    (``"train.lr"``, ``"eval.n_prompts"``). Each ``{path}`` placeholder in the message is
    rendered as the Python path in ``str(error)`` (what a Python caller sees) and as the
    command-line flag (``--train.lr``, ``--eval.n-prompts``) by :meth:`cli_message` (what the
    ``icarena`` command prints).
    """

    def __init__(self, message: str = "", *args: object, fields: tuple[str, ...] | str = ()):
        self.template = str(message)
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        super().__init__(self._render(lambda f: f), *args)

    def _render(self, name) -> str:
        out = self.template
        for f in self.fields:
            out = out.replace("{" + f + "}", name(f))
        return out

    def cli_message(self) -> str:
        """The message with each field written as its command-line flag."""
        return self._render(flag)


def flag(path: str) -> str:
    """The command-line flag of a config field path (``"eval.n_prompts"`` ->
    ``--eval.n-prompts``)."""
    return "--" + path.replace("_", "-")


class ConfigError(IcarenaError, ValueError):
    """A config value, name or combination that is not allowed."""


class DatasetError(IcarenaError, OSError):
    """A dataset directory that is missing, corrupt, truncated or of the wrong kind."""


class CheckpointError(IcarenaError, OSError):
    """A run directory or checkpoint that is missing or does not fit the requested config."""


def check(condition: bool, message: str, error: type[IcarenaError] = ConfigError,
          *, fields: tuple[str, ...] | str = ()) -> None:
    """Raise ``error(message, fields=fields)`` unless ``condition`` holds."""
    if not condition:
        raise error(message, fields=fields)

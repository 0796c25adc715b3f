"""User-facing errors, and the rule for what is one.

The rule:

* **User errors** derive from :class:`IcarenaError`: anything the user can fix by changing their
  input - a flag or config value, a name, a combination of settings, a file or directory they
  pointed at (missing, corrupt, of the wrong kind, outside its directory, written by another
  version), a size above the memory ceiling (:mod:`icarena.limits`), an env action or kwarg. The
  message names the problem *and* the fix. The CLI prints it as exactly one line
  (``icarena: error: ...``) and exits with status 2, without a traceback; nothing on disk is
  changed. Operating-system errors on paths the user gave (an ``--out-dir`` under a file, a full
  or read-only disk) and command-line parse errors are reported the same way by the CLI.
* **Internal invariants** are not user errors: a condition that no input can break (a shape the
  code itself produced, a state one module hands to the next, a probability vector that must sum
  to one after our own normalisation) is checked with ``assert`` or raises ``RuntimeError``, so a
  broken invariant fails loudly as a bug with its traceback (exit status 1) instead of telling the
  user to change an input that was never the cause.

Validate at the boundary (stage entry points, env constructors and ``step``, public functions,
every file read from disk) and trust the values inside.
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


class ResourceError(IcarenaError, MemoryError):
    """A config whose estimated memory is above the ceiling (see :mod:`icarena.limits`)."""


def check(condition: bool, message: str, error: type[IcarenaError] = ConfigError,
          *, fields: tuple[str, ...] | str = ()) -> None:
    """Raise ``error(message, fields=fields)`` unless ``condition`` holds."""
    if not condition:
        raise error(message, fields=fields)


def one_line(message: object) -> str:
    """``message`` as a single line (newlines and runs of spaces collapsed), for the CLI."""
    return " ".join(str(message).split())

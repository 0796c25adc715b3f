"""The memory and work ceilings: sizes become estimates before anything is allocated or run.

Every stage (generators, pretraining, evaluation, experiments) and every env whose size grows
with its config estimates the bytes its largest allocations will need *before* allocating them
and refuses, with a one-line :class:`~icarena.errors.ResourceError`, when the estimate is above
the ceiling. The refusal names the estimate, the config flag that drives it and how to raise the
ceiling, so a typo such as ``--nodes 40000`` fails in milliseconds instead of dying inside numpy
(or swapping) minutes later.

The ceiling, first match wins:

1. the ``--max-memory SIZE`` flag, accepted by every ``icarena`` command (the CLI sets it for the
   duration of that command with :func:`max_memory`);
2. the environment variable ``ICARENA_MAX_MEMORY`` (e.g. ``ICARENA_MAX_MEMORY=32GiB``);
3. the default :data:`DEFAULT_MAX_MEMORY`, 16 GiB.

Loops whose cost grows without any memory to show for it (iterations of an inner solver,
episodes of play) are bounded the same way by the *work* ceiling, in elementary operations
(array element updates): ``--max-work N`` or ``ICARENA_MAX_WORK`` (default
:data:`DEFAULT_MAX_WORK`, 1e14, hours of numpy on one core), checked by :func:`require_work`.

``SIZE`` is a byte count with an optional unit: ``1GiB``, ``512MiB``, ``2GB``, ``1.5G``,
``123456`` (binary units ``KiB/MiB/GiB/TiB``, decimal ``KB/MB/GB/TB``, one-letter ``K/M/G/T`` =
binary), or ``none`` / ``off`` for no ceiling. Estimates are for the dominant arrays only (what
numpy or torch would be asked to allocate), so they are lower bounds of the peak memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from icarena.errors import ConfigError, ResourceError

ENV_VAR = "ICARENA_MAX_MEMORY"
FLAG = "--max-memory"
DEFAULT_MAX_MEMORY = 16 * 2**30
"""Default ceiling in bytes (16 GiB) when neither the flag nor the environment variable is set."""
WORK_ENV_VAR = "ICARENA_MAX_WORK"
WORK_FLAG = "--max-work"
DEFAULT_MAX_WORK = 10**14
"""Default work ceiling in elementary operations."""

_UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$")
_override: list[float] = []
_work_override: list[float] = []


def parse_size(text: str | int | float, what: str = FLAG) -> float:
    """Bytes described by ``text`` (``"1GiB"``, ``"512MB"``, ``"none"`` -> ``inf``)."""
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a size such as 8GiB, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        s = str(text).strip().lower()
        if s in ("none", "off", "inf", "unlimited"):
            return math.inf
        m = _SIZE.match(s)
        if not m or m.group(2) not in _UNITS:
            raise ConfigError(
                f"{what} must be a size such as 8GiB, 512MiB or 'none', got {text!r}"
            )
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive size such as 8GiB, got {text!r}")
    return value


def _in_force(stack: list[float], env_var: str, default: float) -> float:
    """The innermost ``with`` setting, else the environment variable, else the default."""
    if stack:
        return stack[-1]
    env = os.environ.get(env_var)
    if env is not None and env.strip():
        return parse_size(env, what=env_var)
    return float(default)


@contextmanager
def _pushed(stack: list[float], value: float) -> Iterator[float]:
    stack.append(value)
    try:
        yield value
    finally:
        stack.pop()


def ceiling() -> float:
    """The ceiling in bytes now in force (``inf`` when switched off)."""
    return _in_force(_override, ENV_VAR, DEFAULT_MAX_MEMORY)


def max_memory(size: str | int | float) -> contextlib.AbstractContextManager[float]:
    """Set the ceiling for the code inside the ``with`` block (what ``--max-memory`` does)."""
    return _pushed(_override, parse_size(size))


def work_ceiling() -> float:
    """The work ceiling now in force, in elementary operations (``inf`` when off)."""
    return _in_force(_work_override, WORK_ENV_VAR, DEFAULT_MAX_WORK)


def max_work(ops: str | int | float) -> contextlib.AbstractContextManager[float]:
    """Set the work ceiling for the code inside the ``with`` block (what ``--max-work`` does);
    ``ops`` is a count such as ``1e12`` (K/M/G/T suffixes allowed) or ``none``."""
    return _pushed(_work_override, parse_size(ops, what=WORK_FLAG))


def require_work(ops: float, what: str, flags: str) -> None:
    """Refuse (``ResourceError``) when ``ops`` elementary operations exceed the work ceiling."""
    limit = work_ceiling()
    if not ops <= limit:
        raise ResourceError(
            f"{what} needs about {float(ops):.2g} operations, above the work ceiling of "
            f"{limit:.2g}; lower {flags}, or raise the ceiling with {WORK_FLAG} N (or "
            f"{WORK_ENV_VAR}=N) if you mean to wait that long"
        )


def format_bytes(n: float) -> str:
    """``12.3 GiB`` style text of a byte count."""
    if not math.isfinite(n):
        return "unbounded"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def require(estimate: float, what: str, flags: str) -> None:
    """Refuse (``ResourceError``) when ``estimate`` bytes exceed the ceiling.

    Args:
        estimate: bytes the next allocations need (a Python int may exceed int64; inf/NaN are
            treated as too large).
        what: what would be allocated, e.g. ``"the n x n edge draw of random_dag"``.
        flags: the flag(s) that drive the estimate, e.g. ``"--nodes"``.
    """
    limit = ceiling()
    if not estimate <= limit:  # NaN and inf estimates are refused too
        raise ResourceError(
            f"{what} needs about {format_bytes(float(estimate))}, above the memory ceiling of "
            f"{format_bytes(limit)}; lower {flags}, or raise the ceiling with {FLAG} SIZE "
            f"(or {ENV_VAR}=SIZE) if this machine has the memory"
        )


def pop_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Remove ``--max-memory SIZE`` and ``--max-work N`` (also ``--flag=value``) from ``argv``;
    return the rest and ``{flag: value}`` (the last occurrence wins)."""
    rest: list[str] = []
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = next((f for f in (FLAG, WORK_FLAG) if arg == f or arg.startswith(f + "=")), None)
        if name is None:
            rest.append(arg)
        elif arg == name:
            if i + 1 >= len(argv):
                raise ConfigError(f"{name} needs a value, e.g. {name} "
                                  f"{'8GiB' if name == FLAG else '1e12'}")
            found[name] = argv[i + 1]
            i += 1
        else:
            found[name] = arg.split("=", 1)[1]
        i += 1
    return rest, found


@contextmanager
def from_flags(found: dict[str, str]) -> Iterator[None]:
    """Apply the ceilings that :func:`pop_flags` found for the duration of the block."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        if FLAG in found:
            stack.enter_context(max_memory(found[FLAG]))
        if WORK_FLAG in found:
            stack.enter_context(max_work(found[WORK_FLAG]))
        yield

"""The memory ceiling: sizes are turned into a byte estimate before anything is allocated.

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

``SIZE`` is a byte count with an optional unit: ``1GiB``, ``512MiB``, ``2GB``, ``1.5G``,
``123456`` (binary units ``KiB/MiB/GiB/TiB``, decimal ``KB/MB/GB/TB``, one-letter ``K/M/G/T`` =
binary), or ``none`` / ``off`` for no ceiling. Estimates are for the dominant arrays only (what
numpy or torch would be asked to allocate), so they are lower bounds of the peak memory.
"""

from __future__ import annotations

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

_UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$")
_override: list[float] = []


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


def ceiling() -> float:
    """The ceiling in bytes now in force (``inf`` when switched off)."""
    if _override:
        return _override[-1]
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return parse_size(env, what=ENV_VAR)
    return float(DEFAULT_MAX_MEMORY)


@contextmanager
def max_memory(size: str | int | float) -> Iterator[float]:
    """Set the ceiling for the code inside the ``with`` block (what ``--max-memory`` does)."""
    value = parse_size(size)
    _override.append(value)
    try:
        yield value
    finally:
        _override.pop()


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


def pop_flag(argv: list[str]) -> tuple[list[str], str | None]:
    """Remove ``--max-memory SIZE`` / ``--max-memory=SIZE`` from ``argv``; return the rest and
    the size text (None when absent). The last occurrence wins."""
    rest: list[str] = []
    size: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == FLAG:
            if i + 1 >= len(argv):
                raise ConfigError(f"{FLAG} needs a size, e.g. {FLAG} 8GiB")
            size = argv[i + 1]
            i += 2
            continue
        if arg.startswith(FLAG + "="):
            size = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, size

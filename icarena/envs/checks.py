"""Checks shared by the envs at their boundary: constructor kwargs, actions, penalties.

Every env validates what a user hands it (``gymnasium.make`` kwargs, ``step`` actions, reset
options) and raises :class:`~icarena.errors.ConfigError` naming the problem and the fix.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from icarena.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def strict_kwargs(init: F) -> F:
    """Decorate an env's ``__init__`` so that unknown or duplicated arguments raise a
    ConfigError listing the accepted ones (instead of Python's bare TypeError)."""
    sig = inspect.signature(init)
    names = [p for p in sig.parameters if p != "self"
             and sig.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                inspect.Parameter.VAR_KEYWORD)]

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            sig.bind(self, *args, **kwargs)
        except TypeError as e:
            unknown = sorted(set(kwargs) - set(names))
            what = f"unknown argument(s) {unknown}" if unknown else str(e)
            raise ConfigError(
                f"{type(self).__name__}: {what}; it takes: {', '.join(names)}"
            ) from None
        return init(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def integer_action(action: Any, n: int) -> int:
    """``action`` as an int in ``0..n-1``; bools, floats (even ``1.0``), strings and arrays of
    another shape are refused."""
    ok = (isinstance(action, int | np.integer) and not isinstance(action, bool | np.bool_)) or (
        isinstance(action, np.ndarray) and action.shape == ()
        and np.issubdtype(action.dtype, np.integer)
    )
    if not ok:
        raise ConfigError(
            f"action must be an integer in 0..{n - 1} (an int or a 0-d integer array), "
            f"got {action!r} of type {type(action).__name__}"
        )
    a = int(action)
    if not 0 <= a < n:
        raise ConfigError(f"action {a} is outside Discrete({n}); use 0..{n - 1}")
    return a


def penalty(value: Any, name: str = "invalid_penalty") -> float:
    """A finite, non-negative penalty as a float (a NaN penalty would make every reward NaN)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1 (bools and floats refused)."""
    if not (isinstance(value, int | np.integer) and not isinstance(value, bool)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)

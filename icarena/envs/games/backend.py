"""The array namespace of the games kernels: numpy on the CPU, or torch on any device.

The exact Nash gap (:func:`icarena.evaluation.nash_gap`) and the context algorithms
(:mod:`icarena.agents.games`) are written once against :class:`Backend`, so the same code runs
in numpy (``device=None``, the default) or in torch on ``device`` ("cpu", "cuda", "cuda:1", ...).
Random numbers are always drawn by numpy (the seed protocol of
:mod:`icarena.agents.games.rollout`) and copied to the device, so both backends see the same
draws; results agree to rounding (float64 everywhere).

Two details keep the kernels fast and the numpy backend bit-for-bit equal to the former code:

* reductions over a short last axis (A, B ≤ 7 actions) are unrolled into column operations
  (:func:`row_sum`, :func:`row_max`, :func:`row_min`), because a numpy reduction over a short
  contiguous axis pays a per-row cost that dominates small games. For fewer than 8 terms numpy's
  own sum adds them left to right, which is what the unrolled sum does, so the bits are the same;
  from 8 terms on the kernels call numpy's sum itself;
* inverse-CDF sampling (:func:`sample_rows`) accumulates the CDF left to right, as ``np.cumsum``.
"""

from __future__ import annotations

import warnings
from functools import reduce
from typing import Any

import numpy as np

from icarena.errors import ConfigError

UNROLL = 8
"""Unroll reductions over fewer than this many terms (numpy's pairwise sum starts at 8)."""


class Backend:
    """numpy (``device=None``) or torch on ``device``; only what the games kernels need."""

    def __init__(self, device: Any = None):
        self.is_torch = device is not None
        if self.is_torch:
            try:
                import torch
            except ImportError as e:  # pragma: no cover - torch is a dependency
                raise ConfigError("device= needs torch; install it or pass device=None") from e
            self.torch = torch
            try:
                self.device = torch.device(device)
                torch.empty(0, device=self.device)
            except (RuntimeError, TypeError, AssertionError) as e:
                raise ConfigError(f"cannot use torch device {device!r} ({e}); pass device=None "
                                  "for numpy or an available device such as 'cpu'") from e

    def __repr__(self) -> str:
        return f"Backend({'torch:' + str(self.device) if self.is_torch else 'numpy'})"

    # ------------------------------------------------------------------- creation, transfer
    def asarray(self, x: Any, dtype: str = "float64"):
        """``x`` (numpy, torch or nested sequences) as a backend array of ``dtype``."""
        if not self.is_torch:
            return np.asarray(x, dtype=dtype)
        t = self.torch
        dt = getattr(t, dtype)
        if isinstance(x, t.Tensor):
            return x.to(device=self.device, dtype=dt)
        arr = np.asarray(x, dtype=dtype)
        if not arr.flags.writeable and self.device.type == "cpu":
            arr = arr.copy()  # torch must not share read-only memory (other devices copy anyway)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return t.as_tensor(arr, device=self.device)

    def zeros(self, shape: tuple[int, ...], dtype: str = "float64"):
        if not self.is_torch:
            return np.zeros(shape, dtype)
        return self.torch.zeros(shape, dtype=getattr(self.torch, dtype), device=self.device)

    def full(self, shape: tuple[int, ...], value: float, dtype: str = "float64"):
        if not self.is_torch:
            return np.full(shape, value, dtype)
        return self.torch.full(shape, value, dtype=getattr(self.torch, dtype), device=self.device)

    def arange(self, n: int):
        if not self.is_torch:
            return np.arange(n)
        return self.torch.arange(n, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if not self.is_torch:
            return np.asarray(x)
        return x.detach().cpu().numpy()

    def stack(self, xs: list, axis: int):
        return self.torch.stack(xs, axis) if self.is_torch else np.stack(xs, axis)

    # -------------------------------------------------------------------------- row access
    def take_rows(self, x, idx):
        """x[idx] for a 2-d x and 1-d integer idx (np.take is several times faster)."""
        if self.is_torch:
            return x.index_select(0, idx)
        return np.take(x, idx, axis=0)

    def put_rows(self, x, idx, v) -> None:
        """x[idx] = v for a contiguous 2-d x and distinct idx (numpy: rows copied as opaque
        records, a plain copy of the same bytes, which is faster than float fancy indexing)."""
        if self.is_torch:
            x.index_copy_(0, idx, v.to(x.dtype))
            return
        row = np.dtype((np.void, x.shape[1] * x.itemsize))
        x.view(row).reshape(-1)[idx] = np.ascontiguousarray(v, x.dtype).view(row).reshape(-1)
        # (casting v to x's dtype first: the same rounding as an element-wise assignment)

    def permuted(self, x, axes: tuple[int, ...]):
        """x with its axes permuted, as a contiguous copy."""
        if self.is_torch:
            return x.permute(*axes).contiguous()
        return np.ascontiguousarray(x.transpose(axes))

    # ------------------------------------------------------------------------ element-wise
    def exp(self, x):
        return self.torch.exp(x) if self.is_torch else np.exp(x)

    def sqrt(self, x):
        return self.torch.sqrt(x) if self.is_torch else np.sqrt(x)

    def minimum(self, x, y):
        if not self.is_torch:
            return np.minimum(x, y)
        return self.torch.clamp(x, max=y) if np.isscalar(y) else self.torch.minimum(x, y)

    def maximum(self, x, y):
        if not self.is_torch:
            return np.maximum(x, y)
        return self.torch.clamp(x, min=y) if np.isscalar(y) else self.torch.maximum(x, y)

    def where(self, cond, x, y):
        return self.torch.where(cond, x, y) if self.is_torch else np.where(cond, x, y)

    def as_int(self, x):
        """Booleans or integers as int64."""
        return x.to(self.torch.int64) if self.is_torch else x.astype(np.int64)

    def as_float(self, x):
        return x.to(self.torch.float64) if self.is_torch else x.astype(np.float64)

    def nonzero(self, mask) -> tuple:
        """Indices of the True entries, one array per axis."""
        return tuple(self.torch.nonzero(mask, as_tuple=True)) if self.is_torch \
            else np.nonzero(mask)

    def einsum(self, eq: str, *ops):
        return self.torch.einsum(eq, *ops) if self.is_torch else np.einsum(eq, *ops)

    # ----------------------------------------------------------------------- whole-array
    def size(self, x) -> int:
        return int(x.numel()) if self.is_torch else int(x.size)

    def min_all(self, x) -> float:
        """min over all entries (+inf for an empty array; NaN if any entry is NaN)."""
        return float(x.min()) if self.size(x) else float("inf")

    def max_abs_dev(self, x, value: float) -> float:
        """max |x − value| over all entries (0 for an empty array)."""
        if self.size(x) == 0:
            return 0.0
        return float(abs(x - value).max())


NUMPY = Backend()
"""The numpy backend (``device=None``)."""


# ------------------------------------------------------------------ short-axis reductions
# Each takes the action axis ``axis``: -1 (rows (..., n), e.g. policies gathered per game), -2
# (the first of two action axes, e.g. a marginal over a) or 0 ((n, G) "action-major" arrays,
# whose per-action rows are contiguous vectors over games).
def _parts(x, axis: int) -> list:
    if axis == 0:
        return [x[i] for i in range(x.shape[0])]
    if axis == -2:
        return [x[..., i, :] for i in range(x.shape[-2])]
    return [x[..., i] for i in range(x.shape[-1])]


def _expand(v, axis: int):
    """A reduced array with the reduced axis put back (length 1), for axis 0 or -1."""
    return v[None] if axis == 0 else v[..., None]


def row_sum(x, axis: int = -1):
    """Sum over the action axis, bit-equal to numpy's sum in the row layout the former code used.

    Fewer than 8 terms are added left to right (what numpy's ``sum(-1)`` and ``sum(-2)`` do
    there); from 8 terms on numpy's own sum runs (for axis 0 on the rows (G, n), as before).
    """
    n = x.shape[axis]
    if n < UNROLL:
        return reduce(lambda a, b: a + b, _parts(x, axis))
    if axis != 0:
        return x.sum(axis)
    if hasattr(x, "movedim"):
        return x.movedim(0, -1).sum(-1)
    return np.ascontiguousarray(np.moveaxis(x, 0, -1)).sum(-1)


def row_max(x, xp: Backend, axis: int = -1):
    """Max over the action axis by element-wise maxima (exact in any order)."""
    if x.shape[axis] >= UNROLL:
        return x.amax(axis) if xp.is_torch else x.max(axis)
    return reduce(xp.maximum, _parts(x, axis))


def row_min(x, xp: Backend, axis: int = -1):
    """Min over the action axis by element-wise minima (exact in any order)."""
    if x.shape[axis] >= UNROLL:
        return x.amin(axis) if xp.is_torch else x.min(axis)
    return reduce(xp.minimum, _parts(x, axis))


def softmax_neg(scale, L, xp: Backend, axis: int = -1):
    """π ∝ exp(−scale·(L − min L)) over the action axis; ``scale`` a float or a per-row array.

    The operations of the former ``_softmax_neg`` helpers in the same order (so numpy gives the
    same bits): z = −scale·(L − min L), w = exp(z), π = w / Σ w.
    """
    m = _expand(row_min(L, xp, axis), axis)
    sc = -scale if np.isscalar(scale) else _expand(-scale, axis)
    w = xp.exp(sc * (L - m))
    return w / _expand(row_sum(w, axis), axis)


def sample_rows(probs, u, xp: Backend, axis: int = -1):
    """Inverse-CDF draws: index i with probability probs[i] along the action axis, uniforms u.

    The rule of :func:`icarena.envs.games.vector.sample_categorical` (count of CDF entries
    ≤ u·total, clamped to n − 1), with the CDF accumulated left to right as ``np.cumsum`` does.
    """
    n = probs.shape[axis]
    cols = _parts(probs, axis)
    cum = [cols[0]]
    for c in cols[1:]:
        cum.append(cum[-1] + c)
    thr = u * cum[-1]
    idx = xp.as_int(cum[0] <= thr)
    for c in cum[1:]:
        idx += c <= thr
    return xp.minimum(idx, n - 1)

"""Coarse correlated equilibria of the (Q^up, Q^low) pair used by VI-ULCB, exact and by MWU.

A joint distribution π ∈ Δ(A×B) is a CCE of the general-sum pair in which the max player
receives Q^up and the min player pays Q^low (Bai & Jin 2020; Xie et al. 2020; Liu et al. 2021)
if no player gains by a fixed unilateral deviation:

    E_π Q^up ≥ max_{a'} E_{b~π_B} Q^up(a', b)   and   E_π Q^low ≤ min_{b'} E_{a~π_A} Q^low(a, b').

* :func:`cce_lp` -- an exact CCE by an LP with A + B constraints (HiGHS); among all CCEs it picks
  one minimising E_π(Q^up − Q^low) (the optimism width; any CCE is valid for VI-ULCB).
* :func:`mwu_cce` -- the approximate CCE that ICGP's VI-ULCB uses (Shi et al. 2024, Alg. 2): both
  players run multiplicative weights (Hedge) against each other for M rounds from uniform,

      x_{i+1}(a) ∝ x_i(a) exp(+η (Q^up y_i)_a),      y_{i+1}(b) ∝ y_i(b) exp(−η (x_iᵀ Q^low)_b),

  and the output is the correlated average π = (1/M) Σ_{i<M} x_i y_iᵀ. With payoffs in a range of
  width L and η = √(8 ln n / M) / L (n = max(A, B)), Hedge's regret bound gives a CCE violation
  ≤ L √(ln n / (2M)) (:func:`mwu_cce_bound`). Vectorised over any leading batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linprog

from icarena.agents.games import compiled
from icarena.envs.games.backend import NUMPY, Backend, row_max, row_sum
from icarena.errors import IcarenaError, check


def _pair(q_up: Any, q_low: Any) -> tuple[np.ndarray, np.ndarray]:
    u, lo = np.asarray(q_up, dtype=np.float64), np.asarray(q_low, dtype=np.float64)
    check(u.ndim >= 2 and u.shape == lo.shape, f"q_up and q_low must share a shape (*batch, A, "
          f"B), got {u.shape} and {lo.shape}")
    return u, lo


def cce_violation(joint: Any, q_up: Any, q_low: Any) -> np.ndarray:
    """Largest unilateral deviation gain of π (*batch, A, B); ≤ 0 (up to rounding) for a CCE."""
    q_up, q_low = _pair(q_up, q_low)
    pi = np.asarray(joint, dtype=np.float64)
    x, y = pi.sum(-1), pi.sum(-2)
    dev_max = (q_up @ y[..., None])[..., 0].max(-1) - (pi * q_up).sum((-2, -1))
    dev_min = (pi * q_low).sum((-2, -1)) - (x[..., None, :] @ q_low)[..., 0, :].min(-1)
    return np.maximum(dev_max, dev_min)


def cce_lp(q_up: Any, q_low: Any) -> np.ndarray:
    """An exact CCE π (*batch, A, B) minimising E_π(Q^up − Q^low); one HiGHS LP per matrix."""
    q_up, q_low = _pair(q_up, q_low)
    batch, (A, B) = q_up.shape[:-2], q_up.shape[-2:]
    fu, fl = q_up.reshape(-1, A, B), q_low.reshape(-1, A, B)
    out = np.zeros((len(fu), A, B))
    for i in range(len(fu)):
        u, lo = fu[i], fl[i]
        # max player, deviation a': sum_{a,b} pi(a,b) (u[a',b] - u[a,b]) <= 0
        rows_a = u[:, None, :] - u[None, :, :]  # (a', a, b)
        # min player, deviation b': sum_{a,b} pi(a,b) (lo[a,b] - lo[a,b']) <= 0
        rows_b = lo[None, :, :] - lo.T[:, :, None]  # (b', a, b)
        A_ub = np.concatenate([rows_a.reshape(A, -1), rows_b.reshape(B, -1)])
        res = linprog((u - lo).ravel(), A_ub=A_ub, b_ub=np.zeros(A + B),
                      A_eq=np.ones((1, A * B)), b_eq=[1.0], bounds=(0.0, None), method="highs")
        if res.status != 0:
            raise IcarenaError(f"the CCE LP failed ({res.message})")
        p = np.clip(res.x, 0.0, None)
        out[i] = (p / p.sum()).reshape(A, B)
    return out.reshape(*batch, A, B)


def mwu_eta(A: int, B: int, iters: int, scale: float) -> float:
    """Default MWU step η = √(8 ln max(A, B) / M) / L for payoffs of range width L = scale."""
    check(iters >= 1 and scale > 0, "iters must be >= 1 and scale > 0")
    return float(np.sqrt(8.0 * np.log(max(A, B, 2)) / iters) / scale)


def mwu_cce_bound(A: int, B: int, iters: int, scale: float) -> float:
    """The CCE-violation bound L √(ln max(A, B) / (2M)) of :func:`mwu_cce` with the default η."""
    return float(scale * np.sqrt(np.log(max(A, B, 2)) / (2.0 * iters)))


def mwu_cce(
    q_up: Any,
    q_low: Any,
    *,
    iters: int = 200,
    eta: float | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Approximate CCE π (*batch, A, B) by M = ``iters`` rounds of Hedge self-play (see above).

    Args:
        q_up, q_low: (*batch, A, B) payoff matrices (any finite values; ``scale`` = their range).
        iters: M, number of rounds.
        eta: step size; None -> :func:`mwu_eta` (A, B, M, scale).
        scale: width L of the payoff range (H − h + 1 at VI-ULCB's step h), only used for eta.
    """
    q_up, q_low = _pair(q_up, q_low)
    check(isinstance(iters, int | np.integer) and iters >= 1, f"iters must be an int >= 1, "
          f"got {iters!r}")
    A, B = q_up.shape[-2:]
    eta = mwu_eta(A, B, iters, scale) if eta is None else float(eta)
    return mwu_kernel(q_up, q_low, int(iters), eta, NUMPY)


def mwu_kernel(q_up, q_low, iters: int, eta: float, xp: Backend):
    """The Hedge self-play of :func:`mwu_cce` on backend arrays (*batch, A, B).

    The operations of the former implementation in the same order, so numpy gives the same
    bits: the two matrix-vector products keep their batched matmul, everything element-wise
    runs action-major on (n, M) rows over the M = prod(batch) matrices (contiguous vector
    operations, no reduction over a short axis), and Σ_i x_i y_iᵀ accumulates in place. With
    numba installed, numpy arrays go to the compiled kernel
    (:func:`icarena.agents.games.compiled.mwu`: the same layout in cache-sized chunks of pairs,
    one fused pass per round between numpy's exponentials; equal to rounding).
    """
    batch, (A, B) = tuple(q_up.shape[:-2]), tuple(q_up.shape[-2:])
    if not xp.is_torch and compiled.use(np.float64, None, max(A, B)):
        return compiled.mwu(q_up, q_low, iters, eta)
    qu, ql = q_up.reshape(-1, A, B), q_low.reshape(-1, A, B)
    M = qu.shape[0]
    lx, ly = xp.zeros((A, M)), xp.zeros((B, M))  # log-weights, action-major
    acc = xp.zeros((A, B, M))
    for _ in range(iters):
        x = xp.exp(lx - row_max(lx, xp, axis=0)[None])
        x /= row_sum(x, axis=0)[None]
        y = xp.exp(ly - row_max(ly, xp, axis=0)[None])
        y /= row_sum(y, axis=0)[None]
        acc += x[:, None, :] * y[None, :, :]
        xr, yr = xp.permuted(x, (1, 0)), xp.permuted(y, (1, 0))  # (M, n) rows for the matmuls
        lx += xp.permuted(eta * (qu @ yr[:, :, None])[:, :, 0], (1, 0))
        ly -= xp.permuted(eta * (xr[:, None, :] @ ql)[:, 0, :], (1, 0))
    return xp.permuted(acc / iters, (2, 0, 1)).reshape(*batch, A, B)

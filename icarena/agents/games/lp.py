"""Exact Nash equilibria of zero-sum matrix games by linear programming (scipy HiGHS).

For a payoff matrix R ∈ R^{A×B} paid to the row (max) player (von Neumann 1928):

    max player:  maximise v  s.t.  (Rᵀ x)_b ≥ v ∀b,  Σ_a x_a = 1,  x ≥ 0,  v free
    min player:  minimise w  s.t.  (R y)_a ≤ w ∀a,  Σ_b y_b = 1,  y ≥ 0,  w free

Both optimal values equal the game value val(R) = max_x min_y xᵀRy (LP duality). Solved with
``scipy.optimize.linprog(method="highs")``, one pair of LPs per matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linprog

from icarena.errors import check


def _max_player_lp(R: np.ndarray) -> tuple[np.ndarray, float]:
    A, B = R.shape
    c = np.zeros(A + 1)
    c[-1] = -1.0  # minimise -v
    A_ub = np.hstack([-R.T, np.ones((B, 1))])  # v - (R^T x)_b <= 0
    A_eq = np.concatenate([np.ones(A), [0.0]])[None]
    bounds = [(0.0, None)] * A + [(None, None)]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(B), A_eq=A_eq, b_eq=[1.0], bounds=bounds,
                  method="highs")
    if res.status != 0:
        # R was checked finite by solve_zero_sum: a failing LP is a bug, not the user's input
        raise RuntimeError(f"the zero-sum LP failed ({res.message}) on a finite R")
    x = np.clip(res.x[:A], 0.0, None)
    return x / x.sum(), float(res.x[-1])


def solve_zero_sum(R: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
    """A Nash equilibrium (x, y, value) of the zero-sum matrix game R (row player maximises).

    Args:
        R: (A, B) payoffs to the row player, or a batch (*batch, A, B) (solved one by one).
    Returns:
        x (*batch, A) max-player strategy, y (*batch, B) min-player strategy and the value
        val(R) (a float for one matrix, else (*batch,)); value = max_x min_b (xᵀR)_b.
    """
    R = np.asarray(R, dtype=np.float64)
    check(R.ndim >= 2 and R.shape[-1] >= 1 and R.shape[-2] >= 1,
          f"R must have shape (*batch, A, B), got {R.shape}")
    check(bool(np.all(np.isfinite(R))), "R contains NaN or inf")
    batch, (A, B) = R.shape[:-2], R.shape[-2:]
    flat = R.reshape(-1, A, B)
    xs, ys, vals = np.zeros((len(flat), A)), np.zeros((len(flat), B)), np.zeros(len(flat))
    for i, m in enumerate(flat):
        xs[i], vals[i] = _max_player_lp(m)
        ys[i], _ = _max_player_lp(-m.T)  # min player maximises -R^T
    if not batch:
        return xs[0], ys[0], float(vals[0])
    return xs.reshape(*batch, A), ys.reshape(*batch, B), vals.reshape(batch)


def matrix_gap(R: Any, x: Any, y: Any) -> np.ndarray:
    """Duality gap max_a (Ry)_a − min_b (xᵀR)_b of a matrix game, batched (*batch,)."""
    R, x, y = (np.asarray(v, dtype=np.float64) for v in (R, x, y))
    return (R @ y[..., None])[..., 0].max(-1) - (x[..., None, :] @ R)[..., 0, :].min(-1)

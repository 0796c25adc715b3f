"""Exact Nash gap of zero-sum tabular games, by backward induction, batched over games/policies.

For a game (R, P, ρ) (see :class:`icarena.envs.games.TabularGame`) and Markov policies
μ_h(a|s) (max player) and ν_h(b|s) (min player), with V_{H+1} ≡ 0 (Bai & Jin 2020, arXiv
2002.04017; Shi et al. 2024, arXiv 2410.09701, §2):

    Q_h(s, a, b)       = r_h(s, a, b) + Σ_{s'} P_h(s'|s, a, b) · V_{h+1}(s')
    V^{†,ν}_h(s)       = max_a Σ_b ν_h(b|s) · Q^{†,ν}_h(s, a, b)        (max player's best response)
    V^{μ,†}_h(s)       = min_b Σ_a μ_h(a|s) · Q^{μ,†}_h(s, a, b)        (min player's best response)
    gap(μ, ν)          = Σ_s ρ(s) · (V^{†,ν}_1(s) − V^{μ,†}_1(s)) ≥ 0  (0 iff (μ, ν) is Nash).

This is the **duality gap**. For two-player zero-sum games it equals OpenSpiel's ``nash_conv``;
OpenSpiel's ``exploitability`` is half of it (NashConv / 2). For a matrix game it reduces to
max_a (Rν)_a − min_b (μᵀR)_b. Correlated per-state policies π_h(a, b|s) are scored through their
marginals (:func:`joint_marginals`).

Kernel: :func:`br_kernel` runs the induction for all games at once in numpy or, with
``device=``, in torch on that device (:mod:`icarena.envs.games.backend`). At each step h < H − 1
both continuations Σ_{s'} P_h(s'|s,a,b) V_{h+1}(s') (for V^{†,ν} and V^{μ,†}) come from one
pass over P_h; the last step reads no transitions (V_H ≡ 0), so a matrix game costs two small
contractions. Policies are validated (shape, NaN, negative entries, rows summing to 1) by two
whole-array reductions.

Batching: game arrays carry a batch shape ``gb`` and policies (*pb, H, S, A) / (*pb, H, S, B) a
batch shape ``pb``; the two broadcast (numpy rules) and every function returns arrays of the
broadcast batch shape. E.g. games (G,) with per-episode policies (G, K, H, S, A) are scored with
:func:`gap_curve`, which inserts the episode axis for you.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from icarena.envs.games.backend import Backend, row_max, row_min, row_sum
from icarena.envs.games.game import TabularGame
from icarena.errors import check

_NUMPY = Backend()


def _policy(x: Any, n: int, name: str, game: TabularGame, xp: Backend | None = None):
    """μ or ν as a float64 array of the backend, validated: shape (*batch, H, S, n), entries
    ≥ −1e-9, finite, rows summing to 1 within 1e-6. Two whole-array reductions (the minimum and
    the largest row-sum deviation), so validation costs little next to the gap itself."""
    xp = xp or _NUMPY
    p = xp.asarray(x)
    check(p.ndim >= 3 and tuple(p.shape[-3:]) == (game.H, game.S, n),
          f"{name} must have shape (*batch, H, S, {n}) = (*batch, {game.H}, {game.S}, {n}), "
          f"got {tuple(p.shape)}")
    lo = xp.min_all(p)
    check(lo == lo, f"{name} contains NaN")
    check(lo >= -1e-9, f"{name} has negative probabilities")
    err = xp.max_abs_dev(row_sum(p), 1.0)
    check(err <= 1e-6, f"{name} must sum to 1 over actions (largest deviation {err:.3g})")
    return p


def _continuation(P_h: np.ndarray, V_next: np.ndarray) -> np.ndarray:
    """Σ_{s'} P_h(s'|s,a,b) V(s'): P_h (..., S, A, B, S), V (..., S) -> (..., S, A, B)."""
    return (P_h @ V_next[..., None, None, :, None])[..., 0]


def _game_arrays(game: TabularGame, xp: Backend):
    if not xp.is_torch:
        return game.rewards, game.transitions, game.initial
    return xp.asarray(game.rewards), xp.asarray(game.transitions), xp.asarray(game.initial)


def best_response_values(
    game: TabularGame, max_policy: Any, min_policy: Any, *, device: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """(V^{†,ν}, V^{μ,†}), each (*batch, H + 1, S) with V[..., H, :] = 0 (see module docstring).

    Args:
        game: a (batch of) game(s), batch shape gb.
        max_policy: μ, (*pb, H, S, A).
        min_policy: ν, (*pb, H, S, B).
        device: None computes in numpy; a torch device ("cpu", "cuda", ...) computes there.
    Returns:
        numpy arrays (whatever the device).
    """
    xp = Backend(device) if device is not None else _NUMPY
    mu = _policy(max_policy, game.A, "max_policy", game, xp)
    nu = _policy(min_policy, game.B, "min_policy", game, xp)
    R, P, _ = _game_arrays(game, xp)
    v_max, v_min = br_kernel(R, P, mu, nu, xp)
    zero = xp.zeros(tuple(v_max[0].shape))
    return (xp.to_numpy(xp.stack([*v_max, zero], -2)), xp.to_numpy(xp.stack([*v_min, zero], -2)))


def br_kernel(R, P, mu, nu, xp: Backend) -> tuple[list, list]:
    """Best-response values by backward induction, one pass over the transition arrays.

    Args:
        R (*gb, H, S, A, B), P (*gb, H, S, A, B, S), mu (*pb, H, S, A), nu (*pb, H, S, B):
            backend arrays (validated).
    Returns:
        ([V^{†,ν}_h for h < H], [V^{μ,†}_h for h < H]), each (*batch, S).

    Both continuations Σ_{s'} P_h(s'|s,a,b) V_{h+1}(s') are formed in the same pass over P_h,
    the last step (V_H ≡ 0) reads no transitions at all, and the max/min over actions are
    column-wise, so a matrix game (H = S = 1) costs two small contractions and no transition read.
    """
    H = R.shape[-4]
    v_max: list = [None] * H
    v_min: list = [None] * H
    for h in range(H - 1, -1, -1):
        r = R[..., h, :, :, :]
        S, A, B = r.shape[-3:]
        if h == H - 1:
            q_max = q_min = r if xp.is_torch else np.ascontiguousarray(r)
        else:
            V = xp.stack([v_max[h + 1], v_min[h + 1]], -2)  # (*batch, 2, S')
            P_hT = P[..., h, :, :, :, :].reshape(*P.shape[:-5], S * A * B, S).swapaxes(-1, -2)
            r_flat = r.reshape(*r.shape[:-3], S * A * B)
            if xp.is_torch:
                c = V @ P_hT  # (*batch, 2, S·A·B): both continuations, one pass over P_h
                q_max, q_min = r_flat + c[..., 0, :], r_flat + c[..., 1, :]
            else:  # the same product written as (2, *batch, S·A·B); r added in place
                batch = np.broadcast_shapes(V.shape[:-2], P_hT.shape[:-2])
                c = np.empty((2, *batch, S * A * B))
                np.matmul(V, P_hT, out=np.moveaxis(c, 0, -2))
                c += r_flat
                q_max, q_min = c[0], c[1]
            q_max = q_max.reshape(*q_max.shape[:-1], S, A, B)
            q_min = q_min.reshape(*q_min.shape[:-1], S, A, B)
        v_max[h] = row_max(_contract("...ab,...b->...a", q_max, nu[..., h, :, :], xp), xp)
        v_min[h] = row_min(_contract("...a,...ab->...b", mu[..., h, :, :], q_min, xp), xp)
    return v_max, v_min


def _contract(eq: str, x, y, xp: Backend):
    """``einsum(eq, x, y)`` for a contraction over one action axis of per-(batch, s) matrices.

    When both operands share their leading shape (no broadcasting), they are flattened to one
    batch axis first: numpy's einsum is several times faster on 3-d operands than with an
    ellipsis over 3-4 axes.
    """
    lead = x.shape[:-2] if x.ndim > y.ndim else x.shape[:-1]
    if xp.is_torch or len(lead) <= 1 or lead != (y.shape[:-2] if y.ndim > x.ndim
                                                  else y.shape[:-1]):
        return xp.einsum(eq, x, y)
    flat = xp.einsum(eq, x.reshape(-1, *x.shape[len(lead):]), y.reshape(-1, *y.shape[len(lead):]))
    return flat.reshape(*lead, flat.shape[-1])


def gap_kernel(R, P, rho, mu, nu, xp: Backend):
    """Σ_s ρ(s) (V^{†,ν}_1(s) − V^{μ,†}_1(s)) of validated backend arrays (see br_kernel)."""
    v_max, v_min = br_kernel(R, P, mu, nu, xp)
    d = v_max[0] - v_min[0]
    if d.shape[-1] == 1:  # one state: no contraction (an elementwise product is exact)
        return (rho * d)[..., 0]
    return xp.einsum("...s,...s->...", rho, d)


def policy_values(game: TabularGame, max_policy: Any, min_policy: Any) -> np.ndarray:
    """V^{μ,ν} (*batch, H + 1, S): the value of the product pair (μ, ν) to the max player."""
    mu = _policy(max_policy, game.A, "max_policy", game)
    nu = _policy(min_policy, game.B, "min_policy", game)
    R, P = game.rewards, game.transitions
    batch = np.broadcast_shapes(R.shape[:-4], mu.shape[:-3], nu.shape[:-3])
    v = np.zeros((*batch, game.H + 1, game.S))
    for h in range(game.H - 1, -1, -1):
        q = R[..., h, :, :, :] + _continuation(P[..., h, :, :, :, :], v[..., h + 1, :])
        v[..., h, :] = np.einsum("...sa,...sab,...sb->...s", mu[..., h, :, :], q, nu[..., h, :, :])
    return v


def nash_gap(
    game: TabularGame, max_policy: Any, min_policy: Any, *, device: Any = None
) -> np.ndarray:
    """Duality gap V^{†,ν}(ρ) − V^{μ,†}(ρ) (= OpenSpiel NashConv = 2 × exploitability).

    Args:
        game: TabularGame with batch shape gb (``()`` for one game).
        max_policy: μ (*pb, H, S, A); min_policy: ν (*pb, H, S, B). Validated: a NaN, negative
            or non-normalised policy raises ConfigError.
        device: None (default) computes in numpy; a torch device ("cpu", "cuda", ...) computes
            in torch there (the policies may then be torch tensors on that device).
    Returns:
        float64 array of the broadcast batch shape of gb and pb (0-d for one game and one pair),
        a numpy array whatever the device.
    """
    xp = Backend(device) if device is not None else _NUMPY
    mu = _policy(max_policy, game.A, "max_policy", game, xp)
    nu = _policy(min_policy, game.B, "min_policy", game, xp)
    R, P, rho = _game_arrays(game, xp)
    return np.asarray(xp.to_numpy(gap_kernel(R, P, rho, mu, nu, xp)), dtype=np.float64)


def joint_marginals(joint: Any, A: int, B: int) -> tuple[np.ndarray, np.ndarray]:
    """Marginals (μ, ν) of correlated policies π(a, b) given as (..., A, B) or (..., A·B)."""
    j = np.asarray(joint, dtype=np.float64)
    if j.shape[-1] == A * B and not (j.ndim >= 2 and j.shape[-2:] == (A, B)):
        j = j.reshape(*j.shape[:-1], A, B)
    check(j.shape[-2:] == (A, B), f"joint policy must end in (A, B) or (A*B,), got {j.shape}")
    return j.sum(-1), j.sum(-2)


def nash_policies(game: TabularGame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Nash equilibrium (μ*, ν*) of the Markov game and its value function V*.

    Backward induction with an exact LP at every (h, s) (Shapley 1953):
    Q*_h = r_h + P_h V*_{h+1} and (μ*_h(s), ν*_h(s), V*_h(s)) = LP-Nash of Q*_h(s, ·, ·).
    One HiGHS LP per (game, h, s) -- fine for evaluation sets, not for inner loops.

    Returns:
        μ* (*gb, H, S, A), ν* (*gb, H, S, B), V* (*gb, H + 1, S).
    """
    from icarena.agents.games.lp import solve_zero_sum

    H, S, A, B = game.dims
    gb = game.batch_shape
    mu = np.zeros((*gb, H, S, A))
    nu = np.zeros((*gb, H, S, B))
    v = np.zeros((*gb, H + 1, S))
    for h in range(H - 1, -1, -1):
        q = game.rewards[..., h, :, :, :] + _continuation(
            game.transitions[..., h, :, :, :, :], v[..., h + 1, :])
        x, y, val = solve_zero_sum(q)  # batched over (*gb, S)
        mu[..., h, :, :], nu[..., h, :, :], v[..., h, :] = x, y, val
    return mu, nu, v


def nash_value(game: TabularGame) -> np.ndarray:
    """The game value V*(ρ) = Σ_s ρ(s) V*_1(s) to the max player, shape gb."""
    _, _, v = nash_policies(game)
    return np.einsum("...s,...s->...", game.initial, v[..., 0, :])


def running_average(policies: np.ndarray, axis: int = 1) -> np.ndarray:
    """State-wise running mean over episodes: out[k] = (1/(k+1)) Σ_{i≤k} policies[i] along axis."""
    p = np.asarray(policies, dtype=np.float64)
    n = p.shape[axis]
    shape = [1] * p.ndim
    shape[axis] = n
    return np.cumsum(p, axis=axis) / np.arange(1, n + 1).reshape(shape)


def gap_curve(
    game: TabularGame,
    max_policies: Any,
    min_policies: Any,
    *,
    average: bool = False,
) -> np.ndarray:
    """Nash gap of per-episode policies (the "Nash gap vs episode" curve of ICGP).

    Args:
        game: G games (batch shape (G,)).
        max_policies: (G, K, H, S, A): the Markov policy each player used in episode k (for a
            context algorithm: its policy at the first step of episode k; for a transformer:
            its all-(h, s) read-out after episodes < k).
        min_policies: (G, K, H, S, B).
        average: score the state-wise running average μ̄_k = mean_{i≤k} μ_i (and ν̄_k) instead
            of the last iterate. For H = 1 this is exactly the uniform mixture of the iterates;
            for H > 1 it is the state-wise average policy (a Markov policy, not the mixture).
    Returns:
        (G, K) gaps.
    """
    check(len(game.batch_shape) == 1, f"gap_curve needs games with batch shape (G,), "
          f"got {game.batch_shape}")
    mu = np.asarray(max_policies, dtype=np.float64)
    nu = np.asarray(min_policies, dtype=np.float64)
    G = game.batch_shape[0]
    check(mu.ndim == 5 and mu.shape[0] == G and nu.ndim == 5 and nu.shape[:2] == mu.shape[:2],
          f"policies must be (G, K, H, S, A) and (G, K, H, S, B) with G = {G}, "
          f"got {mu.shape} and {nu.shape}")
    if average:
        mu, nu = running_average(mu), running_average(nu)
    expanded = TabularGame.__new__(TabularGame)  # a validated game viewed with an episode axis
    object.__setattr__(expanded, "rewards", game.rewards[:, None])
    object.__setattr__(expanded, "transitions", game.transitions[:, None])
    object.__setattr__(expanded, "initial", game.initial[:, None])
    return nash_gap(expanded, mu, nu)


def uniform_gap(game: TabularGame) -> np.ndarray:
    """Nash gap of uniform play by both players, shape gb."""
    H, S, A, B = game.dims
    return nash_gap(game, np.full((H, S, A), 1.0 / A), np.full((H, S, B), 1.0 / B))


def curve_summary(gaps: np.ndarray, *, level: float = 0.9, seed: int = 0) -> dict[str, np.ndarray]:
    """Mean, std, min, max and a bootstrap interval over games of gap curves (G, K) -> each (K,)."""
    from icarena.evaluation.report import bootstrap_ci

    g = np.asarray(gaps, dtype=np.float64)
    lo, hi = bootstrap_ci(g, level=level, seed=seed)
    return {"mean": g.mean(0), "std": g.std(0), "min": g.min(0), "max": g.max(0),
            "ci_low": lo, "ci_high": hi}


def record_gap_curves(game: TabularGame, record: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Nash-gap-vs-episode curves (G, K) of a context-algorithm or :func:`play` record.

    Returns ``{"last": ..., "avg": ...}`` -- the per-episode (last-iterate) Markov pair and the
    state-wise running-average pair -- plus ``"cert"`` when the record carries
    V-learning's certified output policy (``cert/max``, ``cert/min``).
    """
    H = game.H
    mu, nu = record["pi/max"][:, ::H], record["pi/min"][:, ::H]
    out = {"last": gap_curve(game, mu, nu), "avg": gap_curve(game, mu, nu, average=True)}
    if "cert/max" in record:
        out["cert"] = gap_curve(game, record["cert/max"], record["cert/min"])
    return out

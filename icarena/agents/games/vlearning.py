"""V-learning self-play (decentralized), batched over games, with the certified output policy.

Each player runs its own copy seeing only its own (s, action, reward) stream (Bai, Jin & Yu 2020,
arXiv 2006.12007; Jin, Liu, Wang & Yu 2021, arXiv 2110.14555; ICGP Alg. 3). Per (h, s), with t the
visit count, own reward ρ (r for max, 1 − r for min) and n own actions (0-based h; V_H ≡ 0):

    α_t = (H + 1)/(H + t)
    Ṽ_h(s) ← (1 − α_t) Ṽ_h(s) + α_t (ρ + V_{h+1}(s') + β_t),    V_h(s) = min(H − h, Ṽ_h(s))
    ℓ = (H − ρ − V_{h+1}(s')) / H ∈ [0, 1],   ℓ̂(a) = ℓ·1[a = a_t] / (π_h(a|s) + γ_t)
    L_h(s) ← (1 − α_t) L_h(s) + α_t ℓ̂,        π_h(·|s) ∝ exp(−(η_t/α_t) L_h(s))

Schedules (``schedule``), with ι = log(H S n K / p):

* ``"jin2021"`` (default): β_t = c √(H³ n ι / t), η_t = γ_t = √(H ln n / (n t));
* ``"bai2020"``:            β_t = c √(H⁴ n ι / t), η_t = γ_t = √(ln n / (n t)).

For H = 1 both give α_t = 2/(1 + t) and η_t = √(ln n/(n t)): the "theory schedule" EXP3 of
ICGP's experiments (the faithful ICGP context algorithm; fixed-η EXP3 in exp3.py is the practical
one).

**Certified output policy** (ICGP Alg. 4; Bai et al. 2020): draw k ~ Unif[K]; at (h, s) with t
visits
before episode k, play uniform if t = 0, else the policy of the l-th visit with P(l = i) = α_t^i,
α_t^i = α_i Π_{j=i+1..t}(1 − α_j). Its per-(h, s) action distribution given k is
m_t = Σ_i α_t^i μ^i, computed by m_t = (1 − α_t) m_{t−1} + α_t μ^t (m_0 = uniform), so the output
after K episodes plays, at (h, s), (1/K) Σ_k m_{t_k(h, s)}. The record's ``cert/max|min`` holds this
for every K. For H = 1 it is exactly the certified policy; for H > 1 the real certified policy is
non-Markov (the index chosen at step h carries over) and ``cert`` is its state-wise marginal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from icarena.agents.games import compiled
from icarena.agents.games.rollout import (
    Snapshots,
    Trace,
    check_episodes,
    check_games,
    step_uniforms,
)
from icarena.envs.games.backend import NUMPY, Backend, sample_rows, softmax_neg
from icarena.envs.games.game import TabularGame
from icarena.errors import check

SCHEDULES = ("jin2021", "bai2020")


@dataclass
class VLearningConfig:
    """Hyperparameters of V-learning (the same for both players)."""

    schedule: str = "jin2021"
    """Learning-rate/bonus schedule: 'jin2021' (Jin et al. 2021) or 'bai2020' (Bai et al. 2020)."""
    c: float = 0.1
    """Bonus constant c in β_t (tuned in [0.1, 1]); does not affect H = 1 policies."""
    p: float = 0.1
    """Failure probability in ι = log(H S n K / p)."""

    def validate(self) -> None:
        check(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, "
              f"got {self.schedule!r}")
        check(self.c >= 0, f"c must be >= 0, got {self.c}")
        check(0 < self.p < 1, f"p must lie in (0, 1), got {self.p}")


def alpha_weights(t: int, H: int) -> np.ndarray:
    """α_t^i for i = 1..t (sum to 1 for t ≥ 1), α_i = (H + 1)/(H + i)."""
    i = np.arange(1, t + 1)
    alpha = (H + 1.0) / (H + i)
    tail = np.concatenate([np.cumprod((1.0 - alpha)[::-1])[::-1][1:], [1.0]])
    return alpha * tail


def schedule(H: int, S: int, n: int, K: int, cfg: VLearningConfig) -> np.ndarray:
    """The tables (α_t, β_t, η_t) over the visit count t = 0..K, (3, K + 1) float64, of a
    player with n actions (entry t = 0 is never read)."""
    iota = np.log(H * S * n * K / cfg.p)
    t = np.arange(K + 1, dtype=np.float64)
    t[0] = 1.0  # never read
    alpha = (H + 1.0) / (H + t)
    if cfg.schedule == "jin2021":
        beta = cfg.c * np.sqrt(H**3 * n * iota / t)
        eta = np.sqrt(H * np.log(max(n, 2)) / (n * t))
    else:
        beta = cfg.c * np.sqrt(H**4 * n * iota / t)
        eta = np.sqrt(np.log(max(n, 2)) / (n * t))
    return np.stack([alpha, beta, eta])


class _Player:
    """One V-learning copy per game, flat over (g, h, s): V, Ṽ and the visit counts N as
    vectors, and the per-(h, s) policy π, loss accumulator L and certified mixture m as one
    array ``st`` (G·H·S, 3, n), so a visit reads and writes each game's row once."""

    def __init__(self, G: int, H: int, S: int, n: int, K: int, cfg: VLearningConfig, xp: Backend,
                 dtype=np.float32):
        self.H, self.S, self.n, self.xp = H, S, n, xp
        steps_left = (H - np.arange(H + 1)).astype(np.float64)  # H - h, 0 at h = H
        V = np.broadcast_to(steps_left[None, :, None], (G, H + 1, S))
        self.V = xp.asarray(V.reshape(-1).copy())
        self.Vt = xp.asarray(V[:, :H].reshape(-1).copy())
        self.N = xp.zeros((G * H * S,), "int64")
        st = np.zeros((G * H * S, 3, n))
        st[:, 0] = st[:, 2] = 1.0 / n  # π and m start uniform, L at 0
        self.st = xp.asarray(st)
        self.rows = self.st.reshape(G * H * S, 3 * n)
        # π in the record's dtype (numpy), kept in step with st: a snapshot is then a plain copy
        self.pi_rec = xp.asarray(st[:, 0], "float64" if xp.is_torch else np.dtype(dtype).name)
        self.alpha, self.beta, self.eta = (xp.asarray(x) for x in schedule(H, S, n, K, cfg))
        self.g = xp.arange(G)

    def policy(self):
        """π as (G·H·S, n), in the record's dtype."""
        return self.pi_rec

    def visit(self, row):
        """The visited rows (π, L, m) action-major: (3, n, G)."""
        G, n = len(self.g), self.n
        return self.xp.permuted(self.xp.take_rows(self.rows, row).reshape(G, 3, n), (1, 2, 0))

    def update(self, h: int, row, X, vrow_next, act, rew) -> None:
        """Visit (h, s) of every game: ``row`` = flat (g, h, s), ``X`` = :meth:`visit` (row),
        ``vrow_next`` = flat (g, h + 1, s') in V; own action ``act``, own reward ``rew``."""
        H, xp, G = self.H, self.xp, len(self.g)
        self.N[row] += 1
        t = self.N[row]
        alpha, beta, eta = self.alpha[t], self.beta[t], self.eta[t]
        v_next = self.V[vrow_next]
        vt = (1 - alpha) * self.Vt[row] + alpha * (rew + v_next + beta)
        self.Vt[row] = vt
        self.V[row + (row // self.S // H) * self.S] = xp.minimum(vt, float(H - h))
        pi_hs, L_old, m_old = X[0], X[1], X[2]  # (n, G) each; π_hs is the policy just used
        loss = (H - rew - v_next) / H
        a1 = 1 - alpha
        # L ← (1 − α) L + α ℓ̂ with ℓ̂ zero off the action taken (adding α·0 changes no bit)
        L = a1 * L_old
        at = act * G + self.g
        L.reshape(-1)[at] += alpha * (loss / (pi_hs.reshape(-1)[at] + eta))
        new = xp.stack([softmax_neg(eta / alpha, L, xp, axis=0), L, a1 * m_old + alpha * pi_hs], 0)
        new = xp.permuted(new, (2, 0, 1))  # (G, 3, n)
        xp.put_rows(self.rows, row, new.reshape(G, 3 * self.n))
        xp.put_rows(self.pi_rec, row, new[:, 0])


def run_vlearning(
    game: TabularGame,
    episodes: int,
    *,
    cfg: VLearningConfig | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
    device: Any = None,
) -> dict[str, np.ndarray]:
    """Run V-learning self-play for K episodes on G games at once.

    Args:
        game: G games (batch (G,)), any H, S.
        episodes: K.
        cfg: hyperparameters (default :class:`VLearningConfig`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
        device: None runs the kernel in numpy; a torch device ("cpu", "cuda", ...) runs it in
            torch there (same draws, same record, equal to rounding).
    Returns:
        The record of :mod:`icarena.agents.games.rollout` plus ``cert/max`` (G, K, H, S, A) and
        ``cert/min`` (G, K, H, S, B) (certified output policy after k + 1 episodes).

    The kernel keeps each player's per-(h, s) statistics flat over (game, h, s), reads the
    schedules (α_t, β_t, η_t) from tables over the visit count t, and touches one row per game
    and player at every step. With numba installed, ``device=None`` and a float32/float64
    record run the compiled kernel of :mod:`icarena.agents.games.compiled` instead (same
    record, equal to rounding).
    """
    cfg = cfg or VLearningConfig()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    rng = np.random.default_rng(seed)
    if compiled.use(dtype, device, max(A, B)):
        return compiled.run_vlearning(
            game.rewards, game.transitions, np.broadcast_to(game.initial, (G, S)), K,
            schedule(H, S, A, K, cfg), schedule(H, S, B, K, cfg), rng, dtype)
    xp = Backend(device) if device is not None else NUMPY
    mx, mn = _Player(G, H, S, A, K, cfg, xp, dtype), _Player(G, H, S, B, K, cfg, xp, dtype)
    R = xp.asarray(game.rewards).reshape(-1)
    P = xp.asarray(game.transitions).reshape(-1, S)
    rho = xp.asarray(game.initial)
    T = K * H
    snap_x, snap_y = Snapshots(G, T, (H, S, A), xp, dtype), Snapshots(G, T, (H, S, B), xp, dtype)
    cert_x, cert_y = Snapshots(G, K, (H, S, A), xp, dtype), Snapshots(G, K, (H, S, B), xp, dtype)
    cols = {k: Trace(G, T, None, xp, np.int64) for k in ("traj/s", "traj/s_next", "act/max",
                                                          "act/min")}
    rew = Trace(G, T, None, xp, np.float64)
    sum_x, sum_y = xp.zeros((G, H, S, A)), xp.zeros((G, H, S, B))
    g = xp.arange(G)
    for t, u, u0 in step_uniforms(rng, G, K, xp, H=H):
        k, h = divmod(t, H)
        if h == 0:
            sum_x += mx.st[:, 2].reshape(G, H, S, A)
            sum_y += mn.st[:, 2].reshape(G, H, S, B)
            cert_x.put_divided(k, sum_x, k + 1)
            cert_y.put_divided(k, sum_y, k + 1)
            s = sample_rows(rho, u0, xp)
        snap_x.put(t, mx.policy().reshape(G, H, S, A))
        snap_y.put(t, mn.policy().reshape(G, H, S, B))
        row = (g * H + h) * S + s
        X, Y = mx.visit(row), mn.visit(row)
        a = sample_rows(X[0], u[:, 0], xp, axis=0)
        b = sample_rows(Y[0], u[:, 1], xp, axis=0)
        cell = (row * A + a) * B + b
        r = R[cell]
        s_next = sample_rows(xp.take_rows(P, cell), u[:, 2], xp)
        for key, v in (("traj/s", s), ("traj/s_next", s_next), ("act/max", a), ("act/min", b)):
            cols[key].put(t, v)
        rew.put(t, r)
        vrow_next = (g * (H + 1) + h + 1) * S + s_next
        mx.update(h, row, X, vrow_next, a, r)
        mn.update(h, row, Y, vrow_next, b, 1.0 - r)
        s = s_next
    out = {key: c.result() for key, c in cols.items()}
    out["traj/h"] = np.broadcast_to(np.arange(T) % H, (G, T)).astype(np.int64)
    out["rew/max"] = rew.result()
    out["pi/max"], out["pi/min"] = snap_x.result(), snap_y.result()
    out["cert/max"], out["cert/min"] = cert_x.result(), cert_y.result()
    return out

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

import numpy as np

from icarena.agents.games.rollout import Recorder, check_episodes, check_games
from icarena.envs.games.game import TabularGame
from icarena.envs.games.vector import initial_states, sample_categorical, step_states
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


class _Player:
    """One V-learning copy per game: arrays indexed [g, h, s(, action)]."""

    def __init__(self, G: int, H: int, S: int, n: int, K: int, cfg: VLearningConfig):
        self.H, self.n, self.cfg = H, n, cfg
        steps_left = (H - np.arange(H + 1)).astype(np.float64)  # H - h, 0 at h = H
        self.V = np.broadcast_to(steps_left[None, :, None], (G, H + 1, S)).copy()
        self.Vt = self.V.copy()
        self.N = np.zeros((G, H, S), np.int64)
        self.pi = np.full((G, H, S, n), 1.0 / n)
        self.L = np.zeros((G, H, S, n))
        self.m = np.full((G, H, S, n), 1.0 / n)  # certified per-(h, s) mixture m_t
        self.iota = np.log(H * S * n * K / cfg.p)

    def update(self, h: int, s, act, rew, s_next) -> None:
        H, n, cfg = self.H, self.n, self.cfg
        g = np.arange(len(s))
        self.N[g, h, s] += 1
        t = self.N[g, h, s].astype(np.float64)
        alpha = (H + 1.0) / (H + t)
        if cfg.schedule == "jin2021":
            beta = cfg.c * np.sqrt(H**3 * n * self.iota / t)
            eta = np.sqrt(H * np.log(max(n, 2)) / (n * t))
        else:
            beta = cfg.c * np.sqrt(H**4 * n * self.iota / t)
            eta = np.sqrt(np.log(max(n, 2)) / (n * t))
        v_next = self.V[g, h + 1, s_next]
        self.Vt[g, h, s] = (1 - alpha) * self.Vt[g, h, s] + alpha * (rew + v_next + beta)
        self.V[g, h, s] = np.minimum(H - h, self.Vt[g, h, s])
        pi_hs = self.pi[g, h, s]  # (G, n) the policy used at this visit
        loss = (H - rew - v_next) / H
        est = np.zeros_like(pi_hs)
        est[g, act] = loss / (pi_hs[g, act] + eta)
        L = (1 - alpha)[:, None] * self.L[g, h, s] + alpha[:, None] * est
        self.L[g, h, s] = L
        self.m[g, h, s] = (1 - alpha)[:, None] * self.m[g, h, s] + alpha[:, None] * pi_hs
        z = -(eta / alpha)[:, None] * (L - L.min(-1, keepdims=True))
        w = np.exp(z)
        self.pi[g, h, s] = w / w.sum(-1, keepdims=True)


def run_vlearning(
    game: TabularGame,
    episodes: int,
    *,
    cfg: VLearningConfig | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
) -> dict[str, np.ndarray]:
    """Run V-learning self-play for K episodes on G games at once.

    Args:
        game: G games (batch (G,)), any H, S.
        episodes: K.
        cfg: hyperparameters (default :class:`VLearningConfig`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
    Returns:
        The record of :mod:`icarena.agents.games.rollout` plus ``cert/max`` (G, K, H, S, A) and
        ``cert/min`` (G, K, H, S, B) (certified output policy after k + 1 episodes).
    """
    cfg = cfg or VLearningConfig()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    rng = np.random.default_rng(seed)
    mx, mn = _Player(G, H, S, A, K, cfg), _Player(G, H, S, B, K, cfg)
    rec = Recorder(G, K, H, S, A, B, joint=False, dtype=dtype)
    cert_x, cert_y = np.zeros((G, K, H, S, A), dtype), np.zeros((G, K, H, S, B), dtype)
    sum_x, sum_y = np.zeros((G, H, S, A)), np.zeros((G, H, S, B))
    g = np.arange(G)
    for k in range(K):
        sum_x += mx.m
        sum_y += mn.m
        cert_x[:, k], cert_y[:, k] = sum_x / (k + 1), sum_y / (k + 1)
        s = initial_states(game, rng.random(G))
        for h in range(H):
            t = k * H + h
            rec.policies(t, mx.pi, mn.pi)
            u = rng.random((G, 3))
            a = sample_categorical(mx.pi[g, h, s], u[:, 0])
            b = sample_categorical(mn.pi[g, h, s], u[:, 1])
            r, s_next = step_states(game, h, s, a, b, u[:, 2])
            rec.step(t, s, a, b, r, s_next)
            mx.update(h, s, a, r, s_next)
            mn.update(h, s, b, 1.0 - r, s_next)
            s = s_next
    out = rec.data
    out["cert/max"], out["cert/min"] = cert_x, cert_y
    return out

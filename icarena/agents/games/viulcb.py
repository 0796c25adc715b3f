"""VI-ULCB (centralized, model-based optimistic/pessimistic value iteration), batched over games.

Bai & Jin 2020 ("Provable Self-Play Algorithms for Competitive RL", arXiv 2002.04017, Alg. 1), with
the per-state equilibrium replaced by a coarse correlated equilibrium as in ICGP (Shi et al. 2024,
arXiv 2410.09701, Alg. 1–2). At the start of every episode, from visit counts N_h(s, a, b),
empirical rewards r̂ and transitions P̂ (0-based h, V_H ≡ 0, t = N_h(s, a, b)):

    Q^up_h  = min(r̂ + P̂ V^up_{h+1}  + β_t, H − h)     (= H − h  if t = 0)
    Q^low_h = max(r̂ + P̂ V^low_{h+1} − β_t, 0)         (= 0      if t = 0)
    π_h(·,·|s) = EQ(Q^up_h(s), Q^low_h(s)),  V^up_h(s) = E_π Q^up_h(s),  V^low_h(s) = E_π Q^low_h(s)

with β_t = c √(S H² ι / t), ι = log(S A B T / p); both players then act jointly,
(a, b) ~ π_h(·|s_h).
EQ (``eq``): ``"mwu"`` (default, ICGP Alg. 2: M rounds of Hedge self-play,
η = √(8 ln max(A,B)/M)/(H − h),
see :func:`icarena.agents.games.cce.mwu_cce`) or ``"lp"`` (an exact CCE by LP, one HiGHS solve per
(game, h, s): slow). The original VI-ULCB uses a general-sum Nash solve; ICGP and Nash-VI
(Liu et al. 2021) use a CCE, which is what the pretraining targets imitate. The caps use H − h
(the remaining steps) rather than H; both are valid upper bounds and the former is tighter.

The record has ``pi/joint`` (the correlated π at every (h, s)) and its marginals ``pi/max``,
``pi/min``; the Nash gap of the marginals is the gap of the correlated policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icarena.agents.games.cce import cce_lp, mwu_cce
from icarena.agents.games.rollout import Recorder, check_episodes, check_games
from icarena.envs.games.game import TabularGame
from icarena.envs.games.vector import initial_states, sample_categorical, step_states
from icarena.errors import check

EQS = ("mwu", "lp")


@dataclass
class VIULCBConfig:
    """Hyperparameters of VI-ULCB."""

    c: float = 0.02
    """Bonus constant c in β_t = c √(S H² ι / t). The usual range [0.1, 1] keeps β ≥ 1 for
    hundreds of visits per (s, a, b), so at K = 300 on H=2, S=4, A=B=5 games VI-ULCB barely leaves
    uniform play (docs/results/games-baselines.md)."""
    p: float = 0.1
    """Failure probability in ι = log(S A B T / p)."""
    eq: str = "mwu"
    """Per-state equilibrium: 'mwu' (approximate CCE, ICGP) or 'lp' (exact CCE)."""
    mwu_iters: int = 200
    """MWU rounds M."""
    mwu_eta: float | None = None
    """MWU step size; None -> √(8 ln max(A, B) / M) / (H − h)."""

    def validate(self) -> None:
        check(self.c >= 0, f"c must be >= 0, got {self.c}")
        check(0 < self.p < 1, f"p must lie in (0, 1), got {self.p}")
        check(self.eq in EQS, f"eq must be one of {EQS}, got {self.eq!r}")
        check(self.mwu_iters >= 1, f"mwu_iters must be >= 1, got {self.mwu_iters}")
        check(self.mwu_eta is None or self.mwu_eta > 0, "mwu_eta must be > 0 or None")


def plan(
    counts: np.ndarray,
    trans_counts: np.ndarray,
    reward_sums: np.ndarray,
    cfg: VIULCBConfig,
    iota: float,
) -> np.ndarray:
    """One VI-ULCB planning pass: the joint policies π (G, H, S, A, B) from the statistics.

    Args:
        counts: N (G, H, S, A, B) visit counts.
        trans_counts: (G, H, S, A, B, S) next-state counts.
        reward_sums: (G, H, S, A, B) sums of observed rewards.
        cfg: hyperparameters.
        iota: ι = log(S A B T / p).
    """
    G, H, S, A, B = counts.shape
    pi = np.zeros((G, H, S, A, B))
    v_up, v_low = np.zeros((G, S)), np.zeros((G, S))
    for h in range(H - 1, -1, -1):
        n = counts[:, h].astype(np.float64)
        seen = n > 0
        n1 = np.maximum(n, 1.0)
        r_hat = reward_sums[:, h] / n1
        p_hat = trans_counts[:, h] / n1[..., None]
        beta = cfg.c * np.sqrt(S * H**2 * iota / n1)
        cont_up = (p_hat @ v_up[:, None, None, :, None])[..., 0]
        cont_low = (p_hat @ v_low[:, None, None, :, None])[..., 0]
        q_up = np.where(seen, np.minimum(r_hat + cont_up + beta, H - h), H - h)
        q_low = np.where(seen, np.maximum(r_hat + cont_low - beta, 0.0), 0.0)
        if cfg.eq == "mwu":
            pi_h = mwu_cce(q_up, q_low, iters=cfg.mwu_iters, eta=cfg.mwu_eta, scale=H - h)
        else:
            pi_h = cce_lp(q_up, q_low)
        pi[:, h] = pi_h
        v_up = (pi_h * q_up).sum((-2, -1))
        v_low = (pi_h * q_low).sum((-2, -1))
    return pi


def run_viulcb(
    game: TabularGame,
    episodes: int,
    *,
    cfg: VIULCBConfig | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
) -> dict[str, np.ndarray]:
    """Run VI-ULCB for K episodes on G games at once.

    Args:
        game: G games (batch (G,)).
        episodes: K.
        cfg: hyperparameters (default :class:`VIULCBConfig`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
    Returns:
        The record of :mod:`icarena.agents.games.rollout` with ``pi/joint`` (G, T, H, S, A·B).
    """
    cfg = cfg or VIULCBConfig()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    rng = np.random.default_rng(seed)
    iota = float(np.log(S * A * B * K * H / cfg.p))
    counts = np.zeros((G, H, S, A, B), np.int64)
    trans_counts = np.zeros((G, H, S, A, B, S), np.int64)
    reward_sums = np.zeros((G, H, S, A, B))
    rec = Recorder(G, K, H, S, A, B, joint=True, dtype=dtype)
    g = np.arange(G)
    for k in range(K):
        pi = plan(counts, trans_counts, reward_sums, cfg, iota)
        pmax, pmin = pi.sum(-1), pi.sum(-2)
        s = initial_states(game, rng.random(G))
        for h in range(H):
            t = k * H + h
            rec.policies(t, pmax, pmin, pi)
            u = rng.random((G, 3))
            ab = sample_categorical(pi[g, h, s].reshape(G, A * B), u[:, 0])
            a, b = ab // B, ab % B
            r, s_next = step_states(game, h, s, a, b, u[:, 2])
            rec.step(t, s, a, b, r, s_next)
            counts[g, h, s, a, b] += 1
            trans_counts[g, h, s, a, b, s_next] += 1
            reward_sums[g, h, s, a, b] += r
            s = s_next
    return rec.data

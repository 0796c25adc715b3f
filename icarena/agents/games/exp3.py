"""EXP3 / EXP3-IX self-play on matrix games, batched over games (decentralized baseline).

Each player runs its own bandit algorithm on its own losses (Auer et al. 2002; Neu 2015 for the
implicit-exploration "IX" estimator): the max player's loss is ℓ_t = 1 − r_t,
the min player's is r_t. With π_t the player's policy and a_t its action,

    ℓ̂_t(a) = ℓ_t · 1[a = a_t] / (π_t(a_t) + γ),    L(a) += ℓ̂_t(a),    π_{t+1}(a) ∝ exp(−η L(a)),

with fixed η = √(2 ln n / (n K)) (n = own number of actions, K = number of rounds) unless set.
γ = 0 is plain EXP3 (ICGP's practical baseline and icarena's default); γ > 0 is EXP3-IX
(Neu 2015 uses γ = η/2; ``gamma=None`` selects that). The uniform average of π_1..π_K converges
to a Nash equilibrium (regret ~ √K), the last iterate does not -- evaluate averaged policies.
Only matrix games (H = S = 1); use V-learning for Markov games.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from icarena.agents.games.rollout import Trace, check_episodes, check_games, step_uniforms
from icarena.envs.games.backend import NUMPY, Backend, sample_rows, softmax_neg
from icarena.envs.games.game import TabularGame
from icarena.errors import check


@dataclass
class EXP3Config:
    """Hyperparameters of EXP3 self-play."""

    eta: float | None = None
    """Learning rate η; None -> √(2 ln n / (n K)) for each player (n its actions, K rounds)."""
    gamma: float | None = 0.0
    """Implicit exploration γ; 0 = plain EXP3 (default), None -> η/2 (EXP3-IX, Neu 2015)."""

    def validate(self) -> None:
        check(self.eta is None or self.eta > 0, f"eta must be > 0 or None, got {self.eta!r}")
        check(self.gamma is None or self.gamma >= 0, f"gamma must be >= 0 or None, "
              f"got {self.gamma!r}")


def exp3_rates(n: int, K: int, cfg: EXP3Config) -> tuple[float, float]:
    """(η, γ) for a player with n actions over K rounds."""
    eta = float(np.sqrt(2.0 * np.log(max(n, 2)) / (n * K))) if cfg.eta is None else cfg.eta
    gamma = eta / 2.0 if cfg.gamma is None else float(cfg.gamma)
    return eta, gamma


def run_exp3(
    game: TabularGame,
    episodes: int,
    *,
    cfg: EXP3Config | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
    device: Any = None,
) -> dict[str, np.ndarray]:
    """Run EXP3 self-play for K rounds on G matrix games at once.

    Args:
        game: G matrix games (batch (G,), H = S = 1).
        episodes: K rounds (= steps).
        cfg: hyperparameters (default :class:`EXP3Config`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
        device: None runs the kernel in numpy; a torch device ("cpu", "cuda", ...) runs it in
            torch there (same draws, same record, equal to rounding).
    Returns:
        The record of :mod:`icarena.agents.games.rollout` (``pi/max`` (G, K, 1, 1, A), ...).

    The kernel keeps the cumulative losses action-major, L (n, G), so every operation of a
    round is a handful of vector operations over all G games (no reduction over a short axis),
    and draws the uniforms of many rounds in one call (the same stream, in the same order).
    """
    cfg = cfg or EXP3Config()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    check(H == 1 and S == 1, f"EXP3 is for matrix games (H = S = 1), got H={H}, S={S}; "
          "use V-learning (run_vlearning) for Markov games")
    xp = Backend(device) if device is not None else NUMPY
    rng = np.random.default_rng(seed)
    eta_x, gam_x = exp3_rates(A, K, cfg)
    eta_y, gam_y = exp3_rates(B, K, cfg)
    R = xp.asarray(game.rewards[:, 0, 0]).reshape(-1)  # (G·A·B); s = s' = 0 throughout
    Lx, Ly = xp.zeros((A, G)), xp.zeros((B, G))
    px, py = Trace(G, K, A, xp, dtype), Trace(G, K, B, xp, dtype)
    act_x, act_y = Trace(G, K, None, xp, np.int64), Trace(G, K, None, xp, np.int64)
    rew = Trace(G, K, None, xp, np.float64)
    g = xp.arange(G)
    gAB = g * (A * B)  # flat offset of game g in R
    for t, u, _ in step_uniforms(rng, G, K, xp):  # u (G, 3): max action, min action, s'
        x = softmax_neg(eta_x, Lx, xp, axis=0)
        y = softmax_neg(eta_y, Ly, xp, axis=0)
        px.put(t, x)
        py.put(t, y)
        a, b = sample_rows(x, u[:, 0], xp, axis=0), sample_rows(y, u[:, 1], xp, axis=0)
        r = R[gAB + a * B + b]
        ia, ib = a * G + g, b * G + g  # flat indices of (a, g) in (A, G), (b, g) in (B, G)
        Lx.reshape(-1)[ia] += (1.0 - r) / (x.reshape(-1)[ia] + gam_x)
        Ly.reshape(-1)[ib] += r / (y.reshape(-1)[ib] + gam_y)
        act_x.put(t, a)
        act_y.put(t, b)
        rew.put(t, r)
    zeros = np.zeros((G, K), np.int64)
    return {
        "traj/h": zeros, "traj/s": zeros.copy(), "traj/s_next": zeros.copy(),
        "act/max": act_x.result(), "act/min": act_y.result(), "rew/max": rew.result(),
        "pi/max": px.result().reshape(G, K, 1, 1, A),
        "pi/min": py.result().reshape(G, K, 1, 1, B),
    }

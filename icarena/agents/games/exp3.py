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

import numpy as np

from icarena.agents.games.rollout import Recorder, check_episodes, check_games
from icarena.envs.games.game import TabularGame
from icarena.envs.games.vector import initial_states, sample_categorical, step_states
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


def _softmax_neg(eta: float, L: np.ndarray) -> np.ndarray:
    z = -eta * (L - L.min(-1, keepdims=True))
    w = np.exp(z)
    return w / w.sum(-1, keepdims=True)


def run_exp3(
    game: TabularGame,
    episodes: int,
    *,
    cfg: EXP3Config | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
) -> dict[str, np.ndarray]:
    """Run EXP3 self-play for K rounds on G matrix games at once.

    Args:
        game: G matrix games (batch (G,), H = S = 1).
        episodes: K rounds (= steps).
        cfg: hyperparameters (default :class:`EXP3Config`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
    Returns:
        The record of :mod:`icarena.agents.games.rollout` (``pi/max`` (G, K, 1, 1, A), ...).
    """
    cfg = cfg or EXP3Config()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    check(H == 1 and S == 1, f"EXP3 is for matrix games (H = S = 1), got H={H}, S={S}; "
          "use V-learning (run_vlearning) for Markov games")
    rng = np.random.default_rng(seed)
    eta_x, gam_x = exp3_rates(A, K, cfg)
    eta_y, gam_y = exp3_rates(B, K, cfg)
    Lx, Ly = np.zeros((G, A)), np.zeros((G, B))
    rec = Recorder(G, K, 1, 1, A, B, joint=False, dtype=dtype)
    g = np.arange(G)
    for t in range(K):
        s = initial_states(game, rng.random(G))
        x, y = _softmax_neg(eta_x, Lx), _softmax_neg(eta_y, Ly)
        rec.policies(t, x[:, None, None], y[:, None, None])
        u = rng.random((G, 3))
        a, b = sample_categorical(x, u[:, 0]), sample_categorical(y, u[:, 1])
        r, s_next = step_states(game, 0, s, a, b, u[:, 2])
        rec.step(t, s, a, b, r, s_next)
        Lx[g, a] += (1.0 - r) / (x[g, a] + gam_x)
        Ly[g, b] += r / (y[g, b] + gam_y)
    return rec.data

"""The games numerics as they were before the kernels, kept to measure the speed-up.

Frozen copies of the batched numpy implementations that ``icarena.evaluation.nash.nash_gap``,
``run_exp3``, ``run_vlearning`` and ``run_viulcb`` (with its MWU CCE, ``mwu_cce``) had before
they moved onto the kernels of ``icarena.envs.games.backend`` and
``icarena.agents.games.compiled``: the benchmarks time them in the same process as the kernels and
print the ratio ("now" vs "before"). Not part of the library; not used by it.
"""

from __future__ import annotations

import numpy as np

from icarena.agents.games.cce import mwu_eta
from icarena.agents.games.rollout import Recorder
from icarena.envs.games.game import TabularGame
from icarena.envs.games.vector import initial_states, sample_categorical, step_states


# ------------------------------------------------------------------------------ Nash gap
def _continuation(P_h: np.ndarray, V_next: np.ndarray) -> np.ndarray:
    return (P_h @ V_next[..., None, None, :, None])[..., 0]


def _policy(x, n: int, game: TabularGame) -> np.ndarray:
    p = np.asarray(x, dtype=np.float64)
    assert p.shape[-3:] == (game.H, game.S, n)
    assert bool(np.all(p >= -1e-9))
    assert float(np.abs(p.sum(-1) - 1.0).max()) <= 1e-6
    return p


def nash_gap(game: TabularGame, max_policy, min_policy) -> np.ndarray:
    """The duality gap by the former batched backward induction (validation included)."""
    mu = _policy(max_policy, game.A, game)
    nu = _policy(min_policy, game.B, game)
    R, P = game.rewards, game.transitions
    H, S = R.shape[-4], R.shape[-3]
    batch = np.broadcast_shapes(R.shape[:-4], mu.shape[:-3], nu.shape[:-3])
    v_max = np.zeros((*batch, H + 1, S))
    v_min = np.zeros((*batch, H + 1, S))
    for h in range(H - 1, -1, -1):
        r_h, p_h = R[..., h, :, :, :], P[..., h, :, :, :, :]
        q = r_h + _continuation(p_h, v_max[..., h + 1, :])
        v_max[..., h, :] = (q @ nu[..., h, :, :, None])[..., 0].max(-1)
        q = r_h + _continuation(p_h, v_min[..., h + 1, :])
        v_min[..., h, :] = (mu[..., h, :, None, :] @ q)[..., 0, :].min(-1)
    return np.einsum("...s,...s->...", game.initial, v_max[..., 0, :] - v_min[..., 0, :])


# ---------------------------------------------------------------------------------- EXP3
def _softmax_neg(eta: float, L: np.ndarray) -> np.ndarray:
    z = -eta * (L - L.min(-1, keepdims=True))
    w = np.exp(z)
    return w / w.sum(-1, keepdims=True)


def run_exp3(game: TabularGame, K: int, *, seed=0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Fixed-η EXP3 self-play (γ = 0, default η), the former batched loop."""
    G, (_, _, A, B) = game.batch_shape[0], game.dims
    rng = np.random.default_rng(seed)
    eta_x = float(np.sqrt(2.0 * np.log(max(A, 2)) / (A * K)))
    eta_y = float(np.sqrt(2.0 * np.log(max(B, 2)) / (B * K)))
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
        Lx[g, a] += (1.0 - r) / x[g, a]
        Ly[g, b] += r / y[g, b]
    return rec.data


# ---------------------------------------------------------------------------- V-learning
class _Player:
    def __init__(self, G: int, H: int, S: int, n: int, K: int, c: float, p: float):
        self.H, self.n, self.c = H, n, c
        steps_left = (H - np.arange(H + 1)).astype(np.float64)
        self.V = np.broadcast_to(steps_left[None, :, None], (G, H + 1, S)).copy()
        self.Vt = self.V.copy()
        self.N = np.zeros((G, H, S), np.int64)
        self.pi = np.full((G, H, S, n), 1.0 / n)
        self.L = np.zeros((G, H, S, n))
        self.m = np.full((G, H, S, n), 1.0 / n)
        self.iota = np.log(H * S * n * K / p)

    def update(self, h: int, s, act, rew, s_next) -> None:  # the "jin2021" schedule
        H, n = self.H, self.n
        g = np.arange(len(s))
        self.N[g, h, s] += 1
        t = self.N[g, h, s].astype(np.float64)
        alpha = (H + 1.0) / (H + t)
        beta = self.c * np.sqrt(H**3 * n * self.iota / t)
        eta = np.sqrt(H * np.log(max(n, 2)) / (n * t))
        v_next = self.V[g, h + 1, s_next]
        self.Vt[g, h, s] = (1 - alpha) * self.Vt[g, h, s] + alpha * (rew + v_next + beta)
        self.V[g, h, s] = np.minimum(H - h, self.Vt[g, h, s])
        pi_hs = self.pi[g, h, s]
        loss = (H - rew - v_next) / H
        est = np.zeros_like(pi_hs)
        est[g, act] = loss / (pi_hs[g, act] + eta)
        L = (1 - alpha)[:, None] * self.L[g, h, s] + alpha[:, None] * est
        self.L[g, h, s] = L
        self.m[g, h, s] = (1 - alpha)[:, None] * self.m[g, h, s] + alpha[:, None] * pi_hs
        z = -(eta / alpha)[:, None] * (L - L.min(-1, keepdims=True))
        w = np.exp(z)
        self.pi[g, h, s] = w / w.sum(-1, keepdims=True)


def run_vlearning(game: TabularGame, K: int, *, c: float = 0.1, p: float = 0.1, seed=0,
                  dtype=np.float32) -> dict[str, np.ndarray]:
    """V-learning self-play (Jin et al. 2021 schedule), the former batched loop."""
    G, (H, S, A, B) = game.batch_shape[0], game.dims
    rng = np.random.default_rng(seed)
    mx, mn = _Player(G, H, S, A, K, c, p), _Player(G, H, S, B, K, c, p)
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


# ------------------------------------------------------------------------------- VI-ULCB
def mwu_cce(q_up: np.ndarray, q_low: np.ndarray, *, iters: int = 200,
            scale: float = 1.0) -> np.ndarray:
    """The MWU CCE as it was before the kernels (batched Hedge self-play over any batch)."""
    A, B = q_up.shape[-2:]
    eta = mwu_eta(A, B, iters, scale)
    lx = np.zeros(q_up.shape[:-1])
    ly = np.zeros(q_up.shape[:-2] + (B,))
    acc = np.zeros(q_up.shape)
    for _ in range(int(iters)):
        x = np.exp(lx - lx.max(-1, keepdims=True))
        x /= x.sum(-1, keepdims=True)
        y = np.exp(ly - ly.max(-1, keepdims=True))
        y /= y.sum(-1, keepdims=True)
        acc += x[..., :, None] * y[..., None, :]
        lx += eta * (q_up @ y[..., None])[..., 0]
        ly -= eta * (x[..., None, :] @ q_low)[..., 0, :]
    return acc / iters


def _plan(counts, trans_counts, reward_sums, c: float, iota: float, iters: int) -> np.ndarray:
    G, H, S, A, B = counts.shape
    pi = np.zeros((G, H, S, A, B))
    v_up, v_low = np.zeros((G, S)), np.zeros((G, S))
    for h in range(H - 1, -1, -1):
        n = counts[:, h].astype(np.float64)
        seen = n > 0
        n1 = np.maximum(n, 1.0)
        r_hat = reward_sums[:, h] / n1
        p_hat = trans_counts[:, h] / n1[..., None]
        beta = c * np.sqrt(S * H**2 * iota / n1)
        cont_up = (p_hat @ v_up[:, None, None, :, None])[..., 0]
        cont_low = (p_hat @ v_low[:, None, None, :, None])[..., 0]
        q_up = np.where(seen, np.minimum(r_hat + cont_up + beta, H - h), H - h)
        q_low = np.where(seen, np.maximum(r_hat + cont_low - beta, 0.0), 0.0)
        pi_h = mwu_cce(q_up, q_low, iters=iters, scale=H - h)
        pi[:, h] = pi_h
        v_up = (pi_h * q_up).sum((-2, -1))
        v_low = (pi_h * q_low).sum((-2, -1))
    return pi


def run_viulcb(game: TabularGame, K: int, *, c: float = 0.02, p: float = 0.1, iters: int = 200,
               seed=0, dtype=np.float32) -> dict[str, np.ndarray]:
    """VI-ULCB with the MWU CCE, the former batched loop."""
    G, (H, S, A, B) = game.batch_shape[0], game.dims
    rng = np.random.default_rng(seed)
    iota = float(np.log(S * A * B * K * H / p))
    counts = np.zeros((G, H, S, A, B), np.int64)
    trans_counts = np.zeros((G, H, S, A, B, S), np.int64)
    reward_sums = np.zeros((G, H, S, A, B))
    rec = Recorder(G, K, H, S, A, B, joint=True, dtype=dtype)
    g = np.arange(G)
    for k in range(K):
        pi = _plan(counts, trans_counts, reward_sums, c, iota, iters)
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

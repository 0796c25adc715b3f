"""Explicit per-game loops of the context algorithms: the independent check and speed reference.

Each function runs the same algorithm as its batched counterpart (exp3.py, vlearning.py,
viulcb.py) with plain Python loops over games, states and actions (scalar arithmetic, no
vectorisation over games), drawing the same random numbers in the same order (protocol in
:mod:`icarena.agents.games.rollout`), so on the same seed both produce the same actions and
trajectories up to float rounding. Returned: the actions ``(act_max, act_min)`` (G, T) and the
per-step policies ``(pi_max, pi_min)`` (G, T, H, S, ·) as nested-loop-built arrays.
Used by the tests: the batched kernels (numpy and torch) must reproduce them.
"""

from __future__ import annotations

import math

import numpy as np

from icarena.envs.games.game import TabularGame


def _draw(p, u: float) -> int:
    """Inverse-CDF draw with the batched rule (count of cdf entries <= u·total, clamped)."""
    total = 0.0
    cdf = []
    for x in p:
        total += float(x)
        cdf.append(total)
    idx = sum(1 for c in cdf if c <= u * total)
    return min(idx, len(cdf) - 1)


def _softmax(z: list[float]) -> list[float]:
    m = max(z)
    w = [math.exp(v - m) for v in z]
    tot = sum(w)
    return [v / tot for v in w]


def exp3_loop(game: TabularGame, K: int, *, eta=None, gamma: float = 0.0, seed=0):
    """EXP3 self-play (exp3.py) with loops over games; returns actions and policies."""
    G, (_, _, A, B) = game.batch_shape[0], game.dims
    R = game.rewards
    rng = np.random.default_rng(seed)
    ex = eta if eta is not None else math.sqrt(2 * math.log(max(A, 2)) / (A * K))
    ey = eta if eta is not None else math.sqrt(2 * math.log(max(B, 2)) / (B * K))
    Lx = [[0.0] * A for _ in range(G)]
    Ly = [[0.0] * B for _ in range(G)]
    acts = np.zeros((2, G, K), np.int64)
    pis = [np.zeros((G, K, 1, 1, A)), np.zeros((G, K, 1, 1, B))]
    for t in range(K):
        rng.random(G)  # s_1 (a matrix game has one state)
        u = rng.random((G, 3))
        for g in range(G):
            x = _softmax([-ex * v for v in Lx[g]])
            y = _softmax([-ey * v for v in Ly[g]])
            pis[0][g, t, 0, 0], pis[1][g, t, 0, 0] = x, y
            a, b = _draw(x, u[g, 0]), _draw(y, u[g, 1])
            r = float(R[g, 0, 0, a, b])
            Lx[g][a] += (1 - r) / (x[a] + gamma)
            Ly[g][b] += r / (y[b] + gamma)
            acts[0, g, t], acts[1, g, t] = a, b
    return acts[0], acts[1], pis[0], pis[1]


def vlearning_loop(game: TabularGame, K: int, *, schedule="jin2021", c=0.1, p=0.1, seed=0):
    """V-learning self-play (vlearning.py) with loops over games; returns actions and policies."""
    G, (H, S, A, B) = game.batch_shape[0], game.dims
    R, P, rho = game.rewards, game.transitions, game.initial
    rng = np.random.default_rng(seed)
    T = K * H

    def new_player(n):
        return {
            "n": n,
            "V": [[[float(H - h)] * S for h in range(H + 1)] for _ in range(G)],
            "Vt": [[[float(H - h)] * S for h in range(H + 1)] for _ in range(G)],
            "N": [[[0] * S for _ in range(H)] for _ in range(G)],
            "pi": [[[[1.0 / n] * n for _ in range(S)] for _ in range(H)] for _ in range(G)],
            "L": [[[[0.0] * n for _ in range(S)] for _ in range(H)] for _ in range(G)],
            "iota": math.log(H * S * n * K / p),
        }

    def update(pl, g, h, s, act, rew, s2):
        n = pl["n"]
        pl["N"][g][h][s] += 1
        t = pl["N"][g][h][s]
        alpha = (H + 1) / (H + t)
        if schedule == "jin2021":
            beta = c * math.sqrt(H**3 * n * pl["iota"] / t)
            eta = math.sqrt(H * math.log(max(n, 2)) / (n * t))
        else:
            beta = c * math.sqrt(H**4 * n * pl["iota"] / t)
            eta = math.sqrt(math.log(max(n, 2)) / (n * t))
        v_next = pl["V"][g][h + 1][s2] if h + 1 < H else 0.0
        vt = (1 - alpha) * pl["Vt"][g][h][s] + alpha * (rew + v_next + beta)
        pl["Vt"][g][h][s] = vt
        pl["V"][g][h][s] = min(H - h, vt)
        pi = pl["pi"][g][h][s]
        loss = (H - rew - v_next) / H
        L = pl["L"][g][h][s]
        for i in range(n):
            est = loss / (pi[i] + eta) if i == act else 0.0
            L[i] = (1 - alpha) * L[i] + alpha * est
        pl["pi"][g][h][s] = _softmax([-(eta / alpha) * v for v in L])

    mx, mn = new_player(A), new_player(B)
    acts = np.zeros((2, G, T), np.int64)
    pis = [np.zeros((G, T, H, S, A)), np.zeros((G, T, H, S, B))]
    for k in range(K):
        u0 = rng.random(G)
        s = [_draw(rho[g], u0[g]) for g in range(G)]
        for h in range(H):
            t = k * H + h
            u = rng.random((G, 3))
            for g in range(G):
                pis[0][g, t], pis[1][g, t] = mx["pi"][g], mn["pi"][g]
                a = _draw(mx["pi"][g][h][s[g]], u[g, 0])
                b = _draw(mn["pi"][g][h][s[g]], u[g, 1])
                r = float(R[g, h, s[g], a, b])
                s2 = _draw(P[g, h, s[g], a, b], u[g, 2])
                update(mx, g, h, s[g], a, r, s2)
                update(mn, g, h, s[g], b, 1.0 - r, s2)
                acts[0, g, t], acts[1, g, t] = a, b
                s[g] = s2
    return acts[0], acts[1], pis[0], pis[1]


def _mwu_one(qu, ql, iters, eta):
    """MWU CCE of one (A, B) pair with explicit loops over rounds (numpy within a round)."""
    A, B = qu.shape
    lx, ly = np.zeros(A), np.zeros(B)
    acc = np.zeros((A, B))
    for _ in range(iters):
        x = np.exp(lx - lx.max())
        x /= x.sum()
        y = np.exp(ly - ly.max())
        y /= y.sum()
        acc += np.outer(x, y)
        lx += eta * (qu @ y)
        ly -= eta * (x @ ql)
    return acc / iters


def viulcb_loop(game: TabularGame, K: int, *, c=0.02, p=0.1, mwu_iters=200, seed=0):
    """VI-ULCB with MWU-CCE (viulcb.py) with loops over games and states."""
    G, (H, S, A, B) = game.batch_shape[0], game.dims
    R, P, rho = game.rewards, game.transitions, game.initial
    rng = np.random.default_rng(seed)
    iota = math.log(S * A * B * K * H / p)
    T = K * H
    N = np.zeros((G, H, S, A, B))
    NS = np.zeros((G, H, S, A, B, S))
    RS = np.zeros((G, H, S, A, B))
    acts = np.zeros((2, G, T), np.int64)
    pis = [np.zeros((G, T, H, S, A)), np.zeros((G, T, H, S, B))]
    eta_n = math.log(max(A, B, 2))
    for k in range(K):
        pi = np.zeros((G, H, S, A, B))
        for g in range(G):
            v_up, v_low = np.zeros(S), np.zeros(S)
            for h in range(H - 1, -1, -1):
                nv_up, nv_low = np.zeros(S), np.zeros(S)
                for s in range(S):
                    qu, ql = np.zeros((A, B)), np.zeros((A, B))
                    for a in range(A):
                        for b in range(B):
                            n = N[g, h, s, a, b]
                            if n == 0:
                                qu[a, b], ql[a, b] = H - h, 0.0
                                continue
                            r_hat = RS[g, h, s, a, b] / n
                            p_hat = NS[g, h, s, a, b] / n
                            beta = c * math.sqrt(S * H * H * iota / n)
                            qu[a, b] = min(r_hat + p_hat @ v_up + beta, H - h)
                            ql[a, b] = max(r_hat + p_hat @ v_low - beta, 0.0)
                    eta = math.sqrt(8 * eta_n / mwu_iters) / (H - h)
                    pi[g, h, s] = _mwu_one(qu, ql, mwu_iters, eta)
                    nv_up[s] = (pi[g, h, s] * qu).sum()
                    nv_low[s] = (pi[g, h, s] * ql).sum()
                v_up, v_low = nv_up, nv_low
        u0 = rng.random(G)
        s = [_draw(rho[g], u0[g]) for g in range(G)]
        for h in range(H):
            t = k * H + h
            u = rng.random((G, 3))
            for g in range(G):
                pis[0][g, t], pis[1][g, t] = pi[g].sum(-1), pi[g].sum(-2)
                ab = _draw(pi[g, h, s[g]].ravel(), u[g, 0])
                a, b = ab // B, ab % B
                r = float(R[g, h, s[g], a, b])
                s2 = _draw(P[g, h, s[g], a, b], u[g, 2])
                N[g, h, s[g], a, b] += 1
                NS[g, h, s[g], a, b, s2] += 1
                RS[g, h, s[g], a, b] += r
                acts[0, g, t], acts[1, g, t] = a, b
                s[g] = s2
    return acts[0], acts[1], pis[0], pis[1]

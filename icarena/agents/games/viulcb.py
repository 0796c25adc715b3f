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

Kernel: numpy by default, torch on any device with ``device=``. Planning is memoised
(:class:`_Planner`): an episode changes the statistics of one (h, s) per step and game, so only
the states visited since the last plan, and the states that reach a state whose value moved, get
their (Q^up, Q^low) recomputed, and only those whose matrices changed are solved again (equal
pairs once). The policies are exactly those of a full planning pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from icarena.agents.games.cce import cce_lp, mwu_eta, mwu_kernel
from icarena.agents.games.rollout import (
    Snapshots,
    Trace,
    check_episodes,
    check_games,
    step_uniforms,
)
from icarena.envs.games.backend import NUMPY, Backend, row_sum, sample_rows
from icarena.envs.games.game import TabularGame
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
    return _Planner(counts.shape, cfg, iota, NUMPY).plan(counts, trans_counts, reward_sums)


class _Planner:
    """VI-ULCB's planning pass with the per-state equilibria memoised.

    EQ(Q^up_h(s), Q^low_h(s)) is a deterministic function of the two matrices, and between two
    episodes a state's matrices can change only if the state was visited (its counts moved) or
    its continuation Σ_{s'} P̂(s'|s,a,b) V_{h+1}(s') moved, i.e. some s' it has been seen to reach
    changed its values V^up/V^low_{h+1} (an unseen s' has P̂ = 0 and adds an exact 0). The
    planner tracks visits and reached states (:meth:`visit`), recomputes the matrices of those
    candidate (g, h, s) only, and re-solves the ones whose matrices differ in some bit; all other
    states keep their policy and values. The policies are exactly those of solving every state
    every episode (each state's solve is independent of the others).
    """

    def __init__(self, shape: tuple[int, ...], cfg: VIULCBConfig, iota: float, xp: Backend):
        G, H, S, A, B = shape
        self.cfg, self.iota, self.xp = cfg, iota, xp
        self.q_up = xp.full((G, H, S, A, B), np.nan)  # NaN: nothing solved yet
        self.q_low = xp.full((G, H, S, A, B), np.nan)
        self.pi = xp.zeros((G, H, S, A, B))
        self.v_up = xp.full((G, H, S), np.nan)
        self.v_low = xp.full((G, H, S), np.nan)
        self.dirty = xp.as_int(xp.zeros((G, H, S))) == 0  # every state is new
        self.reach = xp.as_int(xp.zeros((G, H, S, S))) != 0

    def visit(self, row, s_next) -> None:
        """Record visits: ``row`` = flat (g, h, s) indices, ``s_next`` the next states (G,)."""
        self.dirty.reshape(-1)[row] = True
        self.reach.reshape(-1)[row * self.reach.shape[-1] + s_next] = True

    def plan(self, counts, trans_counts, reward_sums):
        xp, cfg, iota = self.xp, self.cfg, self.iota
        G, H, S, A, B = counts.shape
        v_up, v_low = xp.zeros((G, S)), xp.zeros((G, S))
        moved = None  # (G, S'): V_{h+1}(s') changed in this pass
        for h in range(H - 1, -1, -1):
            cand = self.dirty[:, h]
            if moved is not None:
                cand = cand | (self.reach[:, h] & moved[:, None, :]).any(-1)
            gi, si = xp.nonzero(cand)
            moved = xp.zeros((G, S), "int64") != 0
            if len(gi):
                # the former full pass, restricted to the candidate rows (same per-row operations)
                n = xp.as_float(counts[gi, h, si])  # (M, A, B)
                seen = n > 0
                n1 = xp.maximum(n, 1.0)
                r_hat = reward_sums[gi, h, si] / n1
                p_hat = xp.as_float(trans_counts[gi, h, si]) / n1[..., None]
                beta = cfg.c * xp.sqrt(S * H**2 * iota / n1)
                cont_up = (p_hat @ v_up[gi][:, None, :, None])[..., 0]
                cont_low = (p_hat @ v_low[gi][:, None, :, None])[..., 0]
                cap = float(H - h)
                q_up = xp.where(seen, xp.minimum(r_hat + cont_up + beta, cap), cap)
                q_low = xp.where(seen, xp.maximum(r_hat + cont_low - beta, 0.0), 0.0)
                old_up, old_low = self.q_up[gi, h, si], self.q_low[gi, h, si]
                changed = ((q_up != old_up) | (q_low != old_low)).reshape(len(gi), A * B).any(-1)
                pi = self.pi[gi, h, si]
                if bool(changed.any()):
                    pi[changed] = self._solve(q_up[changed], q_low[changed], H - h)
                    self.pi[gi, h, si] = pi
                    self.q_up[gi, h, si], self.q_low[gi, h, si] = q_up, q_low
                vu = (pi * q_up).sum((-2, -1))
                vl = (pi * q_low).sum((-2, -1))
                moved[gi, si] = (vu != self.v_up[gi, h, si]) | (vl != self.v_low[gi, h, si])
                self.v_up[gi, h, si], self.v_low[gi, h, si] = vu, vl
            v_up, v_low = self.v_up[:, h], self.v_low[:, h]
        self.dirty[...] = False
        return self.pi.clone() if xp.is_torch else self.pi.copy()

    def _solve(self, qu, ql, scale: float):
        """EQ of the pairs (M, A, B), each distinct pair solved once (bitwise-equal pairs, e.g.
        all never-visited states, share one solve; the solves are independent per pair)."""
        xp, cfg = self.xp, self.cfg
        M, A, B = qu.shape
        key = xp.stack([qu, ql], 1).reshape(M, 2 * A * B)
        if xp.is_torch:
            _, inv = xp.torch.unique(key, dim=0, return_inverse=True)
            first = xp.zeros((int(inv.max()) + 1,), "int64")
            first[inv] = xp.arange(M)  # any representative of each class
        else:
            rows = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1] * 8)))
            _, first, inv = np.unique(rows.reshape(-1), return_index=True, return_inverse=True)
        uq, ul = qu[first], ql[first]
        if cfg.eq == "mwu":
            eta = mwu_eta(A, B, cfg.mwu_iters, scale) if cfg.mwu_eta is None \
                else float(cfg.mwu_eta)
            sol = mwu_kernel(uq, ul, cfg.mwu_iters, eta, xp)
        else:
            sol = xp.asarray(cce_lp(xp.to_numpy(uq), xp.to_numpy(ul)))
        return sol[inv.reshape(-1)]


def run_viulcb(
    game: TabularGame,
    episodes: int,
    *,
    cfg: VIULCBConfig | None = None,
    seed: int | np.random.SeedSequence | None = 0,
    dtype=np.float32,
    device: Any = None,
) -> dict[str, np.ndarray]:
    """Run VI-ULCB for K episodes on G games at once.

    Args:
        game: G games (batch (G,)).
        episodes: K.
        cfg: hyperparameters (default :class:`VIULCBConfig`).
        seed: seed of all random draws (protocol in :mod:`icarena.agents.games.rollout`).
        dtype: float dtype of the recorded policies.
        device: None runs the kernel in numpy; a torch device ("cpu", "cuda", ...) runs it in
            torch there (same draws, same record, equal to rounding).
    Returns:
        The record of :mod:`icarena.agents.games.rollout` with ``pi/joint`` (G, T, H, S, A·B).
    """
    cfg = cfg or VIULCBConfig()
    cfg.validate()
    G, H, S, A, B = check_games(game)
    K = check_episodes(episodes)
    xp = Backend(device) if device is not None else NUMPY
    rng = np.random.default_rng(seed)
    iota = float(np.log(S * A * B * K * H / cfg.p))
    counts = xp.zeros((G, H, S, A, B), "int64")
    trans_counts = xp.zeros((G, H, S, A, B, S), "int64")
    reward_sums = xp.zeros((G, H, S, A, B))
    planner = _Planner((G, H, S, A, B), cfg, iota, xp)
    R = xp.asarray(game.rewards).reshape(-1)
    P = xp.asarray(game.transitions).reshape(-1, S)
    rho = xp.asarray(game.initial)
    T = K * H
    snaps = {"pi/max": Snapshots(G, T, (H, S, A), xp, dtype),
             "pi/min": Snapshots(G, T, (H, S, B), xp, dtype),
             "pi/joint": Snapshots(G, T, (H, S, A * B), xp, dtype)}
    cols = {k: Trace(G, T, None, xp, np.int64) for k in ("traj/s", "traj/s_next", "act/max",
                                                          "act/min")}
    rew = Trace(G, T, None, xp, np.float64)
    g = xp.arange(G)
    flat_n = counts.reshape(-1)
    flat_r = reward_sums.reshape(-1)
    flat_p = trans_counts.reshape(-1)
    for t, u, u0 in step_uniforms(rng, G, K, xp, H=H):
        k, h = divmod(t, H)
        if h == 0:
            pi = planner.plan(counts, trans_counts, reward_sums)
            pmax = row_sum(pi)
            pmin = row_sum(pi, axis=-2)
            joint = pi.reshape(G, H, S, A * B)
            s = sample_rows(rho, u0, xp)
        snaps["pi/max"].put(t, pmax)
        snaps["pi/min"].put(t, pmin)
        snaps["pi/joint"].put(t, joint)
        row = (g * H + h) * S + s
        ab = sample_rows(xp.take_rows(joint.reshape(G * H * S, A * B), row), u[:, 0], xp)
        a, b = ab // B, ab % B
        cell = row * (A * B) + ab
        r = R[cell]
        s_next = sample_rows(xp.take_rows(P, cell), u[:, 2], xp)
        for key, v in (("traj/s", s), ("traj/s_next", s_next), ("act/max", a), ("act/min", b)):
            cols[key].put(t, v)
        rew.put(t, r)
        flat_n[cell] += 1
        flat_p[cell * S + s_next] += 1
        flat_r[cell] += r
        planner.visit(row, s_next)
        s = s_next
    out = {key: c.result() for key, c in cols.items()}
    out["traj/h"] = np.broadcast_to(np.arange(T) % H, (G, T)).astype(np.int64)
    out["rew/max"] = rew.result()
    out.update({key: sn.result() for key, sn in snaps.items()})
    return out

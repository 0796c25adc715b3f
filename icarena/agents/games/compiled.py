"""Compiled CPU kernels (numba) of V-learning and of VI-ULCB's MWU-CCE: the fast lane of
``device=None``.

The batched numpy kernels (vlearning.py, cce.py) stay the reference and the fallback; when
numba is importable, ``run_vlearning`` hands ``device=None`` runs with a float32 or float64
record to :func:`run_vlearning` here, and ``mwu_kernel`` its numpy arrays to :func:`mwu`.

* V-learning runs game by game (``for g``: the whole state of one game -- a few hundred floats
  -- stays in cache, and its part of the record is written contiguously), with the numbers of
  the seed protocol of :mod:`icarena.agents.games.rollout` drawn by numpy in blocks of episodes
  and read in the same order as the batched kernel reads them, so the actions, states and
  rewards are the same and the policies equal to rounding (tests: 1e-9 in float64).
* The MWU keeps the numpy kernel's action-major layout over the pairs, fuses everything
  between two exponentials into one compiled pass, and leaves the exponentials to numpy (its
  SIMD exp: the same bits, and faster than a scalar exp per pair).

The per-element operations are those of the numpy kernels, in the same order: sums of fewer
than 8 terms left to right (numpy's own order there), longer ones as numpy's pairwise sum,
inverse-CDF draws by a left-to-right CDF. What can differ in the last bit: ``exp`` in
V-learning (numpy has its own SIMD exp) and the 2-7 term dot products that numpy's batched
matmul hands to BLAS (MWU). EXP3 has no compiled lane: its numpy kernel, whose time is mostly
exponentials, was faster than a compiled game-by-game loop (docs/results/performance.md).

Both kernels run on several threads (numba's ``nogil``: Python threads over blocks of games
for V-learning, over chunks of pairs for the MWU), all usable cores by default
(:func:`set_threads`, :func:`threads`, or ``ICARENA_THREADS`` in the environment). Every game
(pair) reads only its own state and its own pre-drawn uniforms, so the record is the same
bytes whatever the thread count (tested).

``ICARENA_NUMBA=0`` in the environment (or :func:`disabled`) turns this lane off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from icarena.errors import check

try:  # pragma: no cover - exercised whichever way the environment is
    import numba

    def _jit(fn):
        # error_model="numpy": IEEE division as in the numpy kernels (no zero-division checks)
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
except ImportError:  # pragma: no cover
    numba = None

    def _jit(fn):
        return fn


_STATE: dict[str, Any] = {"on": numba is not None and os.environ.get("ICARENA_NUMBA", "1") != "0",
                          "threads": None}
MAX_TERMS = 128
"""Longest sum the compiled kernels mirror (numpy's pairwise sum splits in halves above)."""
MWU_CHUNK = 1024
"""Pairs solved together by the compiled MWU (its arrays then stay in cache)."""
BLOCK = 1 << 20
"""About how many uniforms are drawn per block of episodes (as ``step_uniforms``)."""
TASKS_PER_THREAD = 8
"""Blocks of games per thread and block of episodes: taken from a queue by whichever thread is
free, so a core slowed by other work delays the run by one small block, not a whole share."""


def available() -> bool:
    """Whether numba is installed (the compiled lane can run at all)."""
    return numba is not None


def use(dtype: Any, device: Any, terms: int) -> bool:
    """Whether a run with record ``dtype`` on ``device`` takes the compiled lane; ``terms`` is
    the longest sum over actions it needs (numpy's pairwise sum is mirrored up to
    ``MAX_TERMS``)."""
    return (_STATE["on"] and device is None and terms <= MAX_TERMS
            and np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64)))


@contextmanager
def disabled() -> Iterator[None]:
    """Run the numpy kernels inside this block (the reference, for tests and benchmarks)."""
    old = _STATE["on"]
    _STATE["on"] = False
    try:
        yield
    finally:
        _STATE["on"] = old


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def num_threads() -> int:
    """Threads the compiled kernels use: :func:`set_threads`' value, else ``ICARENA_THREADS``,
    else every core this process may run on."""
    if _STATE["threads"] is not None:
        return _STATE["threads"]
    env = os.environ.get("ICARENA_THREADS", "")
    check(env == "" or (env.isdigit() and int(env) >= 1),
          f"ICARENA_THREADS must be an int >= 1, got {env!r}; set it to e.g. 1 or unset it")
    return int(env) if env else _cores()


def set_threads(n: int | None) -> None:
    """Use ``n`` threads in the compiled kernels (None: back to the default of
    :func:`num_threads`). The results do not depend on it."""
    check(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1),
          f"threads must be an int >= 1 or None, got {n!r}")
    _STATE["threads"] = n


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the compiled kernels on ``n`` threads inside this block (as :func:`set_threads`)."""
    old = _STATE["threads"]
    set_threads(n)
    try:
        yield
    finally:
        _STATE["threads"] = old


def _spans(n: int, parts: int) -> list[tuple[int, int]]:
    """[(lo, hi)] of ``parts`` contiguous near-equal parts of range(n), none empty."""
    b = np.linspace(0, n, min(parts, n) + 1).astype(np.int64)
    return [(int(lo), int(hi)) for lo, hi in zip(b[:-1], b[1:], strict=True)]


def uniform_blocks(rng: np.random.Generator, G: int, K: int, H: int) -> Iterator[tuple]:
    """(k0, raw) per block of episodes: raw (ne, G·(1 + 3H)) are the uniforms of episodes
    k0..k0+ne−1 in the stream order of the protocol (u0 (G,) then per step u (G, 3))."""
    per_episode = G * (1 + 3 * H)
    n_ep = max(1, min(K, BLOCK // per_episode))
    for k0 in range(0, K, n_ep):
        ne = min(n_ep, K - k0)
        yield k0, rng.random(ne * per_episode).reshape(ne, per_episode)


# ----------------------------------------------------------------------------- helpers
@_jit
def _sum(a, lo, n):
    """Sum of a[lo:lo+n] as numpy's ``sum`` over a contiguous axis, n <= ``MAX_TERMS``: its
    pairwise sum, i.e. left to right below 8 terms, else 8 interleaved accumulators."""
    if n < 8:
        res = a[lo]
        for i in range(lo + 1, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_jit
def _draw(p, lo, n, u):
    """Inverse-CDF draw from p[lo:lo+n] (the rule of ``sample_rows``)."""
    tot = p[lo]
    for i in range(lo + 1, lo + n):
        tot += p[i]
    thr = u * tot
    c = p[lo]
    idx = 1 if c <= thr else 0
    for i in range(lo + 1, lo + n):
        c += p[i]
        if c <= thr:
            idx += 1
    return min(idx, n - 1)


# ---------------------------------------------------------------------------- V-learning
@_jit
def _vl_update(h, H, S, n, V, Vt, N, pi, L, m, tab, r, vr_next, act, rew):
    """One V-learning visit of row r = h·S + s of one game (its state arrays: V ((H+1)·S),
    Vt, N (H·S), π, L, m (H·S·n)); vr_next = (h + 1)·S + s' indexes V."""
    N[r] += 1
    t = N[r]
    alpha, beta, eta = tab[0, t], tab[1, t], tab[2, t]
    v_next = V[vr_next]
    vt = (1 - alpha) * Vt[r] + alpha * (rew + v_next + beta)
    Vt[r] = vt
    V[r] = min(vt, float(H - h))  # r = h·S + s is also (h, s) in V
    loss = (H - rew - v_next) / H
    a1 = 1 - alpha
    lo = r * n
    p_act = pi[lo + act]
    for i in range(lo, lo + n):
        L[i] = a1 * L[i]
        m[i] = a1 * m[i] + alpha * pi[i]
    L[lo + act] += alpha * (loss / (p_act + eta))
    # π ∝ exp(−(η/α)(L − min L)), the operations of softmax_neg
    mn = L[lo]
    for i in range(lo + 1, lo + n):
        mn = min(mn, L[i])
    sc = -(eta / alpha)
    for i in range(lo, lo + n):
        pi[i] = np.exp(sc * (L[i] - mn))
    tot = _sum(pi, lo, n)
    for i in range(lo, lo + n):
        pi[i] = pi[i] / tot


@_jit
def _vl_block(raw, k0, g0, g1, R, P, rho, H, S, A, B, tab_x, tab_y, Vx, Vtx, Nx, pix, Lx, mx,
              sx, Vy, Vty, Ny, piy, Ly, my, sy, pout_x, pout_y, cert_x, cert_y, s_out, sn_out,
              a_out, b_out, r_out):
    """Episodes k0..k0+ne−1 (uniforms ``raw`` (ne, G·(1 + 3H))) of games g0..g1−1: reads and
    writes only those games' rows of the state and the record, so blocks of games run on
    separate threads give the bytes of one thread."""
    ne = raw.shape[0]
    G = rho.shape[0]
    nx, ny = pix.shape[1], piy.shape[1]  # H·S·A, H·S·B
    for g in range(g0, g1):
        # one game's state and record as 1-d views, taken once per game (contiguous loops over
        # them vectorise; no view is made per step)
        V_x, Vt_x, N_x, pi_x, L_x, m_x, s_x = Vx[g], Vtx[g], Nx[g], pix[g], Lx[g], mx[g], sx[g]
        V_y, Vt_y, N_y, pi_y, L_y, m_y, s_y = Vy[g], Vty[g], Ny[g], piy[g], Ly[g], my[g], sy[g]
        Rg, Pg, rg = R[g], P[g], rho[g]
        px, py, cx, cy = pout_x[g], pout_y[g], cert_x[g], cert_y[g]
        so, sno, ao, bo, ro = s_out[g], sn_out[g], a_out[g], b_out[g], r_out[g]
        for j in range(ne):
            k = k0 + j
            d = float(k + 1)
            ox, oy = k * nx, k * ny
            for i in range(nx):
                s_x[i] += m_x[i]
                cx[ox + i] = s_x[i] / d
            for i in range(ny):
                s_y[i] += m_y[i]
                cy[oy + i] = s_y[i] / d
            s = _draw(rg, 0, S, raw[j, g])
            for h in range(H):
                t = k * H + h
                ox, oy = t * nx, t * ny
                for i in range(nx):
                    px[ox + i] = pi_x[i]
                for i in range(ny):
                    py[oy + i] = pi_y[i]
                base = G + 3 * (h * G + g)
                r_hs = h * S + s
                a = _draw(pi_x, r_hs * A, A, raw[j, base])
                b = _draw(pi_y, r_hs * B, B, raw[j, base + 1])
                cell = (r_hs * A + a) * B + b
                rew = Rg[cell]
                sn = _draw(Pg, cell * S, S, raw[j, base + 2])
                so[t], sno[t], ao[t], bo[t], ro[t] = s, sn, a, b, rew
                vr_next = (h + 1) * S + sn
                _vl_update(h, H, S, A, V_x, Vt_x, N_x, pi_x, L_x, m_x, tab_x, r_hs, vr_next, a,
                           rew)
                _vl_update(h, H, S, B, V_y, Vt_y, N_y, pi_y, L_y, m_y, tab_y, r_hs, vr_next, b,
                           1.0 - rew)
                s = sn


def _vl_state(G: int, H: int, S: int, n: int) -> list[np.ndarray]:
    """V (G, (H+1)·S), Vt, N (G, H·S), π, L, m and the running sum of m (G, H·S·n)."""
    steps_left = (H - np.arange(H + 1)).astype(np.float64)
    V = np.broadcast_to(steps_left[None, :, None], (G, H + 1, S))
    return [V.reshape(G, -1).copy(), V[:, :H].reshape(G, -1).copy(),
            np.zeros((G, H * S), np.int64), np.full((G, H * S * n), 1.0 / n),
            np.zeros((G, H * S * n)), np.full((G, H * S * n), 1.0 / n), np.zeros((G, H * S * n))]


def run_vlearning(R: np.ndarray, P: np.ndarray, rho: np.ndarray, K: int, tab_x: np.ndarray,
                  tab_y: np.ndarray, rng: np.random.Generator, dtype: Any
                  ) -> dict[str, np.ndarray]:
    """V-learning self-play; R (G, H, S, A, B), P (G, H, S, A, B, S), rho (G, S); ``tab_*``
    (3, K + 1) the (α_t, β_t, η_t) tables of each player. The record of ``run_vlearning``.

    On :func:`num_threads` threads: per block of episodes, blocks of games are queued to a
    thread pool (the next block's uniforms are drawn meanwhile); the record is allocated
    uninitialised, so each thread's first writes also fault in its pages."""
    G, H, S, A, B = R.shape
    T = K * H
    f64 = np.float64
    Rf = np.ascontiguousarray(R, f64).reshape(G, -1)
    Pf = np.ascontiguousarray(P, f64).reshape(G, -1)
    rf = np.ascontiguousarray(rho, f64)
    st_x, st_y = _vl_state(G, H, S, A), _vl_state(G, H, S, B)
    pout_x, pout_y = np.empty((G, T * H * S * A), dtype), np.empty((G, T * H * S * B), dtype)
    cert_x, cert_y = np.empty((G, K * H * S * A), dtype), np.empty((G, K * H * S * B), dtype)
    cols = [np.empty((G, T), np.int64) for _ in range(4)]
    r_out = np.empty((G, T))
    tx = np.ascontiguousarray(tab_x, f64)
    ty = np.ascontiguousarray(tab_y, f64)
    args = (Rf, Pf, rf, H, S, A, B, tx, ty, *st_x, *st_y, pout_x, pout_y, cert_x, cert_y, *cols,
            r_out)
    blocks = uniform_blocks(rng, G, K, H)
    n_threads = min(num_threads(), G)
    if n_threads == 1:
        for k0, raw in blocks:
            _vl_block(raw, k0, 0, G, *args)
    else:
        spans = _spans(G, n_threads * TASKS_PER_THREAD)
        with ThreadPoolExecutor(n_threads) as pool:
            block = next(blocks)
            while block is not None:
                k0, raw = block
                jobs = [pool.submit(_vl_block, raw, k0, lo, hi, *args) for lo, hi in spans]
                block = next(blocks, None)  # drawn while the threads run this one
                for job in jobs:
                    job.result()
    s_out, sn_out, a_out, b_out = cols
    return {
        "traj/s": s_out, "traj/s_next": sn_out, "act/max": a_out, "act/min": b_out,
        "traj/h": np.broadcast_to(np.arange(T) % H, (G, T)).astype(np.int64),
        "rew/max": r_out,
        "pi/max": pout_x.reshape(G, T, H, S, A), "pi/min": pout_y.reshape(G, T, H, S, B),
        "cert/max": cert_x.reshape(G, K, H, S, A), "cert/min": cert_y.reshape(G, K, H, S, B),
    }


# ------------------------------------------------------------------------------ MWU CCE
# Action-major over the M pairs, as the numpy kernel: loops over pairs are contiguous (they
# vectorise), and the exponentials stay numpy's own (its SIMD exp, the same bits).
@_jit
def _col_sum(X, tot):
    """tot[m] = Σ_i X[i, m] in the order of numpy's sum over i of the row X[:, m]."""
    n, M = X.shape
    if n < 8:
        tot[:] = X[0]
        for i in range(1, n):
            Xi = X[i]
            for m in range(M):
                tot[m] += Xi[m]
        return
    col = np.empty(n)
    for m in range(M):
        for i in range(n):
            col[i] = X[i, m]
        tot[m] = _sum(col, 0, n)


@_jit
def _mwu_shift(L, Z):
    """Z = L − max_i L[i] per pair (L, Z (n, M))."""
    n, M = L.shape
    mx = L[0].copy()
    for i in range(1, n):
        Li = L[i]
        for m in range(M):
            mx[m] = max(mx[m], Li[m])
    for i in range(n):
        Li, Zi = L[i], Z[i]
        for m in range(M):
            Zi[m] = Li[m] - mx[m]


@_jit
def _mwu_round(X, Y, lx, ly, acc, qu, ql, eta, tot):
    """One Hedge round after the exponentials: X (A, M), Y (B, M) hold exp(l − max l);
    normalise them, accumulate x yᵀ, step the log-weights, and leave the next round's
    exponents l − max l in X, Y."""
    A, M = X.shape
    B = Y.shape[0]
    for Z in (X, Y):
        _col_sum(Z, tot)
        for i in range(Z.shape[0]):
            Zi = Z[i]
            for m in range(M):
                Zi[m] = Zi[m] / tot[m]
    for a in range(A):
        Xa = X[a]
        for b in range(B):
            Yb, Ab = Y[b], acc[a, b]
            for m in range(M):
                Ab[m] += Xa[m] * Yb[m]
    for a in range(A):  # lx += η Q^up y, the sum over b left to right
        d = qu[a, 0] * Y[0]
        for b in range(1, B):
            qab, Yb = qu[a, b], Y[b]
            for m in range(M):
                d[m] += qab[m] * Yb[m]
        la = lx[a]
        for m in range(M):
            la[m] += eta * d[m]
    for b in range(B):  # ly −= η xᵀ Q^low
        d = X[0] * ql[0, b]
        for a in range(1, A):
            qab, Xa = ql[a, b], X[a]
            for m in range(M):
                d[m] += Xa[m] * qab[m]
        lb = ly[b]
        for m in range(M):
            lb[m] -= eta * d[m]
    _mwu_shift(lx, X)
    _mwu_shift(ly, Y)


def mwu(q_up: np.ndarray, q_low: np.ndarray, iters: int, eta: float) -> np.ndarray:
    """The Hedge self-play of ``cce.mwu_kernel`` on numpy arrays (*batch, A, B): the same
    operations, with the two matrix-vector products summed left to right where numpy's
    batched matmul calls BLAS (equal to rounding). Chunks of ``MWU_CHUNK`` pairs are solved
    independently, on :func:`num_threads` threads."""
    batch, (A, B) = q_up.shape[:-2], q_up.shape[-2:]
    qu = np.ascontiguousarray(np.moveaxis(np.asarray(q_up, np.float64).reshape(-1, A, B), 0, -1))
    ql = np.ascontiguousarray(np.moveaxis(np.asarray(q_low, np.float64).reshape(-1, A, B), 0, -1))
    M = qu.shape[-1]
    out = np.empty((A, B, M))

    def solve(m0: int) -> None:  # a chunk's arrays stay in cache through the rounds
        m1 = min(m0 + MWU_CHUNK, M)
        out[..., m0:m1] = _mwu_chunk(qu[..., m0:m1].copy(), ql[..., m0:m1].copy(), iters, eta)

    starts = range(0, M, MWU_CHUNK)
    n_threads = min(num_threads(), len(starts))
    if n_threads == 1:
        for m0 in starts:
            solve(m0)
    else:  # numpy's exp and the compiled round release the GIL
        with ThreadPoolExecutor(n_threads) as pool:
            for job in [pool.submit(solve, m0) for m0 in starts]:
                job.result()
    return np.ascontiguousarray(np.moveaxis(out, -1, 0)).reshape(*batch, A, B)


def _mwu_chunk(qu: np.ndarray, ql: np.ndarray, iters: int, eta: float) -> np.ndarray:
    A, B, M = qu.shape
    lx, ly = np.zeros((A, M)), np.zeros((B, M))
    Z = np.zeros((A + B, M))  # the exponents, then the weights, of both players
    X, Y = Z[:A], Z[A:]
    acc, tot = np.zeros((A, B, M)), np.empty(M)
    for _ in range(iters):
        np.exp(Z, out=Z)
        _mwu_round(X, Y, lx, ly, acc, qu, ql, float(eta), tot)
    return acc / iters

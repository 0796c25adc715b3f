"""Tabular two-player zero-sum episodic Markov games (matrix games are H = S = 1).

A game MG(H, S, A, B, P, r) (Shi et al. 2024, "Transformers as Game Players", §2; Bai & Jin 2020):

* ``rewards[h, s, a, b]`` = r_h(s, a, b) ∈ [0, 1] is paid to the **max** player (player 0, agent
  ``"max"``); the min player (player 1, agent ``"min"``) receives 1 − r (equivalently, it
  minimises r). Shape (H, S, A, B).
* ``transitions[h, s, a, b, s']`` = P_h(s' | s, a, b); each row sums to 1. Shape (H, S, A, B, S).
  The last step's kernel (h = H − 1) is never used for values but is kept for a uniform shape.
* ``initial[s]`` = ρ(s), the distribution of s_1. Shape (S,).

Batches. Every array may carry the same leading batch shape (e.g. ``(G,)`` for G games):
``rewards (*batch, H, S, A, B)``, ``transitions (*batch, H, S, A, B, S)``, ``initial (*batch, S)``.
A batched game is what the vectorised stepper, the context algorithms and
:func:`icarena.evaluation.nash_gap` consume; build one with :meth:`TabularGame.random`
(``n_games``),
:func:`stack` or by passing batched arrays; index it with ``game[i]``.

Random games (:meth:`TabularGame.random`) follow the ICGP prior (Shi et al. 2024, §5): every entry
of every R_h(s, ·, ·) is iid N(0, 1) truncated to [0, 1] (mean ≈ 0.4599, variance ≈ 0.0797). The
paper does not state its transition rule or initial state; icarena's documented default is a fixed
s_1 = 0 and P_h(· | s, a, b) ~ Dirichlet(1, ..., 1) drawn independently per (h, s, a, b) and per
game (``transition="dirichlet"``). ``transition="deterministic"`` instead draws, per game, a
deterministic next state s' ~ Unif[S] for every (h, s, a, b); ``initial="uniform"`` uses
ρ = Unif[S].

Files: :meth:`save` / :meth:`load` use an uncompressed ``.npz`` of plain numeric arrays (no
pickle; loaded with ``allow_pickle=False``) written through a temp file and a rename.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from icarena import limits
from icarena.errors import ConfigError, DatasetError, check

TRANSITIONS = ("dirichlet", "deterministic")
INITIALS = ("fixed", "uniform")
_TOL = 1e-6


def truncated_normal(rng: np.random.Generator, size: Sequence[int] | int) -> np.ndarray:
    """iid N(0, 1) truncated to [0, 1], by inverse-CDF sampling (one uniform per entry).

    x = Φ⁻¹(Φ(0) + u·(Φ(1) − Φ(0))), u ~ U(0, 1); same law as ``scipy.stats.truncnorm(0, 1)``.
    """
    u = rng.random(size)
    lo, hi = ndtr(0.0), ndtr(1.0)
    return np.clip(ndtri(lo + u * (hi - lo)), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class TabularGame:
    """A (batch of) tabular zero-sum episodic Markov game(s); see the module docstring.

    Args:
        rewards: (*batch, H, S, A, B) in [0, 1], paid to the max player.
        transitions: (*batch, H, S, A, B, S), non-negative, summing to 1 over the last axis.
        initial: (*batch, S) initial-state distribution.

    Arrays are converted to float64, validated (shapes, finiteness, ranges, stochasticity) and
    made read-only. Bad input raises :class:`icarena.errors.ConfigError` naming the problem.
    """

    rewards: np.ndarray
    transitions: np.ndarray
    initial: np.ndarray

    def __post_init__(self) -> None:
        r = _as_float(self.rewards, "rewards")
        p = _as_float(self.transitions, "transitions")
        rho = _as_float(self.initial, "initial")
        check(r.ndim >= 4, f"rewards must have shape (*batch, H, S, A, B), got {r.shape}")
        batch, (H, S, A, B) = r.shape[:-4], r.shape[-4:]
        check(
            min(H, S, A, B) >= 1,
            f"rewards shape {r.shape} has an empty axis; need H, S, A, B >= 1",
        )
        check(
            p.shape == (*batch, H, S, A, B, S),
            f"transitions must have shape (*batch, H, S, A, B, S) = {(*batch, H, S, A, B, S)} "
            f"to match rewards {r.shape}, got {p.shape}",
        )
        check(
            rho.shape == (*batch, S),
            f"initial must have shape (*batch, S) = {(*batch, S)}, got {rho.shape}",
        )
        check(
            bool(np.all((r >= 0.0) & (r <= 1.0))),
            f"rewards must lie in [0, 1] (got min {r.min():.4g}, max {r.max():.4g}); "
            "rescale them, e.g. (R - R.min()) / (R.max() - R.min())",
        )
        for name, arr in (("transitions", p), ("initial", rho)):
            check(bool(np.all(arr >= -_TOL)), f"{name} has negative probabilities (min "
                  f"{arr.min():.3g}); every entry must be >= 0")
            err = float(np.abs(arr.sum(-1) - 1.0).max())
            check(err <= _TOL, f"{name} must sum to 1 over the last (next-state) axis; the "
                  f"largest deviation is {err:.3g}; normalise with x / x.sum(-1, keepdims=True)")
        for name, arr in (("rewards", r), ("transitions", np.clip(p, 0.0, None)),
                          ("initial", np.clip(rho, 0.0, None))):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    # ----------------------------------------------------------------------------- shape
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch shape (``()`` for a single game)."""
        return self.rewards.shape[:-4]

    @property
    def H(self) -> int:
        return self.rewards.shape[-4]

    @property
    def S(self) -> int:
        return self.rewards.shape[-3]

    @property
    def A(self) -> int:
        """Number of max-player actions."""
        return self.rewards.shape[-2]

    @property
    def B(self) -> int:
        """Number of min-player actions."""
        return self.rewards.shape[-1]

    @property
    def dims(self) -> tuple[int, int, int, int]:
        """(H, S, A, B)."""
        return self.rewards.shape[-4:]

    @property
    def is_matrix_game(self) -> bool:
        return self.H == 1 and self.S == 1

    def __len__(self) -> int:
        check(bool(self.batch_shape), "a single (unbatched) game has no len(); see batch_shape")
        return self.batch_shape[0]

    def __getitem__(self, idx: Any) -> TabularGame:
        """Index the batch axes: ``game[i]`` is one game, ``game[2:5]`` a smaller batch."""
        check(bool(self.batch_shape), "cannot index a single (unbatched) game")
        nb = len(self.batch_shape)
        probe = np.empty(self.batch_shape, dtype=np.int8)[idx]  # validates idx on batch axes
        del probe
        idx_t = idx if isinstance(idx, tuple) else (idx,)
        check(len(idx_t) <= nb, f"too many indices for batch shape {self.batch_shape}")
        return TabularGame(self.rewards[idx_t], self.transitions[idx_t], self.initial[idx_t])

    def reshape(self, *batch: int) -> TabularGame:
        """The same games with a new batch shape (like ``ndarray.reshape`` on the batch axes)."""
        return TabularGame(
            self.rewards.reshape(*batch, *self.dims),
            self.transitions.reshape(*batch, *self.dims, self.S),
            self.initial.reshape(*batch, self.S),
        )

    def __repr__(self) -> str:
        H, S, A, B = self.dims
        return f"TabularGame(batch={self.batch_shape}, H={H}, S={S}, A={A}, B={B})"

    # ------------------------------------------------------------------------ builders
    @classmethod
    def from_matrix(cls, R: np.ndarray) -> TabularGame:
        """A matrix game (H = S = 1): payoff ``R`` (*batch, A, B) in [0, 1] to the max player."""
        R = _as_float(R, "R")
        check(R.ndim >= 2, f"R must have shape (*batch, A, B), got {R.shape}")
        batch, (A, B) = R.shape[:-2], R.shape[-2:]
        return cls(
            R.reshape(*batch, 1, 1, A, B),
            np.ones((*batch, 1, 1, A, B, 1)),
            np.ones((*batch, 1)),
        )

    @classmethod
    def random(
        cls,
        H: int,
        S: int,
        A: int,
        B: int,
        *,
        seed: int | np.random.SeedSequence | None = None,
        n_games: int | None = None,
        transition: str = "dirichlet",
        initial: str = "fixed",
    ) -> TabularGame:
        """Random game(s) from the ICGP prior (see the module docstring).

        Args:
            H, S, A, B: horizon, number of states, max- and min-player actions.
            seed: seed of the draw (same seed -> same game(s)); None draws fresh entropy.
            n_games: None for one game, or the size G of a leading batch axis.
            transition: ``"dirichlet"`` (default: P_h(·|s,a,b) ~ Dirichlet(1)) or
                ``"deterministic"`` (a uniformly drawn next state per (h, s, a, b)).
            initial: ``"fixed"`` (default: s_1 = 0) or ``"uniform"`` (ρ = Unif[S]).
        """
        for name, v in (("H", H), ("S", S), ("A", A), ("B", B)):
            check(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1,
                  f"{name} must be an int >= 1, got {v!r}")
        check(transition in TRANSITIONS,
              f"transition must be one of {TRANSITIONS}, got {transition!r}")
        check(initial in INITIALS, f"initial must be one of {INITIALS}, got {initial!r}")
        check(n_games is None or (isinstance(n_games, int | np.integer) and n_games >= 1),
              f"n_games must be None or an int >= 1, got {n_games!r}")
        G = 1 if n_games is None else int(n_games)
        cells = G * int(H) * int(S) * int(A) * int(B)
        # float64 transitions (..., S) + their exponential draw + the rewards
        limits.require(8 * cells * (2 * int(S) + 1),
                       f"{G} random game(s) of H={H}, S={S}, A={A}, B={B}",
                       "H, S, A, B (--H/--S/--A/--B) or the number of games")
        rng = np.random.default_rng(seed)
        batch = () if n_games is None else (int(n_games),)
        rewards = truncated_normal(rng, (*batch, H, S, A, B))
        if transition == "dirichlet":
            e = rng.standard_exponential((*batch, H, S, A, B, S))
            trans = e / e.sum(-1, keepdims=True)
        else:
            nxt = rng.integers(0, S, size=(*batch, H, S, A, B))
            trans = (nxt[..., None] == np.arange(S)).astype(np.float64)
        rho = np.zeros((*batch, S))
        if initial == "fixed":
            rho[..., 0] = 1.0
        else:
            rho[...] = 1.0 / S
        return cls(rewards, trans, rho)

    # ---------------------------------------------------------------------------- files
    def to_arrays(self) -> dict[str, np.ndarray]:
        """``{"R": rewards, "P": transitions, "initial": initial}`` (for npz / dataset stores)."""
        return {"R": self.rewards, "P": self.transitions, "initial": self.initial}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TabularGame:
        """Inverse of :meth:`to_arrays`."""
        missing = {"R", "P", "initial"} - set(arrays)
        check(not missing, f"game arrays lack {sorted(missing)}; need R, P and initial")
        return cls(np.asarray(arrays["R"]), np.asarray(arrays["P"]), np.asarray(arrays["initial"]))

    def to_bytes(self) -> bytes:
        """The game(s) as the bytes of an uncompressed ``.npz`` (no pickle)."""
        buf = io.BytesIO()
        np.savez(buf, **self.to_arrays())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TabularGame:
        """Inverse of :meth:`to_bytes`; raises DatasetError on unreadable bytes."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as e:
            raise DatasetError(f"not a saved TabularGame ({e}); re-save it with game.save()") from e
        try:
            return cls.from_arrays(arrays)
        except ConfigError as e:
            raise DatasetError(f"saved game is invalid: {e}") from e

    def save(self, path: str | os.PathLike) -> Path:
        """Write the game(s) to ``path`` (an ``.npz``) atomically; returns the path."""
        from icarena.lifecycle import atomic_write_bytes

        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TabularGame:
        """Read a game written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"no saved game at {path}; write one with TabularGame.save(path)")
        return cls.from_bytes(path.read_bytes())


def stack(games: Sequence[TabularGame]) -> TabularGame:
    """Stack single games of equal (H, S, A, B) into a batch with leading axis len(games)."""
    check(len(games) > 0, "stack() needs at least one game")
    dims = {g.dims for g in games}
    check(len(dims) == 1, f"cannot stack games of different (H, S, A, B): {sorted(dims)}")
    return TabularGame(
        np.stack([g.rewards for g in games]),
        np.stack([g.transitions for g in games]),
        np.stack([g.initial for g in games]),
    )


def _as_float(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64)  # a copy: the game owns its arrays
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a numeric array ({e})") from e
    check(bool(np.all(np.isfinite(arr))), f"{name} contains NaN or inf")
    return arr

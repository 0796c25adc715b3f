"""Out-of-distribution prompts for in-context linear regression, and predictions under them.

Garg, Tsipras, Liang, Valiant 2022, "What Can Transformers Learn In-Context? A Case Study of
Simple Function Classes" (arXiv 2208.01066), §4: a model trained on x ~ N(0, I_d), w ~ N(0, I_d),
y = wᵀx is tested on prompts drawn differently. Each shift here builds, for P prompts of k points,
the *context* inputs ``x_ctx`` (P, k, d) and the *query* inputs ``x_query`` (P, k, d): the
prediction for point i is made from the context pairs (x_ctx[:i], y_ctx[:i]) and the query
x_query[i]. Shifts that move the whole prompt have ``x_query = x_ctx``.

=====================  ========================================================================
shift                  prompts
=====================  ========================================================================
``skewed``             x ~ N(0, Σ), Σ = U diag(λ) Uᵀ with U Haar-random and λ_i ∝ 1/i,
                       rescaled so that tr Σ = d (E‖x‖² unchanged)
``half_subspace``      x ~ N(0, Σ) with Σ the projector onto a random d/2-dim subspace, times 2
                       (rank d/2, tr Σ = d)
``noisy``              y = wᵀx + ε, ε ~ N(0, ``noise_std``²) on context and query labels
``scale_x``            x ~ N(0, ``scale``² I)
``scale_y``            y = ``scale`` · wᵀx
``orthogonal_query``   query i = the component of a fresh x orthogonal to span(x_ctx[:i]),
                       rescaled to the fresh x's norm (i < d; from i = d on the span is R^d and
                       the query is the fresh x)
``half_space``         context inputs reflected into the half-space zᵀx ≥ 0 of a random
                       direction z per prompt; queries from N(0, I)
``random_quadrants``   context inputs moved into one random orthant per prompt (x ← |x| ⊙ s,
                       s ∈ {±1}^d); queries from N(0, I)
=====================  ========================================================================

Errors are squared errors divided by d (the linear family's normaliser), against the shifted
labels. What least squares must do (the tests check each): ``noisy`` raises its error
(σ²/d · (1 + d/(k − d − 1)) for k > d + 1), ``scale_x`` and ``scale_y`` multiply it by scale²,
``skewed`` and ``half_subspace`` lower it below (d − i)/d for 0 < i < d, ``orthogonal_query``
gives exactly the prior's error (ŵ lies in the span of the context, so the prediction is 0, the
prior mean), and ``half_space`` / ``random_quadrants`` leave its (d − i)/d curve unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from icarena.errors import check

SHIFTS = ("skewed", "half_subspace", "noisy", "scale_x", "scale_y", "orthogonal_query",
          "half_space", "random_quadrants")
"""Every shift name (module docstring)."""


@dataclass
class ShiftedPrompts:
    """P prompts of k points under a shift: the prediction for point i reads the context pairs
    before i and the query i."""

    x_ctx: np.ndarray
    """(P, k, d) context inputs."""
    y_ctx: np.ndarray
    """(P, k) context labels."""
    x_query: np.ndarray
    """(P, k, d) query inputs (the same array as x_ctx when the query is not shifted apart)."""
    y_query: np.ndarray
    """(P, k) query labels."""
    w: np.ndarray
    """(P, d) the linear functions."""

    @property
    def split(self) -> bool:
        """Queries differ from the context inputs (predictions need one pass per position)."""
        return self.x_query is not self.x_ctx


def _haar(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """n Haar-random orthogonal d x d matrices (n, d, d)."""
    q, r = np.linalg.qr(rng.standard_normal((n, d, d)))
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def covariance_factor(shift: str, rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Per-prompt factors L (n, d, d) with x = L g, g ~ N(0, I): Σ = L Lᵀ of ``skewed`` or
    ``half_subspace``, tr Σ = d."""
    check(shift in ("skewed", "half_subspace"), f"no covariance for shift {shift!r}")
    if shift == "skewed":
        lam = 1.0 / np.arange(1, d + 1)
    else:
        lam = np.zeros(d)
        lam[: max(1, d // 2)] = 1.0
    lam = lam * d / lam.sum()
    return _haar(rng, n, d) * np.sqrt(lam)[None, None, :]


def orthogonal_queries(x_ctx: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """Query i = fresh[:, i] minus its projection on span(x_ctx[:, :i]), rescaled to the norm of
    fresh[:, i]; for i >= d (span = R^d) the fresh point itself. Shapes (P, k, d)."""
    P, k, d = x_ctx.shape
    out = fresh.copy()
    for i in range(1, min(k, d)):
        # orthonormal basis of the span of the first i context inputs (rank i almost surely)
        q, _ = np.linalg.qr(np.swapaxes(x_ctx[:, :i], 1, 2))  # (P, d, i)
        v = fresh[:, i]
        perp = v - np.einsum("pdi,pi->pd", q, np.einsum("pdi,pd->pi", q, v))
        out[:, i] = perp * (np.linalg.norm(v, axis=1) / np.linalg.norm(perp, axis=1))[:, None]
    return out


def shifted_prompts(
    shift: str, rng: np.random.Generator, n: int, k: int, d: int, *,
    scale: float = 2.0, noise_std: float = 1.0,
) -> ShiftedPrompts:
    """``n`` linear-regression prompts of ``k`` points in dimension ``d`` under ``shift``.

    Draw order (fixed, so a seed gives the same bytes): w (n, d), inputs g (n, k, d), then what
    the shift needs (its covariance, fresh queries, a direction, an orthant or label noise).
    ``scale`` is the factor of ``scale_x`` / ``scale_y``; ``noise_std`` the label noise σ of
    ``noisy``.
    """
    check(shift in SHIFTS, f"unknown shift {shift!r}; choose from {', '.join(SHIFTS)}")
    check(n >= 1 and k >= 1 and d >= 1, f"n, k and d must be >= 1, got {n}, {k}, {d}")
    check(scale > 0 and np.isfinite(scale), f"shift scale must be a finite number > 0, got "
          f"{scale}")
    check(noise_std >= 0 and np.isfinite(noise_std), f"shift noise_std must be >= 0, got "
          f"{noise_std}")
    w = rng.standard_normal((n, d))
    x = rng.standard_normal((n, k, d))
    x_query = None
    if shift in ("skewed", "half_subspace"):
        x = np.einsum("nde,nke->nkd", covariance_factor(shift, rng, n, d), x)
    elif shift == "scale_x":
        x = scale * x
    elif shift == "orthogonal_query":
        x_query = orthogonal_queries(x, rng.standard_normal((n, k, d)))
    elif shift == "half_space":
        z = rng.standard_normal((n, d))
        x_query = x
        x = x * np.where(np.einsum("nkd,nd->nk", x, z) < 0, -1.0, 1.0)[..., None]
    elif shift == "random_quadrants":
        signs = np.where(rng.random((n, 1, d)) < 0.5, -1.0, 1.0)
        x_query = x
        x = np.abs(x) * signs
    y = np.einsum("nkd,nd->nk", x, w)
    if shift == "scale_y":
        y = scale * y
    if x_query is None:
        if shift == "noisy":
            y = y + noise_std * rng.standard_normal((n, k))
        return ShiftedPrompts(x_ctx=x, y_ctx=y, x_query=x, y_query=y, w=w)
    return ShiftedPrompts(x_ctx=x, y_ctx=y, x_query=x_query,
                          y_query=np.einsum("nkd,nd->nk", x_query, w), w=w)


def baseline_predictions(
    prompts: ShiftedPrompts, predictor: Callable[..., np.ndarray], **options: object
) -> np.ndarray:
    """Predictions (P, k) of a baseline (signature of :mod:`icarena.agents.regression`): entry i
    fits on the context pairs before i and predicts query i; entry 0 is 0."""
    p = prompts
    out = np.zeros(p.y_query.shape)
    for i in range(1, p.x_ctx.shape[1]):
        out[:, i] = predictor(p.x_ctx[:, :i], p.y_ctx[:, :i], p.x_query[:, i:i + 1],
                              **options)[:, 0]
    return out


def model_predictions(
    prompts: ShiftedPrompts, predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Predictions (P, k) of a causal sequence model under the shift.

    ``predict(x (P, m, d), y (P, m)) -> (P, m)`` returns the prediction at every x position of the
    given prompts (e.g. :meth:`icarena.pretraining.data.regression.RegressionTask.predict`). When
    queries differ from the context, prediction i comes from the prompt x_ctx[:i] + [x_query[i]]
    (one pass per position; causality makes the later positions irrelevant).
    """
    p = prompts
    if not p.split:
        return np.asarray(predict(p.x_ctx, p.y_ctx), dtype=np.float64)
    out = np.zeros(p.y_query.shape)
    for i in range(p.x_ctx.shape[1]):
        x = p.x_ctx[:, :i + 1].copy()
        y = p.y_ctx[:, :i + 1].copy()
        x[:, i], y[:, i] = p.x_query[:, i], p.y_query[:, i]
        out[:, i] = np.asarray(predict(x, y))[:, i]
    return out


def shift_errors(
    prompts: ShiftedPrompts, predictions: np.ndarray, normaliser: float
) -> np.ndarray:
    """Per-prompt normalised squared errors (P, k) against the shifted query labels."""
    return (np.asarray(predictions) - prompts.y_query) ** 2 / normaliser


def shift_report(
    out, shifts: tuple[str, ...], predict: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
    d: int, k: int, n_prompts: int, seed: int, n_boot: int, scale: float = 2.0,
    noise_std: float = 1.0,
) -> tuple[dict[str, object], list[str]]:
    """Evaluate a model (``predict``, see :func:`model_predictions`) beside least squares and
    ridge(0.1) under each shift: one plot ``shift_<name>.png`` per shift in ``out``.

    Returns the metrics (shift -> predictor -> curve statistics) and the report sections (a table
    of the mean error over positions per shift and predictor, then the plots).
    """
    from pathlib import Path

    from icarena.agents.regression import least_squares, ridge
    from icarena.evaluation.report import bootstrap_ci, line_plot, markdown_table

    for s in shifts:
        check(s in SHIFTS, f"unknown shift {s!r} in eval.shifts; choose from {', '.join(SHIFTS)}")
    out = Path(out)
    metrics: dict[str, object] = {}
    rows, plots = [], []
    for s in shifts:  # each shift's prompts depend on (seed, shift) only, not on the list
        p = shifted_prompts(s, np.random.default_rng([seed, SHIFTS.index(s)]), n_prompts, k, d,
                            scale=scale, noise_std=noise_std)
        errors = {"transformer": shift_errors(p, model_predictions(p, predict), d),
                  "least_squares": shift_errors(p, baseline_predictions(p, least_squares), d),
                  "ridge(0.1)": shift_errors(p, baseline_predictions(p, ridge, lam=0.1), d)}
        stats = {}
        for name, e in errors.items():
            lo, hi = bootstrap_ci(e, level=0.9, n_boot=n_boot, seed=seed)
            stats[name] = {"mean": e.mean(0).tolist(), "ci90_low": np.asarray(lo).tolist(),
                           "ci90_high": np.asarray(hi).tolist()}
        metrics[s] = stats
        line_plot(out / f"shift_{s}.png", np.arange(k),
                  {n: np.array(v["mean"]) for n, v in stats.items()},
                  bands={n: (np.array(v["ci90_low"]), np.array(v["ci90_high"]))
                         for n, v in stats.items()},
                  xlabel="in-context examples", ylabel="normalised squared error",
                  title=f"shift: {s}, d = {d}")
        rows.append([s] + [float(np.mean(stats[n]["mean"])) for n in errors])
        plots.append(f"![{s}](shift_{s}.png)")
    sections = [f"Prompt shifts (Garg et al. 2022, arXiv 2208.01066; scale {scale}, label noise "
                f"σ = {noise_std}): normalised squared error averaged over positions 0..{k - 1}.",
                markdown_table(["shift", "transformer", "least_squares", "ridge(0.1)"], rows),
                *plots]
    return {"scale": scale, "noise_std": noise_std, "curves": metrics}, sections

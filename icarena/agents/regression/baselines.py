"""Classical in-context regression baselines, batched over prompts.

Every predictor has the signature ``predictor(x_ctx, y_ctx, x_query, **options) -> y_query``:

    x_ctx   (P, n, d)  context inputs of P independent prompts
    y_ctx   (P, n)     context labels
    x_query (P, m, d)  query inputs
    returns (P, m)     predictions, computed from each prompt's own context only

With n = 0 context points every predictor returns 0 (Garg et al. 2022, arXiv 2208.01066:
"every baseline predicts 0 at i = 0"). :func:`prefix_predictions` turns a predictor into the
error-vs-k curve: the prediction for point i uses the first i points of the same prompt.

Predictors (the baselines of Garg et al. 2022, arXiv 2208.01066):

* ``least_squares``: ŵ = X⁺ y (Moore–Penrose; the minimum-norm solution when n < d). Noiseless
  isotropic linear data: normalised error (d − n)/d for n < d, 0 from n = d.
* ``ridge``: ŵ = (XᵀX + λI)⁻¹ Xᵀ y.
* ``knn``: mean label of the ``n_neighbors`` nearest context inputs (Euclidean, uniform weights;
  all n points when n < n_neighbors; ties broken by the lower index).
* ``averaging``: ŵ = (1/n) Σ y_i x_i; error (d + 1)/n on isotropic linear data.
* ``lsa_optimal``: the optimal one-layer linear-attention predictor for x ~ N(0, I)
  (Ahn et al. 2023; Zhang, Frei & Bartlett 2024), ŷ = x_qᵀ (Σ y_i x_i)/(n + d + 1);
  error (d + 1)/(n + d + 1).
* ``lasso``: argmin (1/2n)‖y − Xw‖² + α‖w‖₁ (scikit-learn's objective, no intercept) by
  cyclic coordinate descent run on all prompts at once, until max |Δw| < ``tol``.
* ``sparse_bayes``: the Bayes-optimal (posterior-mean) predictor of the noiseless
  ``sparse_linear`` prior (w_S ~ N(0, I) on a uniformly random support S of size ``sparsity``):
  exact, by enumerating the C(d, s) supports -- the floor no learner can beat on that family.
* ``two_layer_nn``: a ReLU net with one hidden layer (``hidden`` = 100) fitted on the prompt by
  full-batch Adam (lr 5e-3, 100 steps, as Garg et al.), one independent net per prompt, batched
  with ``torch.bmm``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from icarena.errors import ConfigError, check

Predictor = Callable[..., np.ndarray]


def _check_shapes(x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray) -> None:
    check(x_ctx.ndim == 3, f"x_ctx must be (P, n, d), got shape {x_ctx.shape}")
    check(y_ctx.shape == x_ctx.shape[:2],
          f"y_ctx must be (P, n) = {x_ctx.shape[:2]}, got {y_ctx.shape}")
    check(x_query.ndim == 3 and x_query.shape[0] == x_ctx.shape[0]
          and x_query.shape[2] == x_ctx.shape[2],
          f"x_query must be (P={x_ctx.shape[0]}, m, d={x_ctx.shape[2]}), got {x_query.shape}")


def _linear_predict(w: np.ndarray, x_query: np.ndarray) -> np.ndarray:
    return np.einsum("pmd,pd->pm", x_query, w)


def least_squares(
    x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray, *, rcond: float = 1e-10
) -> np.ndarray:
    """Minimum-norm least squares ŵ = X⁺y (singular values below rcond·σ_max dropped)."""
    _check_shapes(x_ctx, y_ctx, x_query)
    if x_ctx.shape[1] == 0:
        return np.zeros(x_query.shape[:2])
    w = np.einsum("pdn,pn->pd", np.linalg.pinv(x_ctx, rcond=rcond), y_ctx)
    return _linear_predict(w, x_query)


def ridge(
    x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray, *, lam: float = 0.1
) -> np.ndarray:
    """Ridge regression ŵ = (XᵀX + λI)⁻¹Xᵀy, λ = ``lam`` > 0 (no intercept)."""
    _check_shapes(x_ctx, y_ctx, x_query)
    check(lam > 0, f"ridge lam must be > 0 (use least_squares for lam = 0), got {lam}")
    if x_ctx.shape[1] == 0:
        return np.zeros(x_query.shape[:2])
    d = x_ctx.shape[2]
    gram = np.einsum("pnd,pne->pde", x_ctx, x_ctx) + lam * np.eye(d)
    w = np.linalg.solve(gram, np.einsum("pnd,pn->pd", x_ctx, y_ctx)[..., None])[..., 0]
    return _linear_predict(w, x_query)


def knn(
    x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray, *, n_neighbors: int = 3
) -> np.ndarray:
    """Mean label of the ``n_neighbors`` nearest context points (uniform weights)."""
    _check_shapes(x_ctx, y_ctx, x_query)
    check(n_neighbors >= 1, f"n_neighbors must be >= 1, got {n_neighbors}")
    n = x_ctx.shape[1]
    if n == 0:
        return np.zeros(x_query.shape[:2])
    if n <= n_neighbors:
        return np.broadcast_to(y_ctx.mean(axis=1, keepdims=True), x_query.shape[:2]).copy()
    dist = ((x_query[:, :, None, :] - x_ctx[:, None, :, :]) ** 2).sum(-1)  # (P, m, n)
    idx = np.argsort(dist, axis=2, kind="stable")[:, :, :n_neighbors]
    labels = np.take_along_axis(np.broadcast_to(y_ctx[:, None, :], dist.shape), idx, axis=2)
    return labels.mean(axis=2)


def averaging(x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray) -> np.ndarray:
    """ŵ = (1/n) Σ_i y_i x_i (one GD step from 0 with step size 1)."""
    _check_shapes(x_ctx, y_ctx, x_query)
    if x_ctx.shape[1] == 0:
        return np.zeros(x_query.shape[:2])
    return _linear_predict(np.einsum("pnd,pn->pd", x_ctx, y_ctx) / x_ctx.shape[1], x_query)


def lsa_optimal(x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray) -> np.ndarray:
    """Optimal 1-layer linear attention for x ~ N(0, I): ŷ = x_qᵀ Σ y_i x_i / (n + d + 1)."""
    _check_shapes(x_ctx, y_ctx, x_query)
    n, d = x_ctx.shape[1:]
    return _linear_predict(np.einsum("pnd,pn->pd", x_ctx, y_ctx) / (n + d + 1), x_query)


def lasso(
    x_ctx: np.ndarray,
    y_ctx: np.ndarray,
    x_query: np.ndarray,
    *,
    alpha: float = 0.01,
    max_iter: int = 10_000,
    tol: float = 1e-6,
) -> np.ndarray:
    """Lasso, argmin_w (1/2n)‖y − Xw‖² + α‖w‖₁, by batched cyclic coordinate descent.

    Update for coordinate j with residual r = y − Xw (kept up to date)::

        w_j ← S(w_j ‖X_j‖²/n + X_jᵀr/n, α) / (‖X_j‖²/n),   S(z, α) = sign(z) max(|z| − α, 0)

    All prompts are swept together; the loop stops when every prompt's largest coordinate change
    in a sweep is below ``tol`` or after ``max_iter`` sweeps.
    """
    _check_shapes(x_ctx, y_ctx, x_query)
    check(alpha > 0, f"lasso alpha must be > 0 (use least_squares for alpha = 0), got {alpha}")
    check(max_iter >= 1, f"max_iter must be >= 1, got {max_iter}")
    P, n, d = x_ctx.shape
    if n == 0:
        return np.zeros(x_query.shape[:2])
    w = np.zeros((P, d))
    resid = y_ctx.astype(np.float64).copy()
    col_sq = (x_ctx**2).sum(axis=1) / n  # (P, d)
    safe = np.where(col_sq > 0, col_sq, 1.0)
    for _ in range(max_iter):
        max_change = np.zeros(P)
        for j in range(d):
            xj = x_ctx[:, :, j]
            z = w[:, j] * col_sq[:, j] + (xj * resid).sum(axis=1) / n
            new = np.where(col_sq[:, j] > 0, np.sign(z) * np.maximum(np.abs(z) - alpha, 0.0)
                           / safe[:, j], 0.0)
            delta = new - w[:, j]
            resid -= xj * delta[:, None]
            w[:, j] = new
            max_change = np.maximum(max_change, np.abs(delta))
        if max_change.max() < tol:
            break
    return _linear_predict(w, x_query)


def sparse_bayes(
    x_ctx: np.ndarray, y_ctx: np.ndarray, x_query: np.ndarray, *, sparsity: int = 1,
    jitter: float = 1e-9,
) -> np.ndarray:
    """Posterior mean of y_query under the sparse-linear prior (noiseless labels).

    For each support S (|S| = s): y | X, S ~ N(0, C_S) with C_S = X_S X_Sᵀ, posterior mean
    ŵ_S = X_Sᵀ C_S⁻¹ y, evidence p(y | S) = N(y; 0, C_S). The prediction is
    Σ_S p(S | y) x_q,Sᵀ ŵ_S with p(S | y) ∝ p(y | S) (uniform prior over supports). ``jitter``
    (added to C_S's diagonal) stands in for an infinitesimal label noise, so supports that cannot
    explain y get vanishing weight.
    """
    from itertools import combinations

    _check_shapes(x_ctx, y_ctx, x_query)
    P, n, d = x_ctx.shape
    check(1 <= sparsity <= d, f"sparsity must be in [1, d={d}], got {sparsity}")
    if n == 0:
        return np.zeros(x_query.shape[:2])
    log_ev, preds = [], []
    for support in combinations(range(d), sparsity):
        xs = x_ctx[:, :, support]                                     # (P, n, s)
        cov = xs @ xs.transpose(0, 2, 1) + jitter * np.eye(n)         # (P, n, n)
        alpha = np.linalg.solve(cov, y_ctx[..., None])[..., 0]        # C_S⁻¹ y
        log_ev.append(-0.5 * (y_ctx * alpha).sum(-1) - 0.5 * np.linalg.slogdet(cov)[1])
        w = np.einsum("pns,pn->ps", xs, alpha)
        preds.append(np.einsum("pms,ps->pm", x_query[:, :, support], w))
    log_ev = np.stack(log_ev)                                         # (n_supports, P)
    weights = np.exp(log_ev - log_ev.max(axis=0))
    weights /= weights.sum(axis=0)
    return np.einsum("kp,kpm->pm", weights, np.stack(preds))


def two_layer_nn(
    x_ctx: np.ndarray,
    y_ctx: np.ndarray,
    x_query: np.ndarray,
    *,
    hidden: int = 100,
    lr: float = 5e-3,
    steps: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """One ReLU net per prompt, ŷ = relu(xW1 + b1)W2 + b2, fitted by full-batch Adam on MSE.

    Weights start from a PyTorch-default-like uniform init drawn from ``seed`` (deterministic).
    """
    import torch

    _check_shapes(x_ctx, y_ctx, x_query)
    P, n, d = x_ctx.shape
    if n == 0:
        return np.zeros(x_query.shape[:2])
    g = torch.Generator().manual_seed(seed)

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1.0 / np.sqrt(fan_in)
        return ((torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound)

    params = [uniform((P, d, hidden), d), uniform((P, 1, hidden), d),
              uniform((P, hidden, 1), hidden), uniform((P, 1, 1), hidden)]
    for p in params:
        p.requires_grad_(True)
    xc = torch.as_tensor(x_ctx, dtype=torch.float64)
    yc = torch.as_tensor(y_ctx, dtype=torch.float64)[..., None]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def forward(x: torch.Tensor) -> torch.Tensor:
        W1, b1, W2, b2 = params
        return torch.bmm(torch.relu(torch.bmm(x, W1) + b1), W2) + b2

    for step in range(1, steps + 1):
        # sum over prompts of each prompt's mean loss: the nets do not interact
        loss = ((forward(xc) - yc) ** 2).mean(dim=(1, 2)).sum()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # Adam (Kingma & Ba 2015), written out: no torch.optim import
            for p, g, m_i, v_i in zip(params, grads, m, v, strict=True):
                m_i.mul_(beta1).add_(g, alpha=1 - beta1)
                v_i.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = m_i / (1 - beta1**step)
                v_hat = v_i / (1 - beta2**step)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    with torch.no_grad():
        return forward(torch.as_tensor(x_query, dtype=torch.float64))[..., 0].numpy()


BASELINES: dict[str, Predictor] = {
    "least_squares": least_squares,
    "ridge": ridge,
    "knn": knn,
    "averaging": averaging,
    "lsa_optimal": lsa_optimal,
    "lasso": lasso,
    "sparse_bayes": sparse_bayes,
    "two_layer_nn": two_layer_nn,
}


def get_baseline(name: str) -> Predictor:
    """The predictor called ``name`` (see :data:`BASELINES`)."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    return BASELINES[name]


def prefix_predictions(
    predictor: str | Predictor, x: np.ndarray, y: np.ndarray, **options: object
) -> np.ndarray:
    """Predictions (P, k) where entry i uses only the first i points of its prompt.

    Args:
        predictor: a name in :data:`BASELINES` or a predictor function.
        x: (P, k, d) prompt inputs; y: (P, k) labels.
        options: keyword options of the predictor (``n_neighbors``, ``alpha``, ...).
    """
    fn = get_baseline(predictor) if isinstance(predictor, str) else predictor
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check(x.ndim == 3 and y.shape == x.shape[:2],
          f"x must be (P, k, d) and y (P, k); got {x.shape} and {y.shape}")
    out = np.zeros(y.shape)
    for i in range(1, x.shape[1]):
        out[:, i] = fn(x[:, :i], y[:, :i], x[:, i : i + 1], **options)[:, 0]
    return out

"""In-context regression whose answer is read at one special position: the query token.

A bidirectional model reads a prompt of n context pairs (x_i, y_i), x_i ∈ R^d, and one query
x_q as k + 1 tokens of width d + 2 (k = the most context pairs)::

    z_0 = (x_q, 0, 1)                  query token: the special position
    z_i = (x_i, y_i, 0)   1 <= i <= n  context tokens
    z_i = 0 (padded)      n < i <= k   masked out of attention (``pad``)

and its prediction of y_q is output channel 0 at position 0. Every other position's output is
unused, so the task isolates what a separate norm of the special position (SepNorm, Chen et al.
2023, arXiv 2309.12931: the [CLS] token at position 0) can change.

:class:`QueryRegressionTask` implements the Trainer's task protocol. A training prompt draws
k + 1 points of a fresh function; its query is the last point and its context the first n,
n uniform in 1..k per prompt. Evaluation predicts y_i from the first i points of held-out
prompts (i = 1..k; :func:`icarena.agents.regression.prefix_predictions`), the same protocol as
the causal regression tasks and the classical baselines.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from icarena.envs.regression.families import Family, sample_prompts
from icarena.errors import check

# Not the causal task's stream (0x5EED_E7A1), so the two tasks' held-out prompts differ.
_EVAL_STREAM = 0x5EED_A0E5


def query_tokens(x_ctx: np.ndarray | torch.Tensor, y_ctx: np.ndarray | torch.Tensor,
                 x_query: np.ndarray | torch.Tensor, n: np.ndarray | torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and padding of a batch of query prompts.

    Args:
        x_ctx: (B, k, d) context inputs; y_ctx: (B, k) their labels; x_query: (B, d);
        n: (B,) context pairs used per prompt (0..k); pairs i >= n are padding.
    Returns:
        tokens (B, k + 1, d + 2) float32 (query token first) and pad (B, k + 1) bool (True =
        padded).
    """
    x_ctx = torch.as_tensor(x_ctx, dtype=torch.float32)
    y_ctx = torch.as_tensor(y_ctx, dtype=torch.float32)
    x_query = torch.as_tensor(x_query, dtype=torch.float32)
    n = torch.as_tensor(n, dtype=torch.int64)
    check(x_ctx.dim() == 3 and y_ctx.shape == x_ctx.shape[:2]
          and x_query.shape == (x_ctx.shape[0], x_ctx.shape[2]) and n.shape == x_ctx.shape[:1],
          f"x_ctx must be (B, k, d), y_ctx (B, k), x_query (B, d) and n (B,); got "
          f"{tuple(x_ctx.shape)}, {tuple(y_ctx.shape)}, {tuple(x_query.shape)}, "
          f"{tuple(n.shape)}")
    B, k, d = x_ctx.shape
    check(bool(((n >= 0) & (n <= k)).all()), f"n must lie in [0, k={k}]")
    pad = torch.arange(k)[None, :] >= n[:, None]  # (B, k)
    tokens = torch.zeros(B, k + 1, d + 2)
    tokens[:, 0, :d] = x_query
    tokens[:, 0, d + 1] = 1.0
    tokens[:, 1:, :d] = x_ctx
    tokens[:, 1:, d] = y_ctx
    tokens[:, 1:] *= (~pad)[..., None]
    return tokens, torch.cat([torch.zeros(B, 1, dtype=torch.bool), pad], dim=1)


def query_predictions(model: nn.Module, tokens: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """The model's predictions (B,) of the query labels: channel 0 at position 0, with position
    0 marked special for the backbones that treat it apart (SepNorm)."""
    special = torch.zeros_like(pad)
    special[:, 0] = True
    return model(tokens, pad_mask=pad, special_mask=special)[:, 0, 0]


class QueryRegressionTask:
    """Trainer task: in-context regression read at the query token (bidirectional model).

    Args:
        family: the function family (:func:`icarena.envs.regression.make_family`).
        k: most context pairs per prompt (the sequence has k + 1 tokens).
        n_eval: held-out prompts for :meth:`evaluate`; eval_seed: their seed.
        eval_batch: prompts per forward pass when predicting.
    """

    def __init__(self, family: Family, k: int, *, n_eval: int = 1280, eval_seed: int = 1234,
                 eval_batch: int = 1024) -> None:
        check(isinstance(family, Family), "family must be a Family "
              f"(icarena.envs.regression.make_family), got {type(family).__name__}",
              fields="family")
        check(isinstance(k, int | np.integer) and k >= 1, f"k must be an int >= 1, got {k!r}",
              fields="k")
        check(n_eval >= 2, f"n_eval must be >= 2, got {n_eval}", fields="n_eval")
        self.family, self.k, self.d = family, int(k), family.d
        self.input_dim = self.d + 2
        self.tokens_per_sample = self.k + 1
        self.eval_batch = int(eval_batch)
        self.normaliser = float(family.normaliser)
        rng = np.random.default_rng([eval_seed, _EVAL_STREAM])
        self.eval_prompts = sample_prompts(family, rng, n_eval, self.k + 1)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """{"tokens": (B, k+1, d+2), "pad": (B, k+1) bool, "y": (B,)} for one training step."""
        p = sample_prompts(self.family, rng, batch_size, self.k + 1)
        n = rng.integers(1, self.k + 1, size=batch_size)
        tokens, pad = query_tokens(p.x[:, :-1], p.y[:, :-1], p.x[:, -1], n)
        return {"tokens": tokens, "pad": pad, "y": torch.as_tensor(p.y[:, -1],
                                                                   dtype=torch.float32)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of the query predictions."""
        return ((query_predictions(model, batch["tokens"], batch["pad"]) - batch["y"]) ** 2).mean()

    def predictor(self, model: nn.Module):
        """``model`` as a regressor ``(xs (P, n, d), ys (P, n), x_query (P, m, d)) -> (P, m)``
        float64, the signature of the classical baselines (one query token per query point,
        chunks of ``eval_batch`` prompts, no gradients)."""
        device = next(model.parameters()).device

        @torch.no_grad()
        def predict(xs: np.ndarray, ys: np.ndarray, x_query: np.ndarray) -> np.ndarray:
            P, n, d = xs.shape
            check(n <= self.k and d == self.d, f"the model reads at most k = {self.k} context "
                  f"pairs of dimension {self.d}; got {n} of dimension {d}")
            ctx = np.zeros((P, self.k, d))
            ctx[:, :n] = xs
            lab = np.zeros((P, self.k))
            lab[:, :n] = ys
            out = np.zeros(x_query.shape[:2])
            for j in range(x_query.shape[1]):
                for s in range(0, P, self.eval_batch):
                    sl = slice(s, s + self.eval_batch)
                    tokens, pad = query_tokens(ctx[sl], lab[sl], x_query[sl, j],
                                               np.full(len(ctx[sl]), n))
                    pred = query_predictions(model, tokens.to(device), pad.to(device))
                    out[sl, j] = pred.double().cpu().numpy()
            return out

        return predict

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Normalised squared error on the held-out prompts: ``err_k{i}`` (y_i predicted from the
        first i points, i = 1..k) and their mean ``err_mean``."""
        from icarena.agents.regression import prefix_predictions

        was_training = model.training
        model.eval()
        p = self.eval_prompts
        err = (prefix_predictions(self.predictor(model), p.x, p.y) - p.y) ** 2 / self.normaliser
        model.train(was_training)
        curve = err.mean(axis=0)[1:]
        out = {f"err_k{i + 1}": float(v) for i, v in enumerate(curve)}
        out["err_mean"] = float(curve.mean())
        return out

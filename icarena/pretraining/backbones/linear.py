"""Linear attention: a trainable backbone (``linear``) and exact weight constructions.

One module, :class:`LinearAttention`, serves three uses:

1. The ``linear`` backbone: pre-LN blocks ``x + LinAttn(LN x)``, ``x + MLP(LN x)`` with learned
   absolute positions and a final LayerNorm (the GPT block with the softmax removed).
2. :func:`ols_construction`: Tan & Zhao 2026 (arXiv 2604.13656), "OLS is a special case of
   transformer": one linear-attention layer whose weights are set from a dataset (X, Y) so that
   one forward pass returns the OLS fit.
3. :func:`gd_construction` / :func:`preconditioned_gd_construction`: von Oswald et al. 2023
   (arXiv 2212.07677) one-step gradient descent, and the preconditioned step of Ahn et al. 2023 /
   Zhang, Frei & Bartlett 2024 (arXiv 2306.09927).

Linear attention (one head; no softmax, no normalisation beyond ``scale``)::

    q_t = W_Q z_t,  k_s = W_K z_s,  v_s = W_V z_s
    out_t = W_O · scale_t · Σ_{s ∈ K(t)} (q_t · k_s) v_s = W_O · scale_t · q_tᵀ S_t,
    S_t = Σ_{s ∈ K(t)} k_s v_sᵀ   (head_dim × head_dim)

K(t) is every key position allowed by ``key_mask`` (True = may be a key), further restricted to
s <= t when causal. Bidirectional: S is computed once, O(T · head_dim²). Causal: in chunks of C
positions (Katharopoulos et al. 2020, arXiv 2006.16236; the chunked form of Yang et al. 2023,
arXiv 2312.06635): inside a chunk the masked quadratic form tril(Q Kᵀ) V, across chunks the
running state S of the earlier chunks, out = tril(Q Kᵀ) V + Q S. Time O(T · (C + head_dim) ·
head_dim), memory O(B · H · (C² + head_dim²)) per chunk: never a (T, head_dim, head_dim)
tensor of cumulative sums, never a T × T one. The same state makes incremental decoding O(1) per
token in the history length (:meth:`LinearTransformer.decode`). ``scale_t`` is
``scale`` / |K(t)| when ``normalize="count"`` (a running mean of k vᵀ: keeps activations O(1)
for a trainable network; Tan–Zhao's 1/n covariance scaling) and ``scale`` otherwise.

OLS construction (float64; tokens z_i = [x_i; y_i] ∈ R^{d+1}, query token [x_q; 0]). From the
thin SVD X = U S Vᵀ (n × d, rank d) set L = V S⁻¹ (the SVD form of V Λ^{-1/2}, better
conditioned than eigh(XᵀX)), so (XL)ᵀ(XL) = I_d and L Lᵀ = (XᵀX)⁻¹, and::

    W_Q = W_K = W_V = [Lᵀ  0]          (d × (d+1); the y coordinate is ignored)
    P = Lᵀ Xᵀ Y  (d,),   W_O = [0_{d×d}; Pᵀ]   ((d+1) × d; writes into the y coordinate)

Then the attention matrix on the context is A = X (XᵀX)⁻¹ Xᵀ = H (the hat matrix), A V = X L,
and the query's y coordinate after the residual layer is x_qᵀ L (XL)ᵀ(XL) P = x_qᵀ β̂_OLS. Keys
and values come from the n context tokens only (``key_mask``); if the query were also a key the
output would be x_qᵀ L (I + Lᵀ x_q x_qᵀ L) P ≠ OLS. The FFN of the paper's construction is the
identity and is omitted. The weights hold the data (P contains Y): one forward pass is the
closed-form OLS of a *fixed* design, not prompt-based in-context learning.

GD construction (von Oswald et al.): W_K = W_Q = [I_d 0] and P W_V = (η/N) [[0, 0], [W_0, −1]],
i.e. the value is (W_0 x_s − y_s) e_1 and W_O writes (η/N)× it into the y coordinate. The query's
y coordinate becomes ỹ_q = (η/N) Σ_i (W_0 x_i − y_i) x_iᵀ x_q and the prediction read-out
W_0 x_q − ỹ_q equals W_1 x_q for one explicit GD step W_1 = W_0 − η ∇L(W_0) on
L(W) = (1/2N) Σ_i (W x_i − y_i)² (with W_0 = 0: ŷ = (η/N) Σ y_i x_iᵀ x_q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from icarena.errors import ConfigError, check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.base import Backbone, BackboneConfig


@dataclass
class LinearLayerState:
    """Decoding state of one :class:`LinearAttention`: the cached keys and values (B, H, cap, dh)
    while the prefix fits them, then their fold kv = Σ k vᵀ (B, H, dh, dh)."""

    keys: torch.Tensor | None
    values: torch.Tensor | None
    kv: torch.Tensor | None = None


class LinearAttention(nn.Module):
    """Multi-head linear attention on (B, T, D_in) -> (B, T, D_out); see the module docstring.

    Args:
        d_model: input width D_in.
        n_heads: heads H.
        head_dim: width of q, k and v per head (default d_model // n_heads).
        out_dim: output width D_out (default d_model).
        bias: biases in the four projections.
        normalize: ``"none"`` (Σ over keys) or ``"count"`` (mean over keys).
        scale: constant factor on the attention scores.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        head_dim: int | None = None,
        out_dim: int | None = None,
        *,
        bias: bool = False,
        normalize: str = "none",
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        check(normalize in ("none", "count"),
              f"normalize must be 'none' or 'count', got {normalize!r}")
        self.n_heads = n_heads
        self.head_dim = head_dim or d_model // n_heads
        inner = n_heads * self.head_dim
        self.q = nn.Linear(d_model, inner, bias=bias)
        self.k = nn.Linear(d_model, inner, bias=bias)
        self.v = nn.Linear(d_model, inner, bias=bias)
        self.o = nn.Linear(inner, out_dim or d_model, bias=bias)
        self.normalize = normalize
        self.scale = scale
        self.chunk = 64  # positions per chunk of the causal path (see causal_linear_attention)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, dh)

    def forward(
        self, x: torch.Tensor, *, causal: bool = False, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, D_in); key_mask (B, T) bool, True = position may serve as a key/value."""
        B, T, _ = x.shape
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        if key_mask is not None:
            m = key_mask.to(x.dtype)[:, None, :, None]  # (B, 1, T, 1)
            k = k * m
            count = m.expand(B, 1, T, 1)
        else:
            count = torch.ones(B, 1, T, 1, dtype=x.dtype, device=x.device)
        if causal:
            out, _ = causal_linear_attention(q, k, v, chunk=self.chunk)
            n = torch.cumsum(count, dim=2)
        else:
            kv = torch.einsum("bhsd,bhse->bhde", k, v)  # (B, H, dh, dh)
            out = torch.einsum("bhtd,bhde->bhte", q, kv)
            n = count.sum(dim=2, keepdim=True)
        out = out * self.scale
        if self.normalize == "count":
            out = out / n.clamp(min=1)
        return self.o(out.transpose(1, 2).reshape(B, T, -1))

    def decode(self, x: torch.Tensor, state: LinearLayerState, pos: int) -> torch.Tensor:
        """Causal attention of t new positions x (B, t, D_in) after ``pos`` earlier ones held
        by ``state`` (updated in place); returns (B, t, D_out). Every position is a key.

        While the prefix is at most ``state.keys``' capacity (head_dim positions) the keys and
        values are cached and out = (q Kᵀ) V, as ``forward`` computes it, at O(pos · dh) per
        token; beyond, they are folded once into S = Σ k vᵀ and out = q S + ..., O(dh²).
        """
        B, t, _ = x.shape
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        if state.keys is not None and pos + t <= state.keys.shape[2]:
            state.keys[:, :, pos:pos + t] = k
            state.values[:, :, pos:pos + t] = v
            a = q @ state.keys[:, :, :pos + t].transpose(-1, -2)       # (B, H, t, pos + t)
            if t > 1:
                a = torch.tril(a, diagonal=pos)
            out = a @ state.values[:, :, :pos + t]
        else:
            if state.keys is not None:  # fold the cached keys and values into the state
                kc, vc = state.keys[:, :, :pos], state.values[:, :, :pos]
                state.kv = kc.transpose(-1, -2) @ vc
                state.keys = state.values = None
            out, state.kv = causal_linear_attention(q, k, v, state.kv, chunk=self.chunk,
                                                    keep_state=True)
        out = out * self.scale
        if self.normalize == "count":
            n = torch.arange(pos + 1, pos + t + 1, dtype=x.dtype, device=x.device)
            out = out / n[:, None]
        return self.o(out.transpose(1, 2).reshape(B, t, -1))

    def init_state(self, x: torch.Tensor, max_len: int) -> LinearLayerState:
        """An empty decoding state for the batch of x (B, ·, D_in) and sequences <= max_len."""
        shape = (x.shape[0], self.n_heads, min(max_len, self.head_dim), self.head_dim)
        return LinearLayerState(x.new_empty(shape), x.new_empty(shape))

    def scores(
        self, x: torch.Tensor, *, causal: bool = False, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Un-normalised attention matrix (B, H, T, T): scale · q_t·k_s, 0 where s ∉ K(t).

        For probes and tests only (it materialises T × T; ``forward`` never does).
        """
        T = x.shape[1]
        q, k = self._heads(self.q(x)), self._heads(self.k(x))
        a = self.scale * q @ k.transpose(-1, -2)
        allowed = torch.ones(T, T, dtype=torch.bool, device=x.device)
        if causal:
            allowed = torch.tril(allowed)
        allowed = allowed[None, None]
        if key_mask is not None:
            allowed = allowed & key_mask[:, None, None, :]
        a = a * allowed
        if self.normalize == "count":
            a = a / allowed.sum(-1, keepdim=True).clamp(min=1)
        return a


def causal_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor | None = None, *,
    chunk: int = 64, keep_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """out_t = q_t · (state + Σ_{s<=t} k_s v_sᵀ), chunk by chunk (module docstring).

    Args:
        q, k, v: (B, H, T, dh) (masked keys already zeroed).
        state: (B, H, dh, dh) Σ k vᵀ of earlier positions, or None (none).
        chunk: positions per chunk C.
        keep_state: also return the state after the last position (else None).
    Returns:
        out (B, H, T, dh), state (B, H, dh, dh) or None.
    """
    T = q.shape[2]
    outs = []
    for c0 in range(0, T, chunk):
        qc, kc, vc = q[:, :, c0:c0 + chunk], k[:, :, c0:c0 + chunk], v[:, :, c0:c0 + chunk]
        out = torch.tril(qc @ kc.transpose(-1, -2)) @ vc
        if state is not None:
            out = out + qc @ state
        outs.append(out)
        if keep_state or c0 + chunk < T:
            kv = kc.transpose(-1, -2) @ vc
            state = kv if state is None else state + kv
    return (outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)), (
        state if keep_state else None)


# ---------------------------------------------------------------------------------------------
# The trainable backbone.


@dataclass
class LinearConfig(BackboneConfig):
    """Config of the ``linear`` backbone."""

    mlp_ratio: float = 4.0
    """Hidden width of the MLP as a multiple of d_model (0: attention-only blocks)."""
    normalize: str = "count"
    """'count': average k vᵀ over the keys seen (stable training); 'none': plain sum."""
    bias: bool = True
    """Biases in Linear and LayerNorm layers."""
    layer_norm: bool = True
    """Pre-LN blocks and a final LayerNorm (False: a pure linear-attention stack, as in LSA)."""
    learned_positions: bool = True
    """Add learned absolute position embeddings."""

    def validate(self) -> None:
        super().validate()
        check(self.mlp_ratio >= 0, f"mlp_ratio must be >= 0, got {self.mlp_ratio}")
        check(self.normalize in ("none", "count"),
              f"normalize must be 'none' or 'count', got {self.normalize!r}")


class _LinearBlock(nn.Module):
    def __init__(self, cfg: LinearConfig) -> None:
        super().__init__()
        D = cfg.d_model
        norm = (lambda: nn.LayerNorm(D, bias=cfg.bias)) if cfg.layer_norm else nn.Identity
        self.ln1, self.ln2 = norm(), norm()
        self.attn = LinearAttention(D, cfg.n_heads, bias=cfg.bias, normalize=cfg.normalize,
                                    scale=1.0 / math.sqrt(D // cfg.n_heads))
        hidden = int(round(cfg.mlp_ratio * D))
        self.mlp = (nn.Sequential(nn.Linear(D, hidden, bias=cfg.bias), nn.GELU(),
                                  nn.Linear(hidden, D, bias=cfg.bias)) if hidden else None)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, causal: bool, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), causal=causal, key_mask=key_mask))
        if self.mlp is not None:
            x = x + self.drop(self.mlp(self.ln2(x)))
        return x

    def decode(self, x: torch.Tensor, state: LinearLayerState, pos: int) -> torch.Tensor:
        x = x + self.attn.decode(self.ln1(x), state, pos)
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x


@dataclass
class LinearState:
    """Decoding state of :class:`LinearTransformer`: positions seen and each layer's
    :class:`LinearLayerState`. ``decode`` updates it in place: decode on from the state it
    returned last."""

    pos: int
    layers: list[LinearLayerState]


@register("linear", LinearConfig,
          "Linear-attention transformer (no softmax; causal in chunks with a running state); "
          "OLS/GD weight constructions.")
class LinearTransformer(Backbone):
    """Stack of linear-attention blocks: (B, T, D) -> (B, T, D).

    Causal (``causal=True``): position t sees S_t = Σ_{s<=t} k_s v_sᵀ (chunked running sums).
    Padded positions (``pad_mask``) are never keys; real positions do not depend on them.
    """

    config: LinearConfig
    incremental_decoding = True

    def __init__(self, config: LinearConfig) -> None:
        super().__init__(config)
        self.wpe = (nn.Embedding(config.max_len, config.d_model)
                    if config.learned_positions else None)
        self.blocks = nn.ModuleList(_LinearBlock(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias) if config.layer_norm else None
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(x.shape[1], device=x.device))[None]
        key_mask = None if pad_mask is None else ~pad_mask
        for block in self.blocks:
            x = block(x, self.causal, key_mask)
        return self.ln_f(x) if self.ln_f is not None else x

    def decode(self, x: torch.Tensor, state: LinearState | None = None
               ) -> tuple[torch.Tensor, LinearState]:
        """Outputs (B, t, D) at the t positions after ``state`` (None: the start) and the
        state (the same object, updated in place); equal to ``forward`` on the whole prefix up
        to rounding, at O(min(pos, dh) · dh) per token (no dropout, no padding)."""
        if state is None:
            state = LinearState(0, [b.attn.init_state(x, self.config.max_len)
                                    for b in self.blocks])
        pos = state.pos
        self.check_decode(x, pos)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(pos, pos + x.shape[1], device=x.device))[None]
        for block, layer in zip(self.blocks, state.layers, strict=True):
            x = block.decode(x, layer, pos)
        state.pos = pos + x.shape[1]
        return (self.ln_f(x) if self.ln_f is not None else x), state


# ---------------------------------------------------------------------------------------------
# Exact constructions (one layer; weights set from data or from the step size).


class OneLayerLSA(nn.Module):
    """One residual linear self-attention layer on tokens [x; y] ∈ R^{d+1}: z + LinAttn(z).

    Keys/values come only from positions with ``key_mask`` True (the context).
    """

    def __init__(self, d: int, head_dim: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.d = d
        self.attn = LinearAttention(d + 1, 1, head_dim, d + 1, bias=False).to(dtype)
        self.requires_grad_(False)  # constructed, not trained; call requires_grad_() to train

    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        return tokens + self.attn(tokens, key_mask=key_mask)

    def query_outputs(self, x_ctx: torch.Tensor, y_ctx: torch.Tensor,
                      x_query: torch.Tensor) -> torch.Tensor:
        """y coordinate of the query tokens after the layer.

        Args:
            x_ctx (n, d) or (B, n, d); y_ctx (n,) or (B, n); x_query (m, d) or (B, m, d).
        Returns:
            (m,) or (B, m).
        """
        single = x_ctx.dim() == 2
        if single:
            x_ctx, y_ctx, x_query = x_ctx[None], y_ctx[None], x_query[None]
        dtype = self.attn.q.weight.dtype
        B, n, _ = x_ctx.shape
        m = x_query.shape[1]
        ctx = torch.cat([x_ctx, y_ctx[..., None]], dim=-1)
        qry = torch.cat([x_query, torch.zeros(B, m, 1, dtype=x_query.dtype)], dim=-1)
        tokens = torch.cat([ctx, qry], dim=1).to(dtype)
        key_mask = torch.zeros(B, n + m, dtype=torch.bool)
        key_mask[:, :n] = True
        out = self.forward(tokens, key_mask)[:, n:, self.d]
        return out[0] if single else out


def _as_f64(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def ols_weights(X: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor,
                rtol: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, P) of the Tan–Zhao construction: L = V S⁻¹ (d × d), P = Lᵀ Xᵀ Y (d,).

    Raises ConfigError when X (n × d) does not have full column rank d (numerical rank with
    singular values below ``rtol`` · σ_max, default max(n, d) · machine epsilon, counted as 0).
    """
    X, Y = _as_f64(X), _as_f64(Y)
    check(X.dim() == 2, f"X must be (n, d), got shape {tuple(X.shape)}")
    n, d = X.shape
    check(Y.shape == (n,), f"Y must be (n,) = ({n},), got {tuple(Y.shape)}")
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    tol = (rtol if rtol is not None else max(n, d) * torch.finfo(torch.float64).eps) * (
        float(S[0]) if S.numel() else 0.0)
    rank = int((S > tol).sum())
    if rank < d:
        raise ConfigError(
            f"OLS construction needs X of full column rank d={d}, but rank(X) = {rank} "
            f"(n={n} points): XᵀX is singular and OLS is not unique. Supply at least d linearly "
            "independent points (n >= d), drop redundant features, or use the minimum-norm / "
            "ridge fit (icarena.agents.regression.least_squares / ridge) instead"
        )
    L = Vh.T / S  # V S^{-1}
    return L, L.T @ (X.T @ Y)


def ols_construction(X: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor) -> OneLayerLSA:
    """One linear-attention layer whose forward pass returns the OLS fit of (X, Y) (float64).

    ``layer.query_outputs(X, Y, x_q)`` = x_qᵀ β̂_OLS; ``layer.attn.scores`` on the context
    tokens = the hat matrix. See the module docstring.
    """
    L, P = ols_weights(X, Y)
    d = L.shape[0]
    layer = OneLayerLSA(d, head_dim=d)
    w_qkv = torch.cat([L.T, torch.zeros(d, 1, dtype=torch.float64)], dim=1)  # (d, d+1)
    w_o = torch.zeros(d + 1, d, dtype=torch.float64)
    w_o[d] = P
    with torch.no_grad():
        for lin in (layer.attn.q, layer.attn.k, layer.attn.v):
            lin.weight.copy_(w_qkv)
        layer.attn.o.weight.copy_(w_o)
    return layer


def gd_construction(d: int, eta: float, n: int,
                    w0: np.ndarray | torch.Tensor | None = None) -> OneLayerLSA:
    """von Oswald et al.'s layer: query y-slot becomes (η/N) Σ_i (W_0 x_i − y_i) x_iᵀ x_q.

    Predict with :func:`gd_predict` (= W_0 x_q − y-slot), which equals one GD step from W_0
    with step size ``eta`` on L(W) = (1/2N) Σ (W x_i − y_i)² over the ``n`` context points.
    """
    check(d >= 1 and n >= 1, f"d and n must be >= 1, got d={d}, n={n}")
    w0_t = torch.zeros(d, dtype=torch.float64) if w0 is None else _as_f64(w0).reshape(-1)
    check(w0_t.shape == (d,), f"w0 must have d={d} entries, got {tuple(w0_t.shape)}")
    layer = OneLayerLSA(d, head_dim=d)
    eye = torch.cat([torch.eye(d, dtype=torch.float64),
                     torch.zeros(d, 1, dtype=torch.float64)], dim=1)
    w_v = torch.zeros(d, d + 1, dtype=torch.float64)
    w_v[0, :d], w_v[0, d] = w0_t, -1.0
    w_o = torch.zeros(d + 1, d, dtype=torch.float64)
    w_o[d, 0] = eta / n
    with torch.no_grad():
        layer.attn.q.weight.copy_(eye)
        layer.attn.k.weight.copy_(eye)
        layer.attn.v.weight.copy_(w_v)
        layer.attn.o.weight.copy_(w_o)
    layer.register_buffer("w0", w0_t)
    return layer


def gd_predict(layer: OneLayerLSA, x_ctx: torch.Tensor, y_ctx: torch.Tensor,
               x_query: torch.Tensor) -> torch.Tensor:
    """Prediction W_0 x_q − ỹ_q of a :func:`gd_construction` layer (von Oswald's read-out)."""
    w0 = layer.w0  # type: ignore[attr-defined]
    return x_query.to(torch.float64) @ w0 - layer.query_outputs(x_ctx, y_ctx, x_query)


def preconditioned_gd_construction(gamma: np.ndarray | torch.Tensor, n: int) -> OneLayerLSA:
    """One preconditioned GD step from 0: query y-slot = x_qᵀ Γ (1/n) Σ_i y_i x_i (Γ symmetric).

    With x ~ N(0, I_d) the optimal 1-layer linear transformer uses Γ = n/(n + d + 1) I
    (Ahn et al. 2023; Zhang, Frei & Bartlett 2024), risk (d + 1)/(n + d + 1) per unit ‖w‖².
    """
    G = _as_f64(gamma)
    check(G.dim() == 2 and G.shape[0] == G.shape[1], f"gamma must be (d, d), got {tuple(G.shape)}")
    check(bool(torch.allclose(G, G.T)), "gamma must be symmetric")
    d = G.shape[0]
    layer = OneLayerLSA(d, head_dim=d)
    pad = torch.zeros(d, 1, dtype=torch.float64)
    w_v = torch.zeros(d, d + 1, dtype=torch.float64)
    w_v[0, d] = 1.0
    w_o = torch.zeros(d + 1, d, dtype=torch.float64)
    w_o[d, 0] = 1.0 / n
    with torch.no_grad():
        layer.attn.q.weight.copy_(torch.cat([G, pad], dim=1))
        layer.attn.k.weight.copy_(torch.cat([torch.eye(d, dtype=torch.float64), pad], dim=1))
        layer.attn.v.weight.copy_(w_v)
        layer.attn.o.weight.copy_(w_o)
    return layer


__all__ = [
    "LinearAttention",
    "causal_linear_attention",
    "LinearConfig",
    "LinearLayerState",
    "LinearState",
    "LinearTransformer",
    "OneLayerLSA",
    "gd_construction",
    "gd_predict",
    "ols_construction",
    "ols_weights",
    "preconditioned_gd_construction",
]


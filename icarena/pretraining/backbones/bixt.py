"""BiXT backbone: bi-directional cross-attention between N tokens and M learned latents.

Hiller, Ehinger, Drummond, "Perceiving Longer Sequences With Bi-Directional Cross-Attention
Transformers", NeurIPS 2024 (arXiv 2402.12138). Latents Z (M, D_l) are a learned parameter
broadcast over the batch; tokens X (N, D). Each side has a "reference" and a "value" projection
and there is no separate Q/K; one logit matrix serves both directions::

    [Rz, Vz] = LN(Z) Wz,   [Rx, Vx] = LN(X) Wx         (D_l -> 2 D_a and D -> 2 D_a)
    A        = s Rz Rx^T                  (h, M, N),  s = (D_a / h)^-1/2, computed once
    Z_new    = softmax_N(A)   Vx          latents read tokens
    X_new    = softmax_M(A^T) Vz          tokens read latents
    Z += Oz(Z_new);  X += Ox(X_new)

A layer is (a) this cross-attention block with pre-LN MLPs (ratio 4) on both sides, then (b) a
standard pre-LN self-attention block on the M latents. Tokens get a fixed Fourier (sin/cos, 32
features, temperature 1e4) positional encoding projected to D and added; latents get none. A final
LayerNorm is applied to the token states. Cost is linear in N for fixed M: no tensor has two axes
of size N.

icarena choices:

* Every layer is bi-directional (the paper's last layer updates only the latents, for
  classification from the latents; a backbone that returns token states needs them updated).
* Padded tokens get -inf (the dtype's minimum) in the softmax over N, so latents never read them.
* **Modes.** BiXT is not causal and the paper has no causal variant (the latents are a shared
  bottleneck). ``mode="bidirectional"`` (the default with ``causal=False``) is the paper's
  encoder. Task heads use it as an *encoder with a query read-out* ("encoder_query_readout"):
  encode context + query with the query's target zeroed and read the prediction from the query
  token's output state; only valid with one query per sequence (e.g. regression read-outs).
  ``mode="prefix_reencode"`` (the default with ``causal=True``) is exact and faithful: every prefix
  x_{<=t} is encoded on its own (batched, with a token padding mask) and its last token's output
  is the output at t, so position t never sees t' > t. Cost O(N^2 M D) (fine for N <~ 128);
  ``prefix_chunk`` bounds the memory (and trims padding) by encoding that many prefixes per call.
  ``mode="bidirectional"`` with ``causal=True`` is refused (ConfigError).
  ``mode="latent_scan"`` (causal only, chosen explicitly) is icarena's *non-paper* causal
  variant with a cost linear in N, below.
* Init ("jax"): xavier-uniform Linear weights with zero biases, latents trunc-normal(std .02).

Latent scan (``mode="latent_scan"``; icarena's variant, not in the paper). Every position t
carries its own latent set Z_t (B, T, M, D_l) summarising the tokens x_{<=t}; a layer's input
latents are Z_t^0 = Z (the learned latents, the same for every t). Layer l (per head; LN are the
layer's own norms, W its own projections)::

    Rz      = LN_z(Z) Wz_ref                  (M, D_a)     from the *learned* latents: no t
    Vz_t    = LN_z(Z_t^{l-1}) Wz_val          (B, T, M, D_a)
    [Rx,Vx] = LN_x(X^{l-1}) Wx                (B, T, D_a) each
    A[m, s] = s_h Rz[m] . Rx[s]               (B, h, M, T): one logit matrix, as BiXA
    Znew_t[m] = sum_{s<=t} exp(A[m,s]) Vx[s] / sum_{s<=t} exp(A[m,s])    latents read x_{<=t}
    Xnew[t]   = sum_m softmax_m(A[m,t]) Vz_t[m]                        token t reads Z_t

followed, at every position, by the layer's residuals and MLPs on both sides and its latent
self-attention block over the M latents of that position (a batch of B*T sets). The parameters
and state_dict keys are those of the other modes, so one checkpoint serves every mode.

The deviation from the paper's layer: its logits in layer l use the *refined* latents Z^{l-1};
here Rz comes from the learned Z in every layer, so A has no position axis t and the latent
read is a causal softmax whose sums can be accumulated over s. In layer 1 (Z_t^0 = Z) this is
exactly BiXA on the prefix x_{<=t}: Z_t^1 equals the latents of encoding x_{<=t} alone. From
layer 2 on the scan also differs from ``prefix_reencode`` the way any one-pass causal model
does: token s's states are computed once, from its own latents Z_s, where re-encoding prefix
t > s recomputes them with latents that have read x_{<=t}.

The cumulative softmax (:func:`causal_latent_read`) is computed in chunks of ``scan_chunk``
positions with running maxima (online-softmax rescaling): inside a chunk an explicit
(chunk x chunk) causal weight matrix, across chunks a carried (max, weighted sum, normaliser)
per (b, h, m); every exponent is <= 0, so large logits neither overflow nor leave a 0/0.
Padded tokens get the dtype's minimum as logit and a zero value: they are never read (a prefix
with no real token reads 0). Attention dropout acts on the read vectors Znew (the normalised
latent weights are never materialised). Cost per layer O(T M (D_a C + D_l^2 + M D_l)) with
C = ``scan_chunk``: linear in T; no tensor has two axes of size T. With M latents per position
the latent side does the work of a GPT block on M T tokens (without attention across T). No
token reads the last layer's latents, so the scan skips their update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from icarena.errors import check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.base import Backbone, BackboneConfig
from icarena.pretraining.backbones.gpt import MLP, Block, GPTConfig

MODES = ("auto", "bidirectional", "prefix_reencode", "latent_scan")


@dataclass
class BiXTConfig(BackboneConfig):
    """Config of the ``bixt`` backbone (d_model = token width D)."""

    n_latents: int = 32
    """Number of learned latents M (the paper uses 64; ablations 32, 128)."""
    d_latent: int = 0
    """Latent width D_l (0: d_model)."""
    d_attn: int = 0
    """Width D_a of the reference/value projections (0: d_model); split over n_heads."""
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of the side's width (tokens and latents)."""
    mode: str = "auto"
    """'auto' (prefix_reencode if causal else bidirectional), 'bidirectional', 'prefix_reencode',
    'latent_scan' (causal, linear in T; icarena's variant, module docstring)."""
    prefix_chunk: int = 0
    """prefix_reencode: prefixes encoded per call (0: ceil(T/4)); bounds memory and work."""
    scan_chunk: int = 32
    """latent_scan: positions per chunk of the causal latent read (any value gives the same
    outputs up to rounding; it trades the (chunk x chunk) weights against the chunk loop)."""
    fourier_features: int = 32
    """Width of the Fourier positional features (0: no positional encoding)."""
    fourier_temperature: float = 1e4
    """Temperature of the Fourier features."""
    eps: float = 1e-6
    """LayerNorm epsilon."""

    def validate(self) -> None:
        super().validate()
        check(self.n_latents >= 1, f"n_latents must be >= 1, got {self.n_latents}")
        check(self.d_latent >= 0 and self.d_attn >= 0, "d_latent and d_attn must be >= 0")
        check(self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}")
        check(self.prefix_chunk >= 0, f"prefix_chunk must be >= 0, got {self.prefix_chunk}")
        check(self.scan_chunk >= 1, f"scan_chunk must be >= 1, got {self.scan_chunk}")
        check(self.mlp_ratio > 0, f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        check(self.fourier_features >= 0 and self.fourier_features % 2 == 0,
              f"fourier_features must be even and >= 0, got {self.fourier_features}")
        check(self.fourier_temperature > 0, "fourier_temperature must be > 0")
        check(self.eps > 0, f"eps must be > 0, got {self.eps}")
        d_lat, d_attn = self.d_latent or self.d_model, self.d_attn or self.d_model
        check(d_attn % self.n_heads == 0,
              f"d_attn ({d_attn}) must be divisible by n_heads ({self.n_heads})")
        check(d_lat % self.n_heads == 0,
              f"d_latent ({d_lat}) must be divisible by n_heads ({self.n_heads})")
        check(
            not (self.causal and self.mode == "bidirectional"),
            "BiXT in mode='bidirectional' is not causal (its latents read every token); for "
            "next-token tasks use mode='prefix_reencode' (exact, O(N^2)) or build it with "
            "causal=False and read a single query position",
        )
        check(not (not self.causal and self.mode == "prefix_reencode"),
              "mode='prefix_reencode' is the causal mode; set causal=True or use "
              "mode='bidirectional'")
        check(self.causal or self.mode != "latent_scan",
              "mode='latent_scan' is a causal mode; set causal=True or use mode='bidirectional'")

    @property
    def resolved_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "prefix_reencode" if self.causal else "bidirectional"


def fourier_positions(positions: torch.Tensor, n_features: int, temperature: float) -> torch.Tensor:
    """Sin/cos features of integer positions: (T,) -> (T, n_features).

    feature 2i = sin(p / temperature^(2i/n)), feature 2i+1 = cos(p / temperature^(2i/n)).
    """
    i = torch.arange(n_features // 2, dtype=torch.float32, device=positions.device)
    freq = temperature ** (-2.0 * i / n_features)
    ang = positions.float()[:, None] * freq[None]
    return torch.stack((ang.sin(), ang.cos()), dim=-1).reshape(positions.shape[0], n_features)


def causal_latent_read(logits: torch.Tensor, values: torch.Tensor,
                       pad_mask: torch.Tensor | None = None, chunk: int = 32) -> torch.Tensor:
    """Causal softmax read of every prefix: logits (B, h, M, T), values (B, h, T, d) ->
    (B, h, T, M, d) with ``out[b, h, t, m] = sum_{s<=t} e^{A[m,s]} v[s] / sum_{s<=t} e^{A[m,s]}``.

    The latent side of the latent scan (module docstring), linear in T. Positions are split into
    chunks of ``chunk``: inside a chunk the causal weights e^{A[m,s] - mx[m,t]} (mx: the running
    maximum over the chunk's s <= t) form a (chunk, chunk) lower-triangular matrix; across chunks
    a (max, weighted sum, normaliser) triple per (b, h, m) is carried and rescaled to the larger
    maximum. Every exponent is <= 0 and every normaliser >= 1, so no logit size overflows or
    yields 0/0. ``pad_mask`` (B, T), True = padding: those positions get the dtype's minimum as
    logit and a zero value, so they carry no weight once a real token is in the prefix (and a
    prefix of padding only reads 0).
    """
    B, h, M, T = logits.shape
    d = values.shape[-1]
    assert values.shape == (B, h, T, d), (values.shape, logits.shape)
    low = torch.finfo(logits.dtype).min
    if pad_mask is not None:
        logits = logits.masked_fill(pad_mask[:, None, None, :], low)
        values = values.masked_fill(pad_mask[:, None, :, None], 0.0)
    C = max(1, min(chunk, T))
    K = -(-T // C)
    if K * C != T:  # fill the last chunk with unread future positions
        logits = torch.nn.functional.pad(logits, (0, K * C - T), value=low)
        values = torch.nn.functional.pad(values, (0, 0, 0, K * C - T))
    a = logits.reshape(B, h, M, K, C).permute(0, 1, 3, 2, 4)  # (B, h, K, M, C)
    v = values.reshape(B, h, K, C, d)
    mx = a.detach().cummax(dim=-1).values  # (B, h, K, M, C): max over the chunk's s <= t
    later = torch.ones(C, C, dtype=torch.bool, device=a.device).triu(1)  # [t, s]: s > t
    w = (a[..., None, :] - mx[..., :, None]).masked_fill(later, float("-inf")).exp()
    num = (w.reshape(B, h, K, M * C, C) @ v).view(B, h, K, M, C, d)  # within the chunk
    den = w.sum(dim=-1)  # (B, h, K, M, C), >= 1
    # Carry over chunks: the state before chunk k summarises every s in chunks < k.
    c_max = a.new_full((B, h, M), low)
    c_num = a.new_zeros(B, h, M, d)
    c_den = a.new_zeros(B, h, M)
    outs = []
    for k in range(K):
        m_in, n_in, d_in = mx[:, :, k], num[:, :, k], den[:, :, k]  # (B,h,M,C[,d])
        top = torch.maximum(c_max[..., None], m_in)
        f_c, f_in = (c_max[..., None] - top).exp(), (m_in - top).exp()  # (B, h, M, C), <= 1
        n_t = c_num[..., None, :] * f_c[..., None] + n_in * f_in[..., None]
        d_t = c_den[..., None] * f_c + d_in * f_in
        outs.append(n_t / d_t[..., None])  # (B, h, M, C, d)
        c_max, c_num, c_den = top[..., -1], n_t[..., -1, :], d_t[..., -1]
    out = torch.stack(outs, dim=2)  # (B, h, K, M, C, d)
    return out.permute(0, 1, 2, 4, 3, 5).reshape(B, h, K * C, M, d)[:, :, :T]


class BiCrossAttention(nn.Module):
    """Bi-directional cross-attention with one shared logit matrix (BiXA).

    Exactly two in-projections (latent_in: D_l -> 2 D_a, token_in: D -> 2 D_a) and two
    out-projections (latent_out: D_a -> D_l, token_out: D_a -> D): 2 (D_l + D) D_a weights in,
    against 3 (D_l + D) D_a for two separate cross-attentions.
    """

    def __init__(self, d_latent: int, d_token: int, d_attn: int, n_heads: int,
                 dropout: float = 0.0):
        super().__init__()
        self.n_heads, self.d_attn = n_heads, d_attn
        self.latent_in = nn.Linear(d_latent, 2 * d_attn)
        self.token_in = nn.Linear(d_token, 2 * d_attn)
        self.latent_out = nn.Linear(d_attn, d_latent)
        self.token_out = nn.Linear(d_attn, d_token)
        self.drop_latent = nn.Dropout(dropout)
        self.drop_token = nn.Dropout(dropout)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, L, _ = t.shape
        return t.view(B, L, self.n_heads, self.d_attn // self.n_heads).transpose(1, 2)

    def project(self, z: torch.Tensor, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reference and value of both sides, each (B, h, M or N, D_a / h)."""
        rz, vz = self.latent_in(z).chunk(2, dim=-1)
        rx, vx = self.token_in(x).chunk(2, dim=-1)
        return self._heads(rz), self._heads(vz), self._heads(rx), self._heads(vx)

    def logits(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(latent-side logits (B, h, M, N), token-side logits (B, h, N, M) = its transpose)."""
        rz, _, rx, _ = self.project(z, x)
        A = (rz @ rx.transpose(-1, -2)) * (rz.shape[-1] ** -0.5)
        return A, A.transpose(-1, -2)

    def scan_logits(self, z_ref: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Latent-scan logits (B, h, M, N) from position-independent latents z_ref (M, D_l)."""
        da = self.d_attn
        rz = nn.functional.linear(z_ref, self.latent_in.weight[:da], self.latent_in.bias[:da])
        rx = nn.functional.linear(x, self.token_in.weight[:da], self.token_in.bias[:da])
        rz = rz.view(-1, self.n_heads, da // self.n_heads).transpose(0, 1)  # (h, M, dh)
        return (rz @ self._heads(rx).transpose(-1, -2)) * (rz.shape[-1] ** -0.5)

    def forward(self, z: torch.Tensor, x: torch.Tensor, pad_mask: torch.Tensor | None = None,
                *, z_ref: torch.Tensor | None = None, chunk: int = 32,
                update_latents: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """z (B, M, D_l) and x (B, N, D) (already normalised) -> updates (dz, dx).

        Latent scan (``z_ref`` given, module docstring): z (B, N, M, D_l) holds position t's
        latents, z_ref (M, D_l) the normalised learned latents that give the references;
        returns (dz (B, N, M, D_l), dx (B, N, D)); ``chunk`` as :func:`causal_latent_read`;
        ``update_latents=False`` skips the latent read and returns dz = None.
        """
        if z_ref is not None:
            return self.scan(z, x, z_ref, pad_mask, chunk, update_latents)
        B, N, _ = x.shape
        rz, vz, rx, vx = self.project(z, x)
        A = (rz @ rx.transpose(-1, -2)) * (rz.shape[-1] ** -0.5)  # (B, h, M, N)
        A_lat = A
        if pad_mask is not None:
            A_lat = A.masked_fill(pad_mask[:, None, None, :], torch.finfo(A.dtype).min)
        z_new = self.drop_latent(A_lat.softmax(dim=-1)) @ vx  # (B, h, M, dh)
        x_new = self.drop_token(A.transpose(-1, -2).softmax(dim=-1)) @ vz  # (B, h, N, dh)
        z_new = z_new.transpose(1, 2).reshape(B, z.shape[1], self.d_attn)
        x_new = x_new.transpose(1, 2).reshape(B, N, self.d_attn)
        return self.latent_out(z_new), self.token_out(x_new)

    def scan(self, z: torch.Tensor, x: torch.Tensor, z_ref: torch.Tensor,
             pad_mask: torch.Tensor | None, chunk: int, update_latents: bool = True
             ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The latent scan's cross-attention (see :meth:`forward`)."""
        B, N, M, _ = z.shape
        h, da = self.n_heads, self.d_attn
        A = self.scan_logits(z_ref, x)  # (B, h, M, N)
        vz = nn.functional.linear(z, self.latent_in.weight[da:], self.latent_in.bias[da:])
        p = self.drop_token(A.transpose(-1, -2).softmax(dim=-1))  # (B, h, N, M)
        x_new = torch.einsum("bhnm,bnmhd->bnhd", p, vz.view(B, N, M, h, da // h))
        dx = self.token_out(x_new.reshape(B, N, da))
        if not update_latents:
            return None, dx
        vx = nn.functional.linear(x, self.token_in.weight[da:], self.token_in.bias[da:])
        z_new = causal_latent_read(A, self._heads(vx), pad_mask, chunk)  # (B, h, N, M, dh)
        z_new = self.drop_latent(z_new.permute(0, 2, 3, 1, 4).reshape(B, N, M, da))
        return self.latent_out(z_new), dx


class BiXTLayer(nn.Module):
    """(a) BiXA + MLPs on both sides, (b) a pre-LN self-attention block on the latents."""

    def __init__(self, cfg: BiXTConfig):
        super().__init__()
        d, dl = cfg.d_model, cfg.d_latent or cfg.d_model
        da = cfg.d_attn or cfg.d_model
        self.ln_z, self.ln_x = nn.LayerNorm(dl, eps=cfg.eps), nn.LayerNorm(d, eps=cfg.eps)
        self.cross = BiCrossAttention(dl, d, da, cfg.n_heads, cfg.dropout)
        self.ln_zm, self.ln_xm = nn.LayerNorm(dl, eps=cfg.eps), nn.LayerNorm(d, eps=cfg.eps)
        self.mlp_z = MLP(dl, int(round(cfg.mlp_ratio * dl)), True, cfg.dropout)
        self.mlp_x = MLP(d, int(round(cfg.mlp_ratio * d)), True, cfg.dropout)
        self.latent_block = Block(GPTConfig(d_model=dl, n_heads=cfg.n_heads, n_layers=1,
                                            mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout,
                                            causal=False))
        for ln in (self.latent_block.ln1, self.latent_block.ln2):
            ln.eps = cfg.eps

    def forward(self, z: torch.Tensor, x: torch.Tensor, pad_mask: torch.Tensor | None,
                latents: torch.Tensor | None = None, chunk: int = 32, update_latents: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, M, D_l), x (B, N, D) -> the same, updated.

        Latent scan (``latents`` (M, D_l), the backbone's learned latents, given): z is
        (B, N, M, D_l), one latent set per position, and the latent self-attention runs over the
        M latents of each position. ``update_latents=False`` (the scan's last layer, whose
        latents no token reads) updates only the tokens and returns z as given.
        """
        if latents is None:
            dz, dx = self.cross(self.ln_z(z), self.ln_x(x), pad_mask)
        else:
            dz, dx = self.cross(self.ln_z(z), self.ln_x(x), pad_mask, z_ref=self.ln_z(latents),
                                chunk=chunk, update_latents=update_latents)
        x = x + dx
        x = x + self.mlp_x(self.ln_xm(x))
        if dz is None:
            return z, x
        z = z + dz
        z = z + self.mlp_z(self.ln_zm(z))
        shape = z.shape
        z = self.latent_block(z.reshape(-1, *shape[-2:]), None, False).view(shape)
        return z, x


@register("bixt", BiXTConfig,
          "Bi-directional cross-attention tokens<->latents, linear in N (BiXT, Hiller 2024); "
          "causal: exact prefix re-encoding (O(N^2), default) or mode=latent_scan (linear, "
          "non-paper).")
class BiXT(Backbone):
    """BiXT backbone: (B, T, D) -> (B, T, D); see the module docstring for the modes."""

    config: BiXTConfig

    def __init__(self, config: BiXTConfig):
        super().__init__(config)
        c = config
        dl = c.d_latent or c.d_model
        self.mode = c.resolved_mode
        self.latents = nn.Parameter(torch.empty(c.n_latents, dl))
        self.pos_proj = nn.Linear(c.fourier_features, c.d_model) if c.fourier_features else None
        self.drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(BiXTLayer(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.eps)
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.latents, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def add_positions(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos_proj is None:
            return x
        pos = torch.arange(x.shape[1], device=x.device)
        feats = fourier_positions(pos, self.config.fourier_features,
                                  self.config.fourier_temperature).to(x.dtype)
        return x + self.pos_proj(feats)[None]

    def encode(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidirectional encoder: x (B, N, D) -> (latents (B, M, D_l), tokens (B, N, D)).

        Positional encoding and final norm included; padded tokens are never read.
        """
        x = self.drop(self.add_positions(x))
        z = self.latents[None].expand(x.shape[0], -1, -1)
        for layer in self.layers:
            z, x = layer(z, x, pad_mask)
        return z, self.ln_f(x)

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        if self.mode == "bidirectional":
            return self.encode(x, pad_mask)[1]
        if self.mode == "latent_scan":
            return self.latent_scan(x, pad_mask)
        return self.prefix_reencode(x, pad_mask)

    def latent_scan(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Causal outputs (B, T, D) of the latent scan (module docstring): every position t
        carries latents (B, T, M, D_l) that have read x_{<=t} only."""
        x = self.drop(self.add_positions(x))
        B, T, _ = x.shape
        z = self.latents[None, None].expand(B, T, *self.latents.shape)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):  # the last layer's latents are never read
            z, x = layer(z, x, pad_mask, self.latents, self.config.scan_chunk, i < last)
        return self.ln_f(x)

    def prefix_reencode(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Exact causal outputs: out[:, t] = encode(x[:, :t+1])[1][:, t].

        Prefixes t0..t1-1 of a chunk are batched as (B * (t1 - t0), t1, D) with a token padding
        mask hiding j > t (and the caller's padding); the batch axis is b-major. Chunks trim the
        padding: 4 chunks (the default) process ~0.63 T^2 tokens per sequence instead of T^2.
        """
        B, T, D = x.shape
        chunk = self.config.prefix_chunk or -(-T // 4)
        j = torch.arange(T, device=x.device)
        outs = []
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            n = t1 - t0
            t = torch.arange(t0, t1, device=x.device)
            xp = x[:, None, :t1].expand(B, n, t1, D).reshape(B * n, t1, D)
            hide = (j[None, :t1] > t[:, None])[None].expand(B, n, t1)  # (B, n, t1)
            if pad_mask is not None:
                hide = hide | pad_mask[:, None, :t1]
            _, tokens = self.encode(xp, hide.reshape(B * n, t1))
            tokens = tokens.view(B, n, t1, D)
            outs.append(tokens[:, torch.arange(n, device=x.device), t])  # (B, n, D)
        return torch.cat(outs, dim=1)


def count_bixa_params(d_latent: int, d_token: int, d_attn: int) -> int:
    """Parameters of one BiCrossAttention.

    In: 2 (D_l + D) D_a weights + 4 D_a biases; out: D_a (D_l + D) weights + D_l + D biases.
    """
    return 2 * (d_latent + d_token) * d_attn + 4 * d_attn + d_attn * (d_latent + d_token) + (
        d_latent + d_token)


__all__ = ["BiXT", "BiXTConfig", "BiCrossAttention", "causal_latent_read", "count_bixa_params",
           "fourier_positions"]

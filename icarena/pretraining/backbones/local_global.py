"""``local_global``: a shallow, wide softmax encoder — PoU-Transformer (reconstruction).

Shi & Liao 2026 (arXiv 2605.08811), "Learning theory of transformers: local-to-global
approximation via softmax partition of unity", prove O(ε^{-d/α}) parameter approximation and
the minimax rate O(n^{-2α/(2α+d)} log n) for α-Hölder regression with a dense transformer of
**two encoder blocks**, **softmax attention**, per-token **FFNs with one hidden layer** and
**sinusoidal positional encodings**. Only the abstract was available,
so this module is a reconstruction of that architecture, not the paper's exact embedding:

    x ← x + PE_sin(0..T-1)                      (Vaswani et al. 2017 sinusoids, base 10000)
    repeat n_layers (default 2) times:
        x ← x + MHA_softmax(N1(x))              (bidirectional by default)
        x ← x + W2 act(W1 N2(x) + b1) + b2      (one hidden layer of width mlp_ratio · D)
    x ← N_f(x)

Mechanism it can represent (the softmax partition of unity): with query q(x) = [x; 1] and key k_j =
β[2c_j; −‖c_j‖²] (a linear map of token j's positional encoding), softmax_j(q·k_j) = softmax_j(−β‖x
− c_j‖²) is a partition of unity over centres c_j; block 1 forms it, the FFNs compute local values
and block 2
aggregates them.

Choices the paper (as available) leaves open, and what this module does:

* positional encodings are *added* to the token states (standard; the reconstruction's
  concatenation [x; PE(j)] is the special case where read-in and PE use disjoint coordinates);
* normalisation: ``norm="pre"`` (pre-LN, default: trains reliably), ``"post"`` (the original
  encoder) or ``"none"`` (closest to the approximation-theory construction);
* FFN activation ReLU (``"relu"``, as in the approximation arguments) or ``"gelu"``;
* "wide": ``mlp_ratio`` defaults to 8 (hidden width 8·D) and depth to 2 blocks;
* bidirectional by default (``causal=False``); ``causal=True`` masks the future exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.base import Backbone, BackboneConfig


def sinusoidal_encoding(T: int, D: int, base: float = 10000.0) -> torch.Tensor:
    """(T, D) sinusoids: PE[t, 2i] = sin(t / base^{2i/D}), PE[t, 2i+1] = cos(same)."""
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    freq = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    pe = torch.zeros(T, D, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: D // 2])
    return pe.float()


@dataclass
class LocalGlobalConfig(BackboneConfig):
    """Config of the ``local_global`` backbone (defaults: 2 blocks, bidirectional, wide FFN)."""

    n_layers: int = 2
    """Encoder blocks (the paper's architecture has 2)."""
    causal: bool = False
    """Mask the future (the paper's encoder is bidirectional)."""
    mlp_ratio: float = 8.0
    """FFN hidden width as a multiple of d_model ("wide")."""
    activation: str = "relu"
    """FFN activation: 'relu' or 'gelu'."""
    norm: str = "pre"
    """LayerNorm placement: 'pre', 'post' or 'none'."""
    pe_base: float = 10000.0
    """Base of the sinusoidal positional encoding."""

    def validate(self) -> None:
        super().validate()
        check(self.mlp_ratio > 0, f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        check(self.activation in ("relu", "gelu"),
              f"activation must be 'relu' or 'gelu', got {self.activation!r}")
        check(self.norm in ("pre", "post", "none"),
              f"norm must be 'pre', 'post' or 'none', got {self.norm!r}")
        check(self.pe_base > 1, f"pe_base must be > 1, got {self.pe_base}")


class _EncoderBlock(nn.Module):
    def __init__(self, cfg: LocalGlobalConfig) -> None:
        super().__init__()
        D = cfg.d_model
        self.n_heads, self.norm, self.dropout = cfg.n_heads, cfg.norm, cfg.dropout
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.fc1 = nn.Linear(D, int(round(cfg.mlp_ratio * D)))
        self.fc2 = nn.Linear(int(round(cfg.mlp_ratio * D)), D)
        self.act = F.relu if cfg.activation == "relu" else F.gelu
        make = nn.LayerNorm if cfg.norm != "none" else (lambda _d: nn.Identity())
        self.n1, self.n2 = make(D), make(D)
        self.drop = nn.Dropout(cfg.dropout)

    def attend(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)
                   for t in self.qkv(x).split(D, dim=-1))
        p = self.dropout if self.training else 0.0
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        ffn = lambda h: self.fc2(self.act(self.fc1(h)))  # noqa: E731
        if self.norm == "post":
            x = self.n1(x + self.drop(self.attend(x, mask, causal)))
            return self.n2(x + self.drop(ffn(x)))
        x = x + self.drop(self.attend(self.n1(x), mask, causal))
        return x + self.drop(ffn(self.n2(x)))


@register("local_global", LocalGlobalConfig,
          "PoU-Transformer (reconstruction of Shi & Liao 2026): 2 wide softmax encoder blocks, "
          "sinusoidal positions.")
class LocalGlobal(Backbone):
    """Shallow, wide softmax encoder with sinusoidal positions: (B, T, D) -> (B, T, D)."""

    config: LocalGlobalConfig

    def __init__(self, config: LocalGlobalConfig) -> None:
        super().__init__(config)
        self.register_buffer("pe", sinusoidal_encoding(config.max_len, config.d_model,
                                                       config.pe_base), persistent=False)
        self.blocks = nn.ModuleList(_EncoderBlock(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model) if config.norm == "pre" else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        T = x.shape[1]
        mask = None
        if pad_mask is not None:
            allowed = (~pad_mask)[:, None, None, :].expand(-1, 1, T, T)
            if self.causal:
                allowed = allowed & torch.tril(torch.ones(T, T, dtype=torch.bool,
                                                          device=x.device))
            # a padded query row keeps its own position so no softmax row is empty
            mask = allowed | torch.eye(T, dtype=torch.bool, device=x.device)
        x = x + self.pe[:T].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask, self.causal)
        return self.ln_f(x)


__all__ = ["LocalGlobal", "LocalGlobalConfig", "sinusoidal_encoding"]

"""GPT backbone: a pre-LN transformer decoder (nanoGPT-style), causal or bidirectional by flag.

Block (Radford et al. 2019; nanoGPT)::

    x = x + Attn(LN1(x))          multi-head softmax attention via scaled_dot_product_attention
    x = x + MLP(LN2(x))           Linear(D, r*D) -> GELU -> Linear(r*D, D)

with learned absolute positions added at the input and a final LayerNorm. With ``causal=True``
position t attends to positions <= t; padded positions (``pad_mask``) are never attended to.

Incremental decoding (causal only): :meth:`GPT.decode` keeps each layer's keys and values of the
positions seen so far (a key/value cache, (B, H, pos, D/H) per layer) and attends the new
positions' queries to them, so a new token costs O(pos) instead of O(pos²).
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


@dataclass
class GPTConfig(BackboneConfig):
    """Config of the ``gpt`` backbone."""

    mlp_ratio: float = 4.0
    """Hidden width of the MLP as a multiple of d_model."""
    bias: bool = True
    """Use biases in Linear and LayerNorm layers."""
    learned_positions: bool = True
    """Add learned absolute position embeddings (False: the task supplies positions)."""

    def validate(self) -> None:
        super().validate()
        check(self.mlp_ratio > 0, f"mlp_ratio must be > 0, got {self.mlp_ratio}")


def attention_mask(
    T: int, causal: bool, pad_mask: torch.Tensor | None, device: torch.device
) -> torch.Tensor | None:
    """Boolean mask (B or 1, 1, T, T) for SDPA: True = may attend; None when nothing is masked.

    Padded keys are masked; a padded query row keeps its diagonal so no row is empty (its
    output is garbage but finite, and nothing real reads it).
    """
    if not causal and pad_mask is None:
        return None
    allowed = torch.ones(T, T, dtype=torch.bool, device=device)
    if causal:
        allowed = torch.tril(allowed)
    allowed = allowed[None, None]
    if pad_mask is not None:
        keys_ok = ~pad_mask[:, None, None, :]
        allowed = allowed & keys_ok
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=device)[None, None]
    return allowed


class SelfAttention(nn.Module):
    """Multi-head softmax self-attention on (B, T, D)."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) -> q, k, v each (B, H, T, D/H)."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        shape = (B, T, self.n_heads, D // self.n_heads)
        return tuple(t.view(shape).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool = False
    ) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.split_heads(x)
        drop = self.dropout if self.training else 0.0
        if mask is None and causal:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))

    def decode(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], pos: int
               ) -> torch.Tensor:
        """Causal attention of t new positions x (B, t, D) to the ``pos`` cached keys/values
        and to themselves; writes the new keys/values into ``cache`` (each (B, H, capacity,
        D/H)) at pos .. pos + t - 1 and returns (B, t, D)."""
        B, t, D = x.shape
        q, k, v = self.split_heads(x)
        cache[0][:, :, pos:pos + t] = k
        cache[1][:, :, pos:pos + t] = v
        k, v = cache[0][:, :, :pos + t], cache[1][:, :, :pos + t]
        if t == 1:  # one new query sees every cached key
            y = F.scaled_dot_product_attention(q, k, v)
        elif pos == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new query i sits at position pos + i
            mask = torch.ones(t, pos + t, dtype=torch.bool, device=x.device).tril(diagonal=pos)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, t, D))

    def attention_weights(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Softmax attention probabilities (B, H, T, T), for probes."""
        q, k, _ = self.split_heads(x)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=-1)


class MLP(nn.Module):
    """Point-wise FFN: Linear(D, hidden) -> GELU -> Linear(hidden, D)."""

    def __init__(self, d_model: int, hidden: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN1 x), then x + MLP(LN2 x)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = SelfAttention(cfg.d_model, cfg.n_heads, cfg.bias, cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg.d_model, int(round(cfg.mlp_ratio * cfg.d_model)), cfg.bias, cfg.dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool = False
    ) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask, causal)
        return x + self.mlp(self.ln2(x))

    def decode(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], pos: int
               ) -> torch.Tensor:
        """The causal block on t new positions (B, t, D) after ``pos`` cached ones."""
        x = x + self.attn.decode(self.ln1(x), cache, pos)
        return x + self.mlp(self.ln2(x))


@dataclass
class KVCache:
    """Decoding state of :class:`GPT`: positions seen and each layer's (keys, values), each
    (B, H, max_len, D/H) of which the first ``pos`` positions are filled. ``decode`` fills it in
    place, so a state is used once: decode on from the state it returned last."""

    pos: int
    layers: list[tuple[torch.Tensor, torch.Tensor]]


@register("gpt", GPTConfig, "Pre-LN GPT decoder (nanoGPT-style), causal or bidirectional.")
class GPT(Backbone):
    """Pre-LN GPT backbone: (B, T, D) -> (B, T, D)."""

    config: GPTConfig
    incremental_decoding = True

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.wpe = (
            nn.Embedding(config.max_len, config.d_model) if config.learned_positions else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def embed_positions(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Add the learned positions start .. start + T - 1 to x (B, T, D)."""
        if self.wpe is None:
            return x
        pos = torch.arange(start, start + x.shape[1], device=x.device)
        return x + self.wpe(pos)[None]

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        mask = attention_mask(x.shape[1], self.causal, pad_mask, x.device)
        x = self.drop(self.embed_positions(x))
        for block in self.blocks:
            x = block(x, mask, self.causal)
        return self.ln_f(x)

    def decode(self, x: torch.Tensor, state: KVCache | None = None
               ) -> tuple[torch.Tensor, KVCache]:
        """Outputs (B, t, D) at the t positions after ``state`` (None: the start), and the
        extended cache (the same object, filled in place); equal to ``forward`` on the whole
        prefix up to rounding (no dropout, no padding)."""
        if state is None:  # preallocated: no copy of the cache per new token
            B, D, H = x.shape[0], self.d_model, self.config.n_heads
            shape = (B, H, self.config.max_len, D // H)
            state = KVCache(0, [(x.new_empty(shape), x.new_empty(shape)) for _ in self.blocks])
        pos = state.pos
        self.check_decode(x, pos)
        x = self.embed_positions(x, pos)
        for block, cache in zip(self.blocks, state.layers, strict=True):
            x = block.decode(x, cache, pos)
        state.pos = pos + x.shape[1]
        return self.ln_f(x), state

    @torch.no_grad()
    def attention_maps(
        self, x: torch.Tensor, *, pad_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Attention probabilities of every layer, each (B, H, T, T), for probes."""
        mask = attention_mask(x.shape[1], self.causal, pad_mask, x.device)
        if mask is None:
            mask = torch.ones(1, 1, x.shape[1], x.shape[1], dtype=torch.bool, device=x.device)
        x = self.embed_positions(x)
        maps = []
        for block in self.blocks:
            maps.append(block.attn.attention_weights(block.ln1(x), mask))
            x = block(x, mask if self.causal or pad_mask is not None else None, self.causal)
        return maps

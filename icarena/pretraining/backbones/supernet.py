"""S3 / AutoFormer weight-sharing supernet over depth, width, heads and MLP ratio.

Chen et al., "Searching the Search Space of Vision Transformer", NeurIPS 2021 (arXiv
2111.14725), building on AutoFormer (Chen et al., ICCV 2021): one set of weights sized for the
largest sub-network; every sub-network uses leading slices of it ("weight entanglement")::

    Linear        W[:out, :in], b[:out]
    q, k, v       each the first heads * head_dim rows of its max block; head_dim fixed, so the
                  Q-K-V width heads * head_dim need not equal the embed width (S3)
    out-proj      W_o[:embed, :heads * head_dim]
    MLP           fc W[:hidden, :embed], proj W[:embed, :hidden], hidden = round(ratio * embed)
    LayerNorm,    weight/bias[:embed] (statistics over the embed active features);
    positions     wpe[:, :embed]
    blocks >= depth are the identity; dropout is scaled by embed / max_embed.

The block is the pre-LN GPT block (causal or bidirectional by flag) with learned positions and a
final LayerNorm, so the max configuration with heads * head_dim = d_model equals the ``gpt``
backbone with the same weights (the parameter names match).

Sub-network genome (:class:`SubnetConfig`): depth, embed, per-layer heads and per-layer MLP
ratios (embed shared by all layers). The space: ``depth_choices``, ``embed_choices``,
``head_choices``, ``mlp_ratio_choices``; empty = the toy space scaled to the maxima,
i.e. depth {ceil(L/3), ceil(L/2), ceil(2L/3), L}, embed {D/2, 3D/4, D}, heads {powers of 2 < H, H},
MLP ratio {r/2, 3r/4, r}; at the defaults (L=6, D=64, H=4, r=4) this is the toy space
depth {2,3,4,6}, embed {32,48,64}, heads {1,2,4}, mlp {2,3,4}.

Interface (I/O width is always d_model = the max embed):

* ``forward`` runs the **active** sub-network (the max one unless ``set_active`` was called) on
  ``x[..., :embed]`` and returns its states zero-padded to d_model, so the read-in / read-out of
  :class:`~icarena.pretraining.model.SequenceModel` are sliced implicitly exactly as AutoFormer
  slices its embedding and head.
* ``set_active(sub)``, ``active``, ``sample_config(rng)`` (uniform over the space: depth, embed,
  then each layer's heads and ratio independently), ``max_config()``, ``min_config()``,
  ``count_params(sub)``, ``extract(sub)`` -> a standalone dense backbone (another ``supernet``
  instance with ``fixed=True`` and width ``embed``) whose outputs equal the supernet's active
  outputs ``[..., :embed]`` on inputs ``[..., :embed]``.
* Supernet training (uniform single-path sampling: a fresh sub-network each step) is done by
  :class:`icarena.pretraining.search.SupernetTask`, a task wrapper that calls ``set_active``
  inside ``sample_batch``; see :mod:`icarena.pretraining.search`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.base import Backbone, BackboneConfig
from icarena.pretraining.backbones.gpt import GPT, attention_mask


@dataclass(frozen=True)
class SubnetConfig:
    """One sub-network: depth, shared embed width, per-layer heads and MLP ratios."""

    depth: int
    embed: int
    heads: tuple[int, ...]
    mlp_ratios: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"depth": self.depth, "embed": self.embed, "heads": list(self.heads),
                "mlp_ratios": list(self.mlp_ratios)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubnetConfig:
        keys = {"depth", "embed", "heads", "mlp_ratios"}
        check(set(d) == keys, f"a sub-network config needs exactly the keys {sorted(keys)}, "
              f"got {sorted(d)}")
        return cls(int(d["depth"]), int(d["embed"]), tuple(int(h) for h in d["heads"]),
                   tuple(float(r) for r in d["mlp_ratios"]))


def mlp_hidden(ratio: float, embed: int) -> int:
    """MLP hidden width of a layer: round(ratio * embed)."""
    return int(round(ratio * embed))


@dataclass
class SupernetConfig(BackboneConfig):
    """Config of the ``supernet`` backbone: maxima (storage) plus the search space.

    d_model, n_layers and n_heads are the max embed, depth and heads.
    """

    d_model: int = 64
    """Max embed width (= the backbone's I/O width)."""
    n_layers: int = 6
    """Max depth."""
    n_heads: int = 4
    """Max heads per layer."""
    head_dim: int = 0
    """Fixed head width (0: d_model // n_heads); Q-K-V width = heads * head_dim."""
    mlp_ratio: float = 4.0
    """Max MLP ratio."""
    depth_choices: tuple[int, ...] = ()
    """Depths in the space (empty: {ceil(L/3), ceil(L/2), ceil(2L/3), L})."""
    embed_choices: tuple[int, ...] = ()
    """Embed widths in the space (empty: {D/2, 3D/4, D})."""
    head_choices: tuple[int, ...] = ()
    """Per-layer head counts in the space (empty: powers of 2 below n_heads, and n_heads)."""
    mlp_ratio_choices: tuple[float, ...] = ()
    """Per-layer MLP ratios in the space (empty: {r/2, 3r/4, r})."""
    fixed: bool = False
    """A dense network (no search space): the only config is the max, with per-layer sizes below."""
    layer_heads: tuple[int, ...] = ()
    """Per-layer max heads (empty: n_heads for every layer)."""
    layer_mlp_ratios: tuple[float, ...] = ()
    """Per-layer max MLP ratios (empty: mlp_ratio for every layer)."""

    def validate(self) -> None:
        # BackboneConfig's checks except d_model % n_heads: the head width is fixed separately.
        check(self.d_model >= 1, f"d_model must be >= 1, got {self.d_model}")
        check(self.n_layers >= 1, f"n_layers must be >= 1, got {self.n_layers}")
        check(self.n_heads >= 1, f"n_heads must be >= 1, got {self.n_heads}")
        check(self.max_len >= 1, f"max_len must be >= 1, got {self.max_len}")
        check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        check(self.mlp_ratio > 0, f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        check(self.head_dim >= 0, f"head_dim must be >= 0, got {self.head_dim}")
        check(self.head_dim > 0 or self.d_model % self.n_heads == 0,
              f"d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads}); set "
              "head_dim explicitly")
        for name in ("depth_choices", "head_choices", "embed_choices", "layer_heads"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("mlp_ratio_choices", "layer_mlp_ratios"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))
        for name in ("layer_heads", "layer_mlp_ratios"):
            v = getattr(self, name)
            check(len(v) in (0, self.n_layers),
                  f"{name} must be empty or have n_layers={self.n_layers} entries, got {len(v)}")
        check(all(1 <= h <= self.n_heads for h in self.layer_heads),
              f"layer_heads must lie in [1, n_heads={self.n_heads}], got {self.layer_heads}")
        check(all(0 < r <= self.mlp_ratio for r in self.layer_mlp_ratios),
              f"layer_mlp_ratios must lie in (0, mlp_ratio={self.mlp_ratio}]")
        if not self.fixed:
            check(not self.layer_heads and not self.layer_mlp_ratios,
                  "layer_heads / layer_mlp_ratios describe a fixed network; set fixed=True")
            sp = self.space()
            for name, values, hi in (("depth_choices", sp["depth"], self.n_layers),
                                     ("embed_choices", sp["embed"], self.d_model),
                                     ("head_choices", sp["heads"], self.n_heads)):
                check(all(1 <= v <= hi for v in values),
                      f"{name} must lie in [1, {hi}], got {values}")
            check(all(0 < r <= self.mlp_ratio for r in sp["mlp_ratio"]),
                  f"mlp_ratio_choices must lie in (0, mlp_ratio={self.mlp_ratio}], "
                  f"got {sp['mlp_ratio']}")
            check(min(mlp_hidden(min(sp["mlp_ratio"]), min(sp["embed"])), 1) >= 1,
                  "the smallest mlp ratio x embed gives an empty MLP; raise them")

    @property
    def hd(self) -> int:
        """Head width."""
        return self.head_dim or self.d_model // self.n_heads

    def layer_max_heads(self) -> tuple[int, ...]:
        return self.layer_heads or (self.n_heads,) * self.n_layers

    def layer_max_ratios(self) -> tuple[float, ...]:
        return self.layer_mlp_ratios or (self.mlp_ratio,) * self.n_layers

    def space(self) -> dict[str, tuple]:
        """The search space (sorted choices per dimension), defaults filled in."""
        if self.fixed:
            return {"depth": (self.n_layers,), "embed": (self.d_model,), "heads": (),
                    "mlp_ratio": ()}
        L, D, H, r = self.n_layers, self.d_model, self.n_heads, self.mlp_ratio
        depth = self.depth_choices or (
            math.ceil(L / 3), math.ceil(L / 2), math.ceil(2 * L / 3), L)
        embed = self.embed_choices or (max(1, D // 2), max(1, (3 * D) // 4), D)
        heads = self.head_choices or tuple(2**i for i in range(H.bit_length()) if 2**i < H) + (H,)
        ratios = self.mlp_ratio_choices or (r / 2, 3 * r / 4, r)
        return {"depth": tuple(sorted(set(depth))), "embed": tuple(sorted(set(embed))),
                "heads": tuple(sorted(set(heads))), "mlp_ratio": tuple(sorted(set(ratios)))}


class SuperAttention(nn.Module):
    """Sliceable multi-head self-attention; storage named like the GPT block's (qkv, proj)."""

    def __init__(self, d_model: int, max_heads: int, head_dim: int):
        super().__init__()
        self.q_width = max_heads * head_dim
        self.head_dim = head_dim
        self.qkv = nn.Linear(d_model, 3 * self.q_width)
        self.proj = nn.Linear(self.q_width, d_model)

    def forward(self, x: torch.Tensor, heads: int, mask: torch.Tensor | None, causal: bool,
                dropout: float) -> torch.Tensor:
        B, T, e = x.shape
        w = heads * self.head_dim
        Q = self.q_width
        W, b = self.qkv.weight, self.qkv.bias
        rows = torch.cat([torch.arange(w) + i * Q for i in range(3)]).to(x.device)
        qkv = F.linear(x, W[rows, :e], b[rows])
        q, k, v = (t.view(B, T, heads, self.head_dim).transpose(1, 2) for t in qkv.split(w, -1))
        if mask is None and causal:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(B, T, w)
        return F.linear(y, self.proj.weight[:e, :w], self.proj.bias[:e])


class SuperMLP(nn.Module):
    """Sliceable FFN: fc W[:hidden, :e] -> GELU -> proj W[:e, :hidden]."""

    def __init__(self, d_model: int, max_hidden: int):
        super().__init__()
        self.fc = nn.Linear(d_model, max_hidden)
        self.proj = nn.Linear(max_hidden, d_model)

    def forward(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        e = x.shape[-1]
        h = F.gelu(F.linear(x, self.fc.weight[:hidden, :e], self.fc.bias[:hidden]))
        return F.linear(h, self.proj.weight[:e, :hidden], self.proj.bias[:e])


def _ln(ln: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    e = x.shape[-1]
    return F.layer_norm(x, (e,), ln.weight[:e], ln.bias[:e], ln.eps)


class SuperBlock(nn.Module):
    """Pre-LN block with sliced weights: x + Attn(LN1 x), then x + MLP(LN2 x)."""

    def __init__(self, d_model: int, max_heads: int, head_dim: int, max_hidden: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SuperAttention(d_model, max_heads, head_dim)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = SuperMLP(d_model, max_hidden)

    def forward(self, x: torch.Tensor, heads: int, hidden: int, mask: torch.Tensor | None,
                causal: bool, dropout: float) -> torch.Tensor:
        x = x + F.dropout(self.attn(_ln(self.ln1, x), heads, mask, causal, dropout),
                          dropout, self.training)
        return x + F.dropout(self.mlp(_ln(self.ln2, x), hidden), dropout, self.training)


@register("supernet", SupernetConfig,
          "S3/AutoFormer weight-sharing supernet (depth/width/heads/MLP); runs its max config.")
class SuperTransformer(Backbone):
    """Weight-sharing supernet backbone: (B, T, d_model) -> (B, T, d_model)."""

    config: SupernetConfig

    def __init__(self, config: SupernetConfig):
        super().__init__(config)
        c = config
        self.wpe = nn.Embedding(c.max_len, c.d_model)
        self.blocks = nn.ModuleList(
            SuperBlock(c.d_model, h, c.hd, mlp_hidden(r, c.d_model))
            for h, r in zip(c.layer_max_heads(), c.layer_max_ratios(), strict=True))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.apply(GPT._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))
        self._active = self.max_config()

    # ------------------------------------------------------------------ space
    def max_config(self) -> SubnetConfig:
        """The largest sub-network (uses all storage when the space's maxima equal the storage)."""
        sp = self.config.space()
        if self.config.fixed:
            return SubnetConfig(self.config.n_layers, self.config.d_model,
                                self.config.layer_max_heads(), self.config.layer_max_ratios())
        depth = max(sp["depth"])
        return SubnetConfig(depth, max(sp["embed"]), (max(sp["heads"]),) * depth,
                            (max(sp["mlp_ratio"]),) * depth)

    def min_config(self) -> SubnetConfig:
        """The smallest sub-network of the space."""
        if self.config.fixed:
            return self.max_config()
        sp = self.config.space()
        depth = min(sp["depth"])
        return SubnetConfig(depth, min(sp["embed"]), (min(sp["heads"]),) * depth,
                            (min(sp["mlp_ratio"]),) * depth)

    def sample_config(self, rng: np.random.Generator) -> SubnetConfig:
        """A uniform sample: depth and embed, then every layer's heads and MLP ratio."""
        if self.config.fixed:
            return self.max_config()
        sp = self.config.space()
        depth = int(rng.choice(sp["depth"]))
        embed = int(rng.choice(sp["embed"]))
        heads = tuple(int(h) for h in rng.choice(sp["heads"], size=depth))
        ratios = tuple(float(r) for r in rng.choice(sp["mlp_ratio"], size=depth))
        return SubnetConfig(depth, embed, heads, ratios)

    def in_space(self, sub: SubnetConfig) -> bool:
        """Whether ``sub`` is a point of the search space (every gene is one of the choices)."""
        if self.config.fixed:
            return sub == self.max_config()
        sp = self.config.space()
        return (sub.depth in sp["depth"] and sub.embed in sp["embed"]
                and len(sub.heads) == sub.depth and len(sub.mlp_ratios) == sub.depth
                and all(h in sp["heads"] for h in sub.heads)
                and all(r in sp["mlp_ratio"] for r in sub.mlp_ratios))

    def check_fits(self, sub: SubnetConfig) -> None:
        """Raise ConfigError unless ``sub`` fits the storage of this supernet."""
        c = self.config
        check(isinstance(sub, SubnetConfig),
              f"expected a SubnetConfig, got {type(sub).__name__}; use SubnetConfig.from_dict")
        check(1 <= sub.depth <= c.n_layers, f"depth {sub.depth} not in [1, {c.n_layers}]")
        check(1 <= sub.embed <= c.d_model, f"embed {sub.embed} not in [1, {c.d_model}]")
        check(len(sub.heads) == sub.depth and len(sub.mlp_ratios) == sub.depth,
              f"heads and mlp_ratios need depth={sub.depth} entries, got {len(sub.heads)} "
              f"and {len(sub.mlp_ratios)}")
        for i, (h, r) in enumerate(zip(sub.heads, sub.mlp_ratios, strict=True)):
            check(1 <= h <= c.layer_max_heads()[i],
                  f"layer {i}: heads {h} not in [1, {c.layer_max_heads()[i]}]")
            hid = mlp_hidden(r, sub.embed)
            check(1 <= hid <= mlp_hidden(c.layer_max_ratios()[i], c.d_model),
                  f"layer {i}: mlp ratio {r} gives hidden width {hid}, outside the storage")

    def set_active(self, sub: SubnetConfig | dict[str, Any]) -> None:
        """Make ``sub`` the sub-network that ``forward`` runs."""
        if isinstance(sub, dict):
            sub = SubnetConfig.from_dict(sub)
        self.check_fits(sub)
        self._active = sub

    @property
    def active(self) -> SubnetConfig:
        return self._active

    def count_params(self, sub: SubnetConfig | None = None) -> int:
        """Parameters of sub-network ``sub`` (default: the active one), as a dense model."""
        sub = sub or self._active
        e, hd = sub.embed, self.config.hd
        total = self.config.max_len * e + 2 * e  # positions + final LN
        for h, r in zip(sub.heads, sub.mlp_ratios, strict=True):
            w, hid = h * hd, mlp_hidden(r, e)
            total += 4 * e  # two LayerNorms
            total += 3 * (e * w + w) + (w * e + e)  # qkv + out-proj
            total += (e * hid + hid) + (hid * e + e)  # MLP
        return total

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        sub = self._active
        e, D, T = sub.embed, self.config.d_model, x.shape[1]
        drop = self.config.dropout * e / D if self.training else 0.0
        mask = attention_mask(T, self.causal, pad_mask, x.device)
        pos = torch.arange(T, device=x.device)
        h = F.dropout(x[..., :e] + self.wpe.weight[pos, :e][None], drop, self.training)
        for l in range(sub.depth):
            h = self.blocks[l](h, sub.heads[l], mlp_hidden(sub.mlp_ratios[l], e), mask,
                               self.causal, drop)
        h = _ln(self.ln_f, h)
        return F.pad(h, (0, D - e)) if e < D else h

    # ------------------------------------------------------------------ extraction
    def extract(self, sub: SubnetConfig | dict[str, Any] | None = None) -> SuperTransformer:
        """A standalone dense backbone (width ``sub.embed``) with the sub-network's weights.

        ``extract(sub)(x[..., :e]) == (supernet with set_active(sub))(x)[..., :e]``; its
        ``num_params() == count_params(sub)``. Rebuild it with
        ``build("supernet", **dataclasses.asdict(dense.config))``.
        """
        if isinstance(sub, dict):
            sub = SubnetConfig.from_dict(sub)
        sub = sub or self._active
        self.check_fits(sub)
        c = self.config
        e, hd = sub.embed, c.hd
        dense_cfg = dataclasses.replace(
            c, d_model=e, n_layers=sub.depth, n_heads=max(sub.heads), head_dim=hd,
            mlp_ratio=max(sub.mlp_ratios), depth_choices=(), embed_choices=(), head_choices=(),
            mlp_ratio_choices=(), fixed=True, layer_heads=tuple(sub.heads),
            layer_mlp_ratios=tuple(sub.mlp_ratios), dropout=c.dropout * e / c.d_model,
        )
        dense = SuperTransformer(dense_cfg).to(self.wpe.weight.device)
        state: dict[str, torch.Tensor] = {
            "wpe.weight": self.wpe.weight[:, :e],
            "ln_f.weight": self.ln_f.weight[:e], "ln_f.bias": self.ln_f.bias[:e],
        }
        for l in range(sub.depth):
            src, w = self.blocks[l], sub.heads[l] * hd
            Q, hid = src.attn.q_width, mlp_hidden(sub.mlp_ratios[l], e)
            rows = torch.cat([torch.arange(w) + i * Q for i in range(3)])
            p = f"blocks.{l}."
            state.update({
                p + "ln1.weight": src.ln1.weight[:e], p + "ln1.bias": src.ln1.bias[:e],
                p + "ln2.weight": src.ln2.weight[:e], p + "ln2.bias": src.ln2.bias[:e],
                p + "attn.qkv.weight": src.attn.qkv.weight[rows, :e],
                p + "attn.qkv.bias": src.attn.qkv.bias[rows],
                p + "attn.proj.weight": src.attn.proj.weight[:e, :w],
                p + "attn.proj.bias": src.attn.proj.bias[:e],
                p + "mlp.fc.weight": src.mlp.fc.weight[:hid, :e],
                p + "mlp.fc.bias": src.mlp.fc.bias[:hid],
                p + "mlp.proj.weight": src.mlp.proj.weight[:e, :hid],
                p + "mlp.proj.bias": src.mlp.proj.bias[:e],
            })
        dense.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        dense.train(self.training)
        return dense

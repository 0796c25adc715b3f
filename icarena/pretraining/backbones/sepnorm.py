"""SepNorm backbone: the GPT block with separate normalisation of special positions.

Chen, Wang, Du, Hassoun, Liu, "On Separate Normalization in Self-supervised Transformers",
NeurIPS 2023 (arXiv 2309.12931). The paper replaces the one LayerNorm shared by every position
("ShareNorm") with two norms: the [CLS] position goes through **BatchNorm1d** (per-feature
statistics across the batch, running statistics at eval) and every other token through
**LayerNorm**, each with its own affine parameters::

    SepNorm(x)_t = BN(x_t)   if t is special        (statistics over the batch, per feature)
                 = LN(x_t)   otherwise              (statistics over the D features of x_t)

icarena adaptation (documented choices):

* Special positions generalise position 0: the ``special_mask`` argument of ``forward`` (e.g. a
  query or summary token), or, when it is not given, ``special_positions`` from the config
  (default ``(0,)`` = the paper's [CLS]; negative indices count from the end, so ``(-1,)`` is
  the last position). Padded special positions are ignored.
* ``scope="all"`` replaces every LayerNorm (both block pre-norms and the final norm);
  ``scope="final"`` only the final norm. The paper does not say which; both are offered.
* ``special_norm="batchnorm"`` (faithful default) or ``"layernorm"`` (separate LN parameters,
  no coupling between batch members; the safe choice for batch size 1).
* BatchNorm statistics are taken **per special position index** across the batch: for the
  paper's single [CLS] at position 0 this is exactly BatchNorm1d over the B [CLS] vectors; with
  several special positions per sequence it keeps the model causal, because the statistics of
  position t never see a later position. ``bn_stats="pooled"`` pools all special positions of
  the batch into one BatchNorm batch instead; it couples positions, so it is refused with
  ``causal=True``. Running statistics (used in eval mode) are the count-weighted averages.
* In a causal model position 0 sees only itself, so it is a true summary only with
  ``causal=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import ConfigError, check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.gpt import GPT, GPTConfig, attention_mask


@dataclass
class SepNormConfig(GPTConfig):
    """Config of the ``sepnorm`` backbone (GPT fields plus the norm options)."""

    scope: str = "all"
    """'all': every LayerNorm (block pre-norms and final) is a SepNorm; 'final': only the last."""
    special_norm: str = "batchnorm"
    """Norm of special positions: 'batchnorm' (paper) or 'layernorm' (own LN parameters)."""
    special_positions: tuple[int, ...] = (0,)
    """Special positions when forward gets no special_mask (negative = from the end)."""
    bn_stats: str = "per_position"
    """BatchNorm batch: 'per_position' (each special index separately; causal-safe) or 'pooled'."""
    bn_momentum: float = 0.1
    """Momentum of the BatchNorm running statistics."""
    eps: float = 1e-5
    """Epsilon of both norms."""

    def validate(self) -> None:
        super().validate()
        self.special_positions = tuple(int(p) for p in self.special_positions)
        check(self.scope in ("all", "final"), f"scope must be 'all' or 'final', got {self.scope!r}")
        check(
            self.special_norm in ("batchnorm", "layernorm"),
            f"special_norm must be 'batchnorm' or 'layernorm', got {self.special_norm!r}",
        )
        check(
            self.bn_stats in ("per_position", "pooled"),
            f"bn_stats must be 'per_position' or 'pooled', got {self.bn_stats!r}",
        )
        check(
            not (self.causal and self.special_norm == "batchnorm" and self.bn_stats == "pooled"),
            "bn_stats='pooled' mixes the statistics of different positions, which leaks the "
            "future with causal=True; use bn_stats='per_position' or causal=False",
        )
        check(0.0 <= self.bn_momentum <= 1.0,
              f"bn_momentum must be in [0, 1], got {self.bn_momentum}")
        check(self.eps > 0, f"eps must be > 0, got {self.eps}")
        for p in self.special_positions:
            check(
                -self.max_len <= p < self.max_len,
                f"special position {p} is outside [-max_len, max_len) = "
                f"[{-self.max_len}, {self.max_len})",
            )


def special_mask_from_positions(
    positions: tuple[int, ...], B: int, T: int, device: torch.device
) -> torch.Tensor:
    """(B, T) bool mask, True at ``positions`` (negative = from the end; out of range ignored)."""
    mask = torch.zeros(T, dtype=torch.bool, device=device)
    idx = [p + T if p < 0 else p for p in positions]
    idx = [p for p in idx if 0 <= p < T]
    if idx:
        mask[torch.tensor(idx, device=device)] = True
    return mask[None].expand(B, T)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over the masked positions of (B, T, D), per feature.

    Train mode, ``per_position``: for each position t with mask[:, t] set, the mean and biased
    variance over the batch members b with mask[b, t] (at least 2 are required, as for
    BatchNorm1d); ``pooled``: one mean/variance over all masked (b, t). The running statistics
    (unbiased variance, momentum update, count-weighted over positions) are used in eval mode::

        y = (x - mean) / sqrt(var + eps) * weight + bias
    """

    def __init__(self, d: int, eps: float = 1e-5, momentum: float = 0.1,
                 stats: str = "per_position"):
        super().__init__()
        self.eps, self.momentum, self.stats = eps, momentum, stats
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.register_buffer("running_mean", torch.zeros(d))
        self.register_buffer("running_var", torch.ones(d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) bool -> (B, T, D); values at unmasked positions are unused."""
        if not self.training:
            return F.batch_norm(x.transpose(1, 2), self.running_mean, self.running_var,
                                self.weight, self.bias, False, 0.0, self.eps).transpose(1, 2)
        m = mask.to(x.dtype)[..., None]  # (B, T, 1)
        if self.stats == "pooled":
            m_sum = m.sum(dim=(0, 1), keepdim=True)  # (1, 1, 1)
            dims: tuple[int, ...] = (0, 1)
        else:
            m_sum = m.sum(dim=0, keepdim=True)  # (1, T, 1)
            dims = (0,)
        used = m_sum > 0
        if bool((used & (m_sum < 2)).any()):
            raise ConfigError(
                "SepNorm BatchNorm needs at least 2 samples per special position in train mode; "
                "use a batch size >= 2, special_norm='layernorm', or eval mode"
            )
        cnt = m_sum.clamp_min(1.0)
        mean = (m * x).sum(dim=dims, keepdim=True) / cnt
        var = (m * (x - mean) ** 2).sum(dim=dims, keepdim=True) / cnt
        y = (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        with torch.no_grad():  # count-weighted running statistics over the used positions
            w = (m_sum * used).flatten()
            if w.sum() > 0:
                w = w / w.sum()
                flat_mean = mean.reshape(-1, x.shape[-1])
                unbiased = (var * m_sum / (m_sum - 1).clamp_min(1.0)).reshape(-1, x.shape[-1])
                self.running_mean.lerp_(w @ flat_mean, self.momentum)
                self.running_var.lerp_(w @ unbiased, self.momentum)
        return y


class SepNorm(nn.Module):
    """Separate normalisation: special positions -> ``special`` norm, the rest -> LayerNorm.

    ``forward(x (B, T, D), special (B, T) bool) -> (B, T, D)``. The output at a special
    position depends only on special positions (of this and, for BatchNorm in train mode, other
    batch members); the output at an ordinary position depends only on that position.
    """

    def __init__(self, d: int, special_norm: str = "batchnorm", *, bias: bool = True,
                 eps: float = 1e-5, momentum: float = 0.1, stats: str = "per_position"):
        super().__init__()
        self.token_norm = nn.LayerNorm(d, eps=eps, bias=bias)
        self.special_kind = special_norm
        if special_norm == "batchnorm":
            self.special_norm: nn.Module = MaskedBatchNorm(d, eps, momentum, stats)
        else:
            self.special_norm = nn.LayerNorm(d, eps=eps, bias=bias)

    def forward(self, x: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
        tokens = self.token_norm(x)
        if self.special_kind == "batchnorm":
            spec = self.special_norm(x, special)
        else:
            spec = self.special_norm(x)
        return torch.where(special[..., None], spec, tokens)


def _norm(norm: nn.Module, x: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    return norm(x, special) if isinstance(norm, SepNorm) else norm(x)


@register("sepnorm", SepNormConfig,
          "GPT with separate normalisation of special positions (SepNorm, Chen et al. 2023).")
class SepNormGPT(GPT):
    """Pre-LN GPT whose LayerNorms are :class:`SepNorm` (scope 'all') or whose final norm is.

    Block::  x = x + Attn(N1(x, s));  x = x + MLP(N2(x, s));  output N_f(x, s)
    where s is the special mask and N is SepNorm or LayerNorm according to ``scope``.
    """

    config: SepNormConfig
    incremental_decoding = False  # the special-position norms would need their own state

    def __init__(self, config: SepNormConfig):
        super().__init__(config)
        c = config

        def make() -> SepNorm:
            return SepNorm(c.d_model, c.special_norm, bias=c.bias, eps=c.eps,
                           momentum=c.bn_momentum, stats=c.bn_stats)

        if c.scope == "all":
            for block in self.blocks:
                block.ln1, block.ln2 = make(), make()
        self.ln_f = make()

    def resolve_special(self, x: torch.Tensor, special_mask: torch.Tensor | None,
                        pad_mask: torch.Tensor | None) -> torch.Tensor:
        """The (B, T) special mask actually used: forward's mask or the configured positions."""
        B, T, _ = x.shape
        if special_mask is None:
            check(len(self.config.special_positions) > 0,
                  "sepnorm has no special positions: pass special_mask to forward or set "
                  "special_positions in the config")
            special = special_mask_from_positions(self.config.special_positions, B, T, x.device)
        else:
            check(special_mask.shape == (B, T) and special_mask.dtype == torch.bool,
                  f"special_mask must be a bool tensor of shape {(B, T)}, got "
                  f"{special_mask.dtype} {tuple(special_mask.shape)}")
            special = special_mask
        if pad_mask is not None:
            special = special & ~pad_mask
        return special

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        special = self.resolve_special(x, special_mask, pad_mask)
        mask = attention_mask(x.shape[1], self.causal, pad_mask, x.device)
        x = self.drop(self.embed_positions(x))
        for block in self.blocks:
            x = x + block.attn(_norm(block.ln1, x, special), mask, self.causal)
            x = x + block.mlp(_norm(block.ln2, x, special))
        return _norm(self.ln_f, x, special)

    @torch.no_grad()
    def attention_maps(
        self, x: torch.Tensor, *, pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Attention probabilities of every layer, each (B, H, T, T), for probes."""
        special = self.resolve_special(x, special_mask, pad_mask)
        mask = attention_mask(x.shape[1], self.causal, pad_mask, x.device)
        full = mask if mask is not None else torch.ones(
            1, 1, x.shape[1], x.shape[1], dtype=torch.bool, device=x.device)
        x = self.embed_positions(x)
        maps = []
        for block in self.blocks:
            h = _norm(block.ln1, x, special)
            maps.append(block.attn.attention_weights(h, full))
            x = x + block.attn(h, mask, self.causal)
            x = x + block.mlp(_norm(block.ln2, x, special))
        return maps

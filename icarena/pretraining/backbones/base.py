"""The backbone interface that every architecture implements.

A backbone maps a batch of token states to token states of the same shape::

    forward(x: (B, T, D), *, pad_mask: (B, T) bool | None, special_mask: (B, T) bool | None)
        -> (B, T, D)

It owns its positional encoding (learned, sinusoidal or Fourier; ``max_len`` bounds T) and nothing
task-specific: read-in embeddings and read-out heads live in :mod:`icarena.pretraining.model`.

``pad_mask`` marks padded positions (True = padding); a backbone must keep real positions
independent of what padded positions hold. ``special_mask`` marks designated special positions
(a query or summary token); only backbones that treat them differently (SepNorm) look at it.

``causal`` (config flag, stored on the instance) says whether the output at position t may depend
only on inputs at positions <= t. Next-token tasks (games, planning, causal regression) build
their backbone with ``causal=True``; a backbone that cannot honour it (BiXT in its faithful,
bidirectional mode) raises :class:`~icarena.errors.ConfigError` at build time instead of silently
leaking the future. Tasks that read a single query position (regression with a query read-out)
may use ``causal=False``.

How each architecture fits without changing this interface:

* ``gpt``: pre-LN decoder, learned absolute positions, causal or bidirectional by flag.
* ``linear``: same block with linear (un-normalised) attention; the exact OLS / GD weight
  constructions set its weights directly.
* ``local_global``: two encoder blocks, softmax attention, one-hidden-layer FFN, sinusoidal
  positions; bidirectional by default.
* ``sepnorm``: the GPT block with each LayerNorm replaced by a norm that treats
  ``special_mask`` positions (or configured ``special_positions``) with their own statistics.
* ``bixt``: tokens plus M learned latents held inside the module; bidirectional cross-attention
  returns token states (B, T, D); causal use through exact prefix re-encoding (O(T^2)) or,
  chosen explicitly, icarena's linear-cost latent scan (one latent set per position).
* ``sympformer``: each token carries a velocity state that lives only inside ``forward``
  (initialised to zero or learned), so the interface stays (B, T, D) -> (B, T, D).
* ``supernet``: one module whose active depth/width/heads/MLP ratio are chosen by
  ``set_active(sub_config)`` between forward passes; ``extract(sub_config)`` returns a dense
  standalone backbone with identical outputs.

Incremental decoding (optional). A causal backbone whose output at t can be computed from a
state summarising positions < t sets the class attribute ``incremental_decoding = True`` and
implements::

    decode(x: (B, t, D), state | None) -> ((B, t, D), new state)

which returns the outputs at the next t positions (positions ``pos .. pos + t - 1`` where ``pos``
is the number of positions the state has seen; ``None`` = start of the sequence), equal up to
rounding to ``forward`` on the whole prefix. ``gpt`` keeps a key/value cache; ``linear`` keeps
its running sums Σ k vᵀ, so a step costs O(1) in the history length. Decoding is for inference
(eval mode, no padding). Backbones without it are decoded by recomputing the whole prefix
(:meth:`icarena.pretraining.model.SequenceModel.decode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class BackboneConfig:
    """Fields every backbone config has; a backbone's own config subclasses this."""

    d_model: int = 64
    """Width of the token states (D)."""
    n_layers: int = 3
    """Number of blocks."""
    n_heads: int = 2
    """Attention heads per block (must divide d_model)."""
    causal: bool = True
    """Output at position t depends only on inputs at positions <= t."""
    max_len: int = 1024
    """Longest sequence the positional encoding covers."""
    dropout: float = 0.0
    """Dropout probability (0 disables)."""

    def validate(self) -> None:
        """Raise ConfigError naming the bad field; subclasses extend this."""
        from icarena.errors import check

        check(self.d_model >= 1, f"d_model must be >= 1, got {self.d_model}")
        check(self.n_layers >= 1, f"n_layers must be >= 1, got {self.n_layers}")
        check(self.n_heads >= 1, f"n_heads must be >= 1, got {self.n_heads}")
        check(
            self.d_model % self.n_heads == 0,
            f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}); "
            "change one of them",
        )
        check(self.max_len >= 1, f"max_len must be >= 1, got {self.max_len}")
        check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")


class Backbone(nn.Module):
    """Base class: ``forward(x (B,T,D), *, pad_mask, special_mask) -> (B,T,D)``."""

    config: BackboneConfig
    incremental_decoding: ClassVar[bool] = False
    """The class implements :meth:`decode` (module docstring)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config

    @property
    def d_model(self) -> int:
        return self.config.d_model

    @property
    def causal(self) -> bool:
        return self.config.causal

    @property
    def can_decode(self) -> bool:
        """This instance decodes incrementally: the class supports it and it is causal."""
        return self.incremental_decoding and self.causal

    def decode(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Outputs (B, t, D) at the next t positions after ``state``, and the new state."""
        raise NotImplementedError(
            f"{type(self).__name__} has no incremental decoding; recompute the prefix instead")

    def check_decode(self, x: torch.Tensor, pos: int) -> None:
        """Raise a clear error when ``decode`` cannot take inputs x after ``pos`` positions."""
        from icarena.errors import check

        check(self.causal, "incremental decoding needs a causal backbone (causal=True)")
        check(x.dim() == 3 and x.shape[-1] == self.d_model,
              f"decode input must be (B, t, {self.d_model}), got shape {tuple(x.shape)}")
        check(pos + x.shape[1] <= self.config.max_len,
              f"decoding to length {pos + x.shape[1]} exceeds max_len {self.config.max_len}; "
              "build the backbone with a larger max_len")

    def num_params(self) -> int:
        """Number of trainable parameters (shared tensors counted once)."""
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for inputs of the wrong rank, width or length."""
        from icarena.errors import check

        check(x.dim() == 3, f"backbone input must be (B, T, D), got shape {tuple(x.shape)}")
        check(
            x.shape[-1] == self.d_model,
            f"backbone input width {x.shape[-1]} != d_model {self.d_model}",
        )
        check(
            x.shape[1] <= self.config.max_len,
            f"sequence length {x.shape[1]} exceeds max_len {self.config.max_len}; "
            "build the backbone with a larger max_len",
        )

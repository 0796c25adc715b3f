"""Task model = read-in -> backbone -> read-out.

The backbone (any registered architecture) knows nothing about the task; the read-in turns task
inputs into (B, T, D) states (an ``Embedding`` for token ids, a ``Linear`` for feature vectors)
and the read-out maps states to task outputs (next-token logits, a regression value, action
logits). :func:`load_model` rebuilds a trained model from a run dir's ``config.json`` and
``model.safetensors`` without pickle.

:meth:`SequenceModel.decode` runs the model a few positions at a time (sampling, in-context
play): with the backbone's own decoding state (key/value cache, recurrent state) where it has
one and with the query read-out's prefix sums, else by recomputing the whole prefix.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from icarena import limits
from icarena.errors import CheckpointError, ConfigError, check
from icarena.pretraining import backbones
from icarena.pretraining.options import Option, Options  # noqa: F401  (re-exported)
from icarena.pretraining.readouts import READ_OUTS, build_read_out


@dataclass
class ModelSpec:
    """The model of a stage, as the user sets it (``--model.*``): backbone and size, declared
    once; the task adds its read-in / read-out, causality and context length."""

    backbone: str = "gpt"
    """Registered backbone name (see `icarena list`)."""
    d_model: int = 64
    """Width of the token states."""
    n_layers: int = 3
    """Backbone blocks."""
    n_heads: int = 2
    """Attention heads."""
    options: Options = field(default_factory=dict)
    """Extra backbone options, overriding the above (e.g. --model.options mlp_ratio 2)."""

    def backbone_cfg(self, **task: Any) -> dict[str, Any]:
        """The backbone's config: size, then the task's settings (``causal``, ``max_len``,
        ...), then ``options``."""
        check(isinstance(self.backbone, str) and self.backbone in backbones.available(),
              f"unknown backbone {self.backbone!r}; available: "
              f"{', '.join(backbones.available())} (see `icarena list`)", ConfigError)
        return {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads,
                **task, **self.options}


@dataclass
class ModelConfig:
    """Architecture of a task model."""

    backbone: str = "gpt"
    """Registered backbone name (see `icarena list`)."""
    backbone_cfg: dict[str, Any] = field(default_factory=dict)
    """Backbone options (d_model, n_layers, n_heads, causal, max_len, ...)."""
    input_kind: str = "tokens"
    """'tokens' (integer ids -> Embedding) or 'vectors' (features -> Linear)."""
    input_dim: int = 0
    """Vocabulary size (tokens) or feature width (vectors)."""
    output_dim: int = 0
    """Width of the read-out (vocabulary size, 1 for regression, #actions, ...)."""
    tie_weights: bool = False
    """Tie the read-out to the token embedding (tokens only; needs output_dim == input_dim)."""
    read_out: str = "linear"
    """'linear' (Linear(d, output_dim) per position), 'query' (a per-group causal attention
    read-out over the inputs and states, :class:`icarena.pretraining.readouts.QueryReadOut`) or
    'cells' (the same with per-action-cell values and an action-symmetric head,
    :class:`icarena.pretraining.readouts.CellReadOut`)."""
    read_out_cfg: dict[str, Any] = field(default_factory=dict)
    """Options of the read-out ('query': groups (required), heads, head_dim, hidden, summary;
    'cells': the token layout (required) and heads, width, layers, summary)."""

    def validate(self) -> None:
        check(self.input_kind in ("tokens", "vectors"),
              f"input_kind must be 'tokens' or 'vectors', got {self.input_kind!r}")
        check(self.input_dim >= 1, f"input_dim must be >= 1, got {self.input_dim}")
        check(self.output_dim >= 1, f"output_dim must be >= 1, got {self.output_dim}")
        if self.tie_weights:
            check(self.input_kind == "tokens" and self.input_dim == self.output_dim,
                  "tie_weights needs input_kind='tokens' and output_dim == input_dim")
        check(self.read_out in READ_OUTS,
              f"read_out must be one of {READ_OUTS}, got {self.read_out!r}")
        if self.read_out != "linear":
            check(self.input_kind == "vectors" and not self.tie_weights,
                  f"the {self.read_out!r} read-out reads the input features too: it needs "
                  "input_kind='vectors' and no tie_weights")


def model_bytes(cfg: ModelConfig) -> int:
    """Estimated float32 bytes of a model's weights before it is built: about ``12 d^2`` per
    backbone layer plus the read-in and read-out (``d x input_dim`` and ``d x output_dim``)."""
    b = cfg.backbone_cfg
    vals = [b.get(k, 1) for k in ("d_model", "n_layers")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return 0  # the backbone's own checks report the wrong type
    d, layers = (max(int(v), 0) for v in vals)
    return 4 * (12 * d * d * layers + d * (int(cfg.input_dim) + int(cfg.output_dim)))


@dataclass
class DecodeState:
    """Where :meth:`SequenceModel.decode` stands: positions seen, the backbone's decoding state
    (or, for a backbone without one, the inputs so far) and the read-out's state."""

    pos: int
    backbone: Any
    read_out: Any = None


class SequenceModel(nn.Module):
    """read-in -> backbone -> read-out over a sequence.

    ``forward(x, *, pad_mask=None, special_mask=None)``: x is (B, T) int64 token ids or
    (B, T, input_dim) floats; returns (B, T, output_dim). The read-out is ``cfg.read_out``
    (:mod:`icarena.pretraining.readouts`); the 'query' read-out sees x as well as the states.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        limits.require(model_bytes(cfg), f"a {cfg.backbone} model of {cfg.backbone_cfg}",
                       "--model.d-model / --model.n-layers (or the vocabulary / input size)")
        self.cfg = cfg
        self.backbone = backbones.build(cfg.backbone, **cfg.backbone_cfg)
        d = self.backbone.d_model
        if cfg.input_kind == "tokens":
            self.read_in: nn.Module = nn.Embedding(cfg.input_dim, d)
            nn.init.normal_(self.read_in.weight, std=0.02)
        else:
            self.read_in = nn.Linear(cfg.input_dim, d)
        self.read_out = build_read_out(cfg.read_out, cfg.input_dim, d, cfg.output_dim,
                                       dict(cfg.read_out_cfg), bias=not cfg.tie_weights)
        if cfg.tie_weights:
            self.read_out.weight = self.read_in.weight

    def hidden(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Backbone states (B, T, D) for inputs x."""
        self.check_inputs(x)
        return self.backbone(self.read_in(x), pad_mask=pad_mask, special_mask=special_mask)

    def check_inputs(self, x: torch.Tensor) -> None:
        """Raise a clear error for token ids out of range or features of the wrong width."""
        if self.cfg.input_kind == "tokens":
            check(x.dtype in (torch.int64, torch.int32),
                  f"token inputs must be integer ids, got dtype {x.dtype}")
            # the range check reads x back: on CPU only (on an accelerator it would stall the
            # pipeline every step; the embedding's own index check fires there)
            if x.numel() and x.device.type == "cpu":
                lo, hi = int(x.min()), int(x.max())
                check(0 <= lo and hi < self.cfg.input_dim,
                      f"token ids must lie in [0, {self.cfg.input_dim}), got [{lo}, {hi}]")
        else:
            check(x.dim() == 3 and x.shape[-1] == self.cfg.input_dim,
                  f"vector inputs must be (B, T, {self.cfg.input_dim}), got {tuple(x.shape)}")

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outputs (B, T, output_dim); with ``positions`` (1-D long, increasing) only those
        positions' (B, len(positions), output_dim), the read-out computed there alone."""
        z = self.hidden(x, pad_mask=pad_mask, special_mask=special_mask)
        if self.cfg.read_out == "linear":
            return self.read_out(z if positions is None else z[:, positions])
        return self.read_out(x, z, positions=positions)

    @property
    def incremental(self) -> bool:
        """:meth:`decode` uses a decoding state (False: it recomputes the prefix)."""
        return self.backbone.can_decode

    def decode(
        self, x: torch.Tensor, state: DecodeState | None = None
    ) -> tuple[torch.Tensor, DecodeState]:
        """Outputs at the next positions of a causal model, given what it has already seen.

        Args:
            x: inputs (B, t) token ids or (B, t, input_dim) features at positions
                ``pos .. pos + t - 1`` (pos = ``state.pos``, 0 without a state).
            state: returned by the previous call (None: the start of the sequences).
        Returns:
            (B, t, output_dim) -- equal to ``forward`` on the whole prefix at those positions
            up to rounding -- and the state after them. Inference only (no padding, no
            dropout); the same batch rows in every call.
        """
        check(self.backbone.causal, "decode needs a causal backbone (causal=True)")
        self.check_inputs(x)
        pos = 0 if state is None else state.pos
        t = x.shape[1]
        if not self.incremental:  # recompute the prefix: the output at t depends on x_{<=t}
            inputs = x if state is None else torch.cat([state.backbone, x], dim=1)
            return self(inputs)[:, pos:], DecodeState(pos + t, inputs)
        z, b_state = self.backbone.decode(self.read_in(x), None if state is None
                                          else state.backbone)
        if self.cfg.read_out == "linear":
            return self.read_out(z), DecodeState(pos + t, b_state)
        out, r_state = self.read_out.decode(x, z, None if state is None else state.read_out)
        return out, DecodeState(pos + t, b_state, r_state)

    def num_params(self) -> int:
        """Trainable parameters, tied tensors counted once."""
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """ModelConfig from its JSON form, with a clear error for unknown keys."""
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown model config key(s) {unknown}; valid: {sorted(names)}")
    return ModelConfig(**d)


def load_model(
    run_dir: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[SequenceModel, dict[str, Any]]:
    """Rebuild a trained model from ``run_dir`` (config.json + model.safetensors).

    Returns the model in eval mode and the run's full config dict.
    """
    from safetensors.torch import load_model as load_safetensors

    run_dir = Path(run_dir)
    cfg_path, weights = run_dir / "config.json", run_dir / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise CheckpointError(
                f"{p} not found: {run_dir} is not a finished run dir; train one with "
                "`icarena pretrain` or `icarena run ...`"
            )
    try:
        config = json.loads(cfg_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({e}); the run dir is corrupt: "
                              "train the run again") from e
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{cfg_path} has no 'model' section; it is not a model run dir")
    try:
        model_cfg = model_config_from_dict(config["model"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{cfg_path} holds a 'model' section this icarena cannot read "
                              f"({e}); train the run again") from e
    model = SequenceModel(model_cfg)
    try:
        missing, unexpected = load_safetensors(model, str(weights), strict=False,
                                               device=str(map_location))
    except Exception as e:  # safetensors raises RuntimeError / SafetensorError on shape mismatch
        raise CheckpointError(f"{weights} does not fit the model in {cfg_path}: {e}") from e
    missing = [k for k in missing if k != "read_out.weight" or not model.cfg.tie_weights]
    if missing or unexpected:
        raise CheckpointError(
            f"{weights} does not match {cfg_path}: missing {missing}, unexpected {unexpected}"
        )
    return model.eval(), config

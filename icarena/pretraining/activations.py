"""Activations of any registered backbone: the residual stream after every layer and, where the
backbone has attention, its attention maps -- one call, through forward hooks.

:func:`capture` runs a model (a :class:`icarena.pretraining.model.SequenceModel` or a bare
backbone) once with hooks on its blocks and returns :class:`Activations`:

* ``residual``: [backbone input (B, T, D), token states after block 1, ..., after block L], each
  (B, T, D) -- the stream *before* the backbone's final norm; ``output`` is the backbone's output
  (after it). For SympFormer the stream is the position state x (the velocity lives inside the
  block); for BiXT the token side of each layer; for the supernet the active depth and width.
* ``attention``: one map per layer, (B, H, T, T) softmax probabilities for softmax attention
  (gpt, sepnorm, local_global, supernet, sympformer's nesterov_lt variant), the un-normalised
  scores q·k (0 outside the causal / padding mask) for linear attention, and (B, H, T, M) the
  token-to-latent probabilities for BiXT (tokens read M latents); None when the backbone has no
  attention matrix (sympformer's hamiltonian_euler particle step).

A causal BiXT in ``prefix_reencode`` mode is captured the way it computes: position t's states
come from encoding the prefix 0..t alone, one prefix at a time. In ``latent_scan`` mode its
layers run once on the whole sequence: the residual stream is the token side of each layer and
the map at position t is token t's read of its own latent set Z_t (softmax over the M latents of
the logits shared with the causal latent read).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import check


@dataclass
class Activations:
    """What :func:`capture` records (module docstring)."""

    residual: list[torch.Tensor]
    """[input, after block 1, ..., after block L], each (B, T, D)."""
    output: torch.Tensor
    """The backbone's output (B, T, D)."""
    attention: list[torch.Tensor] | None
    """One map per layer ((B, H, T, T), or (B, H, T, M) for BiXT), None without attention."""


def backbone_of(model: nn.Module) -> nn.Module:
    """The backbone inside a SequenceModel (or the module itself when it is one)."""
    return getattr(model, "backbone", model)


def blocks_of(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's stack of blocks (``blocks``; BiXT: ``layers``)."""
    blocks = getattr(backbone, "blocks", None)
    if blocks is None:
        blocks = getattr(backbone, "layers", None)
    check(isinstance(blocks, nn.ModuleList),
          f"{type(backbone).__name__} has no `blocks` (or `layers`) ModuleList; activations "
          "need a backbone built as a stack of blocks")
    return blocks


def _softmax(scores: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """Masked softmax over keys; mask True = may attend (as scaled_dot_product_attention)."""
    if mask is None and causal:
        T = scores.shape[-1]
        mask = torch.ones(T, T, dtype=torch.bool, device=scores.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def _heads(t: torch.Tensor, h: int) -> torch.Tensor:
    B, T, W = t.shape
    return t.view(B, T, h, W // h).transpose(1, 2)


# Attention-map makers: (module, its forward's args, kwargs) -> map. One per attention kind.
def _self_attention(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    x, mask = args[0], (args[1] if len(args) > 1 else kwargs.get("mask"))
    causal = args[2] if len(args) > 2 else kwargs.get("causal", False)
    q, k, _ = m.split_heads(x)
    return _softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), mask, causal)


def _linear_attention(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    return m.scores(args[0], causal=kwargs.get("causal", False),
                    key_mask=kwargs.get("key_mask"))


def _encoder_block(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    x, mask, causal = args[:3]
    h = x if m.norm == "post" else m.n1(x)
    D = x.shape[-1]
    q, k, _ = (_heads(t, m.n_heads) for t in m.qkv(h).split(D, dim=-1))
    return _softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), mask, causal)


def _super_block(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    x, heads, _hidden, mask, causal = args[:5]
    e = x.shape[-1]
    h = F.layer_norm(x, (e,), m.ln1.weight[:e], m.ln1.bias[:e], m.ln1.eps)
    a = m.attn
    w, Q = heads * a.head_dim, a.q_width
    rows = torch.cat([torch.arange(w) + i * Q for i in range(2)]).to(x.device)
    q, k = (_heads(t, heads) for t in F.linear(h, a.qkv.weight[rows, :e],
                                               a.qkv.bias[rows]).split(w, -1))
    return _softmax(q @ k.transpose(-1, -2) / math.sqrt(a.head_dim), mask, causal)


def _bi_cross(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    z, x = args[:2]
    z_ref = kwargs.get("z_ref")
    if z_ref is not None:  # latent scan: logits from the learned latents, token t reads Z_t
        return m.scan_logits(z_ref, x).transpose(-1, -2).softmax(dim=-1)
    _, token_logits = m.logits(z, x)
    return token_logits.softmax(dim=-1)  # (B, h, N, M): tokens read latents


def _makers() -> dict[type, Callable[[nn.Module, tuple, dict], torch.Tensor]]:
    from icarena.pretraining.backbones.bixt import BiCrossAttention
    from icarena.pretraining.backbones.gpt import SelfAttention
    from icarena.pretraining.backbones.linear import LinearAttention
    from icarena.pretraining.backbones.local_global import _EncoderBlock
    from icarena.pretraining.backbones.supernet import SuperBlock

    return {SelfAttention: _self_attention, LinearAttention: _linear_attention,
            _EncoderBlock: _encoder_block, SuperBlock: _super_block, BiCrossAttention: _bi_cross}


def attention_module(block: nn.Module) -> tuple[nn.Module, Callable] | None:
    """(the module whose inputs define the block's attention map, its map maker), or None."""
    makers = _makers()
    for m in (block, getattr(block, "attn", None), getattr(block, "cross", None)):
        if m is not None and type(m) in makers:
            return m, makers[type(m)]
    return None


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, **forward_kwargs: Any) -> Activations:
    """Run ``model(x, **forward_kwargs)`` once and return its :class:`Activations`.

    Args:
        model: a SequenceModel or a backbone (any registered architecture).
        x: the model's input (token ids (B, T) or features (B, T, d) for a SequenceModel;
            (B, T, D) for a backbone).
    """
    from icarena.pretraining.backbones.bixt import BiXT

    backbone = backbone_of(model)
    blocks = blocks_of(backbone)
    if isinstance(backbone, BiXT) and backbone.mode == "prefix_reencode":
        return _capture_prefixes(model, backbone, x, **forward_kwargs)
    was_training = model.training
    model.eval()
    record: dict[str, Any] = {"states": [], "maps": []}
    handles = [backbone.register_forward_pre_hook(
        lambda _m, args, kwargs: record.__setitem__("input", args[0]), with_kwargs=True),
        backbone.register_forward_hook(lambda _m, _a, out: record.__setitem__("output", out))]
    bixt = isinstance(backbone, BiXT)
    try:
        for block in blocks:
            handles.append(block.register_forward_hook(
                lambda _m, _a, out: record["states"].append(out[1] if bixt else (
                    out[0] if isinstance(out, tuple) else out))))
            found = attention_module(block)
            if found is not None:
                mod, make = found
                handles.append(mod.register_forward_pre_hook(
                    lambda m, args, kwargs, make=make: record["maps"].append(
                        make(m, args, kwargs)), with_kwargs=True))
        model(x, **forward_kwargs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not record["states"]:  # SepNormGPT runs its blocks' parts inline, not block(...)
        record["states"] = _sepnorm_states(backbone, record["input"], forward_kwargs)
    maps = record["maps"] if len(record["maps"]) == len(record["states"]) else None
    return Activations(residual=[record["input"], *record["states"]], output=record["output"],
                       attention=maps)


def _sepnorm_states(backbone: nn.Module, x: torch.Tensor, kw: dict) -> list[torch.Tensor]:
    """The residual stream of SepNormGPT after each block (its forward, step by step)."""
    from icarena.pretraining.backbones.gpt import attention_mask
    from icarena.pretraining.backbones.sepnorm import SepNormGPT, _norm

    check(isinstance(backbone, SepNormGPT),
          f"{type(backbone).__name__} never called its blocks; cannot record its residual stream")
    pad = kw.get("pad_mask")
    special = backbone.resolve_special(x, kw.get("special_mask"), pad)
    mask = attention_mask(x.shape[1], backbone.causal, pad, x.device)
    x = backbone.embed_positions(x)
    states = []
    for block in backbone.blocks:
        x = x + block.attn(_norm(block.ln1, x, special), mask, backbone.causal)
        x = x + block.mlp(_norm(block.ln2, x, special))
        states.append(x)
    return states


def _capture_prefixes(model: nn.Module, backbone: nn.Module, x: torch.Tensor,
                      **forward_kwargs: Any) -> Activations:
    """Causal BiXT: position t's states from encoding the prefix 0..t (as its forward does)."""
    record: dict[str, Any] = {}
    handle = backbone.register_forward_pre_hook(
        lambda _m, args, kwargs: record.__setitem__("input", args[0]), with_kwargs=True)
    was_training = model.training
    model.eval()
    try:
        hook = backbone.register_forward_hook(lambda _m, _a, out: record.__setitem__("out", out))
        try:
            model(x, **forward_kwargs)
        finally:
            hook.remove()
        output = record["out"]
        inp = record["input"]
        pad = forward_kwargs.get("pad_mask")
        T = inp.shape[1]
        states: list[list[torch.Tensor]] = [[] for _ in backbone.layers]
        maps: list[list[torch.Tensor]] = [[] for _ in backbone.layers]
        for t in range(T):
            per: dict[str, list] = {"s": [], "a": []}
            hs = []
            for layer in backbone.layers:
                hs.append(layer.register_forward_hook(
                    lambda _m, _a, out, per=per: per["s"].append(out[1][:, -1])))
                hs.append(layer.cross.register_forward_pre_hook(
                    lambda m, args, kwargs, per=per: per["a"].append(
                        _bi_cross(m, args, kwargs)[:, :, -1]), with_kwargs=True))
            try:
                backbone.encode(inp[:, :t + 1], None if pad is None else pad[:, :t + 1])
            finally:
                for h in hs:
                    h.remove()
            for i in range(len(backbone.layers)):
                states[i].append(per["s"][i])
                maps[i].append(per["a"][i])
    finally:
        handle.remove()
        model.train(was_training)
    return Activations(residual=[inp, *[torch.stack(s, 1) for s in states]],
                       output=output,
                       attention=[torch.stack(m, 2) for m in maps])


def has_attention(name: str) -> bool:
    """Whether :func:`capture` returns attention maps for backbone ``name`` (default config)."""
    from icarena.pretraining import backbones

    bb = backbones.build(name, d_model=8, n_layers=1, n_heads=1, max_len=4)
    return all(attention_module(b) is not None for b in blocks_of(bb))

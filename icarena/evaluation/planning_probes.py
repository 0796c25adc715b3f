"""Probes of what a 1-layer path-finding transformer learned (ALPINE, Wang et al. 2024, Sec. 5).

For a GPT-family model with token embedding ``W_t`` (tied to the read-out ``W_o``), first-block
FFN and attention value/output maps, with LayerNorms omitted as in the paper:

* adjacency probe    ``W_M'[i, :] = (FFN(e_i W_t) + e_i W_t) W_o``           (next-node logits from
  the current node alone); its *weight gap* = mean over edges - mean over non-edges (i < j).
* reachability probe ``W_V'[t, :] = (e_t W_t W_V + FFN(e_t W_t W_V)) W_o``    (logits contributed by
  attending to the target t; ``W_V`` = value slice of the QKV map times the output projection).
  Reported as means over three sets of (t, k), k < t: observed reachable (``R_obs = 1``),
  reachable but never observed, and unreachable. The paper's finding: obs >> real\\obs ~ non.
* target attention: mean attention weight on the target position (index 1) when predicting path
  tokens, averaged over heads and prompts.

Matrices are indexed ``[source, target]`` like :mod:`icarena.envs.planning.dag`; the probes return
node-by-node (n, n) blocks of the vocabulary (node i = token i + 2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from icarena.envs.planning.tokens import NEWLINE, NODE_OFFSET, PAD


def _gpt_parts(model: nn.Module):
    backbone = getattr(model, "backbone", None)
    blocks = getattr(backbone, "blocks", None)
    if blocks is None or not hasattr(blocks[0], "mlp") or not hasattr(blocks[0], "attn"):
        return None
    emb = getattr(getattr(model, "read_in", None), "weight", None)
    qkv, proj = getattr(blocks[0].attn, "qkv", None), getattr(blocks[0].attn, "proj", None)
    if emb is None or emb.dim() != 2:
        return None
    d = emb.shape[1]
    # the probes read W_V out of a fused (3d, d) qkv projection and apply proj and the MLP to
    # d-wide states: a backbone whose blocks differ (linear attention, supernet) has no probe
    if not (isinstance(qkv, nn.Linear) and tuple(qkv.weight.shape) == (3 * d, d)
            and isinstance(proj, nn.Linear) and tuple(proj.weight.shape) == (d, d)):
        return None
    try:
        with torch.no_grad():
            out = blocks[0].mlp(emb[:1])
    except Exception:  # an MLP that needs more than a (1, d) state
        return None
    if tuple(out.shape) != (1, d):
        return None
    return emb, model.read_out, blocks[0]


def probes_supported(model: nn.Module) -> bool:
    """True when the model's backbone exposes GPT-style blocks the probes can read."""
    return _gpt_parts(model) is not None


@torch.no_grad()
def adjacency_probe(model: nn.Module, n: int) -> np.ndarray:
    """``W_M'`` restricted to nodes: float64 (n, n), row = current node, column = next node."""
    emb, read_out, block = _gpt_parts(model)
    e = emb[NODE_OFFSET : NODE_OFFSET + n]
    logits = read_out(block.mlp(e) + e)
    return logits[:, NODE_OFFSET : NODE_OFFSET + n].double().cpu().numpy()


@torch.no_grad()
def reachability_probe(model: nn.Module, n: int) -> np.ndarray:
    """``W_V'`` restricted to nodes: float64 (n, n), row = target t, column = node k."""
    emb, read_out, block = _gpt_parts(model)
    e = emb[NODE_OFFSET : NODE_OFFSET + n]
    d = e.shape[1]
    w_v = block.attn.qkv.weight[2 * d : 3 * d]
    b_v = block.attn.qkv.bias[2 * d : 3 * d] if block.attn.qkv.bias is not None else 0.0
    v = block.attn.proj(e @ w_v.T + b_v)
    logits = read_out(v + block.mlp(v))
    return logits[:, NODE_OFFSET : NODE_OFFSET + n].double().cpu().numpy()


def edge_weight_gap(W_M: np.ndarray, adjacency: np.ndarray) -> float:
    """Mean of ``W_M'[i, j]`` over edges minus over non-edges, both over pairs i < j."""
    upper = np.triu(np.ones_like(adjacency, dtype=bool), k=1)
    edges, non = upper & adjacency, upper & ~adjacency
    if not edges.any() or not non.any():
        return float("nan")
    return float(W_M[edges].mean() - W_M[non].mean())


def reachability_means(
    W_V: np.ndarray, reach: np.ndarray, observed: np.ndarray
) -> dict[str, float]:
    """Means of ``W_V'[t, k]`` over k < t, split by reachability.

    Args:
        W_V: (n, n) probe, row = target t, column = node k.
        reach: bool (n, n) ``reach[s, t]`` = s reaches t (source-first, as in dag.reachability).
        observed: bool (n, n) ``observed[t, k]`` = k seen on a training path to target t
            (target-first R_obs, as in ALPINE).
    Returns:
        {"obs", "real_not_obs", "non"} means (nan for an empty set).
    """
    target_first = np.asarray(reach, dtype=bool).T
    below = np.tril(np.ones_like(target_first, dtype=bool), k=-1)  # k < t
    sets = {
        "obs": below & observed,
        "real_not_obs": below & target_first & ~observed,
        "non": below & ~target_first,
    }
    return {k: float(W_V[m].mean()) if m.any() else float("nan") for k, m in sets.items()}


@torch.no_grad()
def target_attention(model: nn.Module, rows: np.ndarray, max_rows: int = 512) -> float:
    """Mean first-layer attention on the target position (index 1) when predicting path tokens.

    Args:
        rows: int (M, T) token rows ``s t s ... t \\n PAD ...`` (e.g. test lines).
    Query positions are 2 .. (newline position - 1): the positions whose next token is a path
    node after the source copy.
    """
    parts = _gpt_parts(model)
    if parts is None or not hasattr(model.backbone, "attention_maps"):
        return float("nan")
    rows = np.asarray(rows[:max_rows], dtype=np.int64)
    x = torch.from_numpy(rows)
    maps = model.backbone.attention_maps(model.read_in(x))[0].mean(dim=1)  # (M, T, T)
    att_target = maps[:, :, 1].numpy()
    pos = np.arange(rows.shape[1])[None, :]
    nl = np.where((rows == NEWLINE).any(1), np.argmax(rows == NEWLINE, axis=1), rows.shape[1])
    use = (pos >= 2) & (pos < nl[:, None] - 1) & (rows != PAD)
    return float(att_target[use].mean()) if use.any() else float("nan")

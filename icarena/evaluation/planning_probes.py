"""Probes of what a 1-layer path-finding transformer learned (ALPINE, Wang et al. 2024, Sec. 5).

For a model with token embedding ``W_t`` (tied to the read-out ``W_o``), first-block FFN and
attention value/output maps, with LayerNorms omitted as in the paper (weight probes: gpt, sepnorm,
sympformer's nesterov_lt, linear and local_global -- :func:`probes_supported`):

* adjacency probe    ``W_M'[i, :] = (FFN(e_i W_t) + e_i W_t) W_o``           (next-node logits from
  the current node alone); its *weight gap* = mean over edges - mean over non-edges (i < j).
* reachability probe ``W_V'[t, :] = (e_t W_t W_V + FFN(e_t W_t W_V)) W_o``    (logits contributed by
  attending to the target t; ``W_V`` = value slice of the QKV map times the output projection).
  Reported as means over three sets of (t, k), k < t: observed reachable (``R_obs = 1``),
  reachable but never observed, and unreachable. The paper's finding: obs >> real\\obs ~ non.
* target attention: mean attention weight on the target position (index 1) when predicting path
  tokens, averaged over heads and prompts (every backbone with token-to-token attention maps).
* activation adjacency probe (every backbone): a ridge read-out of the current node's adjacency
  row from the residual stream (:mod:`icarena.pretraining.activations`), fitted on training
  lines of even (odd) current nodes and averaged on held-out lines of the odd (even) ones;
  :func:`probe_gap` = mean over edges - over non-edges.

Matrices are indexed ``[source, target]`` like :mod:`icarena.envs.planning.dag`; the probes return
node-by-node (n, n) blocks of the vocabulary (node i = token i + 2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from icarena.envs.planning.tokens import NEWLINE, NODE_OFFSET, PAD


def _probe_parts(model: nn.Module):
    """(token embedding W_t, read-out, FFN map, value-output map) of the first block, or None.

    Defined for blocks with one value/output map per token and an FFN: the GPT block (gpt,
    sepnorm, sympformer's nesterov_lt), linear attention (value ``v`` then output ``o``; no FFN
    when mlp_ratio = 0) and local_global's encoder block. BiXT (tokens read latents, no
    token-to-token value map), SympFormer's particle step and the sliced supernet have none:
    use :func:`activation_adjacency_probe` there.
    """
    from icarena.pretraining.backbones.gpt import SelfAttention
    from icarena.pretraining.backbones.linear import LinearAttention
    from icarena.pretraining.backbones.local_global import _EncoderBlock

    backbone = getattr(model, "backbone", None)
    blocks = getattr(backbone, "blocks", None)
    read_in = getattr(model, "read_in", None)
    if blocks is None or not isinstance(read_in, nn.Embedding):
        return None
    block = blocks[0]
    attn, mlp = getattr(block, "attn", None), getattr(block, "mlp", None)
    if isinstance(attn, SelfAttention) and mlp is not None:
        def value(e: torch.Tensor) -> torch.Tensor:
            d = e.shape[1]
            w_v = attn.qkv.weight[2 * d : 3 * d]
            b_v = attn.qkv.bias[2 * d : 3 * d] if attn.qkv.bias is not None else 0.0
            return attn.proj(e @ w_v.T + b_v)
        return read_in.weight, model.read_out, mlp, value
    if isinstance(attn, LinearAttention):
        ffn = mlp if mlp is not None else torch.zeros_like
        return read_in.weight, model.read_out, ffn, lambda e: attn.o(attn.v(e))
    if isinstance(block, _EncoderBlock):
        def value_lg(e: torch.Tensor) -> torch.Tensor:
            d = e.shape[1]
            return block.proj(e @ block.qkv.weight[2 * d:].T + block.qkv.bias[2 * d:])
        return (read_in.weight, model.read_out,
                lambda h: block.fc2(block.act(block.fc1(h))), value_lg)
    return None


def probes_supported(model: nn.Module) -> bool:
    """True when the ALPINE weight probes (adjacency, reachability) are defined for the model's
    backbone (see :func:`_probe_parts`); the activation probe works for every backbone."""
    return _probe_parts(model) is not None


@torch.no_grad()
def adjacency_probe(model: nn.Module, n: int) -> np.ndarray:
    """``W_M'`` restricted to nodes: float64 (n, n), row = current node, column = next node."""
    emb, read_out, ffn, _ = _probe_parts(model)
    e = emb[NODE_OFFSET : NODE_OFFSET + n]
    logits = read_out(ffn(e) + e)
    return logits[:, NODE_OFFSET : NODE_OFFSET + n].double().cpu().numpy()


@torch.no_grad()
def reachability_probe(model: nn.Module, n: int) -> np.ndarray:
    """``W_V'`` restricted to nodes: float64 (n, n), row = target t, column = node k."""
    emb, read_out, ffn, value = _probe_parts(model)
    e = emb[NODE_OFFSET : NODE_OFFSET + n]
    v = value(e)
    logits = read_out(v + ffn(v))
    return logits[:, NODE_OFFSET : NODE_OFFSET + n].double().cpu().numpy()


def path_positions(rows: np.ndarray) -> np.ndarray:
    """bool (M, T): positions 2 .. newline - 1 of token rows ``s t s ... t \\n PAD ...``, where
    the current token is a node of the path (the model predicts its successor)."""
    rows = np.asarray(rows)
    pos = np.arange(rows.shape[1])[None, :]
    nl = np.where((rows == NEWLINE).any(1), np.argmax(rows == NEWLINE, axis=1), rows.shape[1])
    return (pos >= 2) & (pos < nl[:, None]) & (rows >= NODE_OFFSET)


@torch.no_grad()
def activation_adjacency_probe(
    model: nn.Module, fit_rows: np.ndarray, eval_rows: np.ndarray, adjacency: np.ndarray, *,
    layer: int = -1, lam: float = 1e-3, max_rows: int = 2048,
) -> np.ndarray:
    """A linear probe of the adjacency in the residual stream, for every backbone.

    Ridge regression (penalty ``lam`` · trace / width) from the residual stream after ``layer``
    (:func:`icarena.pretraining.activations.capture`; -1 = the last block) at the path positions
    of ``fit_rows`` to the current node's adjacency row A[c, :] (n targets in {0, 1}), fitted on
    the positions whose current node is even and evaluated on the odd ones, then the other way
    round (node-held-out cross-fitting: the probe cannot memorise a node's row from its token
    identity, so at initialisation the gap is ~0; a model whose states point at the successors'
    embeddings generalises to unseen nodes). Returns float64 (n, n): row i = the mean prediction
    over the path positions of ``eval_rows`` whose current node is i (NaN for nodes never current
    there).
    """
    from icarena.pretraining.activations import capture

    A = np.asarray(adjacency, dtype=np.float64)
    n = A.shape[0]

    def features(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows[:max_rows], dtype=np.int64)
        used = np.flatnonzero((rows != PAD).any(0))  # drop all-PAD columns (causal models)
        width = int(used[-1]) + 1 if len(used) else 1
        max_len = getattr(getattr(getattr(model, "backbone", None), "config", None), "max_len",
                          width)
        rows = rows[:, : min(width, max_len)]  # the model's inputs: the last column is a label
        device = next(model.parameters()).device
        h = capture(model, torch.from_numpy(rows).to(device)).residual[layer]
        use = path_positions(rows)
        f = h.double().cpu().numpy()[use]
        return np.concatenate([f, np.ones((len(f), 1))], 1), rows[use] - NODE_OFFSET

    F_fit, c_fit = features(fit_rows)
    F_ev, c_ev = features(eval_rows)
    pred = np.full((len(c_ev), n), np.nan)
    for parity in (0, 1):
        fit, ev = c_fit % 2 == parity, c_ev % 2 != parity
        if not fit.any() or not ev.any():
            continue
        gram = F_fit[fit].T @ F_fit[fit]
        W = np.linalg.solve(gram + lam * np.trace(gram) / len(gram) * np.eye(len(gram)),
                            F_fit[fit].T @ A[c_fit[fit]])
        pred[ev] = F_ev[ev] @ W
    ok = np.isfinite(pred).all(1)
    out = np.full((n, n), np.nan)
    counts = np.bincount(c_ev[ok], minlength=n)
    sums = np.zeros((n, n))
    np.add.at(sums, c_ev[ok], pred[ok])
    seen = counts > 0
    out[seen] = sums[seen] / counts[seen, None]
    return out


def probe_gap(P: np.ndarray, adjacency: np.ndarray) -> float:
    """Mean of ``P[i, j]`` over edges minus over non-edges, pairs i < j, rows i that are defined
    (finite)."""
    A = np.asarray(adjacency, dtype=bool)
    upper = np.triu(np.ones_like(A), k=1) & np.isfinite(P).all(1)[:, None]
    edges, non = upper & A, upper & ~A
    if not edges.any() or not non.any():
        return float("nan")
    return float(P[edges].mean() - P[non].mean())


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
    from icarena.pretraining.activations import capture

    rows = np.asarray(rows[:max_rows], dtype=np.int64)
    x = torch.from_numpy(rows).to(next(model.parameters()).device)
    attention = capture(model, x).attention
    if attention is None or attention[0].shape[-1] != rows.shape[1]:
        return float("nan")  # no token-to-token attention (SympFormer's particle step, BiXT)
    maps = attention[0].mean(dim=1).cpu()  # (M, T, T)
    att_target = maps[:, :, 1].numpy()
    pos = np.arange(rows.shape[1])[None, :]
    nl = np.where((rows == NEWLINE).any(1), np.argmax(rows == NEWLINE, axis=1), rows.shape[1])
    use = (pos >= 2) & (pos < nl[:, None] - 1) & (rows != PAD)
    return float(att_target[use].mean()) if use.any() else float("nan")


def probe_support(backbone: str) -> str:
    """Which path-finding probes run on ``backbone`` (a registered name), for ``icarena list``:
    'weights + activations' or 'activations' (the activation probe runs on every backbone)."""
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.path_lm import alpine_model_config

    model = SequenceModel(alpine_model_config(8, 4, d_model=8, n_layers=1, n_heads=1,
                                              backbone=backbone))
    return "weights + activations" if probes_supported(model) else "activations"

"""In-context game players: trajectory tokenization, imitation task, ``icarena pretrain icgp``.

Shi, Yang, Yang, Shen 2024, "Transformers as Game Players" (arXiv 2410.09701), §3–5. A
causal sequence model reads a context algorithm's trajectory D_t and predicts the
algorithm's policy for the next step at **every** (h, s) at once.

Streams (``stream``; the dataset's setting), one model each:

* decentralized: ``"max"`` and ``"min"`` -- one model per player that sees only its **own**
  stream (s, own action, own reward); the opponent's actions never enter its tokens;
* centralized: ``"joint"`` -- one model over (s, a, b, r) that outputs a distribution over the
  A·B joint actions (flattened as a·B + b, the record's ``pi/joint`` layout).

Embedding (``--model.embedding``; a reconstruction, the paper does not give it). The token of
step t (0-based, T = K·H steps) is, with own reward ρ = r for the max player and 1 − r for the min
player (the min player's reward in the zero-sum game), e_x the one-hot vector of x and n = A or B:

* ``"slot"`` (default)::

    x_t = concat[e_{h_t} (H), e_{s_t} (S), e_{own action} (n), ρ_t · e_{own action} (n)]
    x_t = concat[e_{h_t}, e_{s_t}, e_{a_t} (A), e_{b_t} (B), r_t · e_{a_t·B+b_t} (A·B)]   (joint)

  The reward sits in the slot of the action taken, so a prefix average (one attention head)
  directly yields per-action visit frequencies and reward sums -- the statistics EXP3,
  V-learning and VI-ULCB update. It carries exactly the information of the concat form (the
  reward is the sum of the slot) but makes those statistics linear in the tokens, which is
  meant to shorten training (a short CPU budget); the concat form is one flag away.
* ``"concat"`` (the likely layout of the paper)::

    x_t = concat[e_{h_t}, e_{s_t}, e_{own action}, ρ_t]
    x_t = concat[e_{h_t}, e_{s_t}, e_{a_t}, e_{b_t}, r_t]                                (joint)

* ``"slot_prob"`` (icgp-decentralized's default): the slot token plus the probability p_t with
  which the stream's own policy chose the action it took, in that action's slot::

    x_t = concat[slot token, p_t · e_{own action} (n)],   p_t = π_t(own action | h_t, s_t)

  A player knows the probabilities it acted with; EXP3 and V-learning need exactly them, since
  their loss estimates are importance weighted (ℓ_t / π_t(a_t)). Without p_t the model must
  re-derive its past policies from the history, and the measured result is a shortcut: it
  copies its own past action frequencies, which in play feeds on itself
  (:mod:`icarena.experiments.icgp_decentralized`). In play the in-context player feeds back the
  policies it proposed itself (the ``pi/<stream>`` columns of the history).
* ``"slot_policy"``: the slot token plus the stream's whole own policy π_t(· | h_t, s_t) (n).
  Kept as a warning: the next policy is then almost a function of the last token (a lower
  validation KL than slot_prob's), but in play the model's errors compound through its own
  fed-back policy and the gap ends above uniform play's (docs/results/icgp-decentralized.md).
* ``"cell"``: visit and reward in the slot of the (h, s, own action) cell, so one prefix average
  yields every state's statistics::

    x_t = concat[e_{h_t}, e_{s_t}, e_{own action(s)}, e_{cell}, ρ_t · e_{cell}]  (2·H·S·n cells)

 The model input is ``[0, x_0, ..., x_{T−2}]``: position 0 is an
all-zero start token and position t (after D_t = x_{<t}) holds the prediction of the policy used
at step t. Positions come from the backbone's own positional encoding. With the backbone built
``causal=True`` the output at position t depends on x_0..x_{t−1} only.

Read-out (``--model.read-out``), H·S·n_out logits per position reshaped to (H, S, n_out) with a
softmax over the last axis; n_out = A, B or A·B:

* ``"linear"`` (default; the paper's): one ``Linear(d → H·S·n_out)`` from the position's state.
* ``"query"``: one causal attention query per (h, s)
  (:class:`icarena.pretraining.readouts.QueryReadOut`): each state's query averages (learned)
  values over the prefix, weighted by learned scores of the inputs and states, then an MLP
  shared by the states maps that to the state's logits. VI-ULCB's policy at (h, s) is a function
  of that state's per-joint-action counts, mean rewards and next-state values (200 cells across
  the 8 states); read from one width-d position, the linear read-out stayed at uniform play
  however the model was sized, while the per-state read-out learns the map once for every state
  (measurements in :mod:`icarena.experiments.icgp_centralized`).
* ``"cells"`` (icgp-centralized's default): the query read-out's attention with fixed
  per-action-cell values read from the step token (was cell c taken, its reward, was c taken
  at the previous step and which state followed) and a head that treats every action cell of a
  state alike (:class:`icarena.pretraining.readouts.CellReadOut`; needs a ``slot*`` token).
  VI-ULCB's map from a state's per-cell counts, mean rewards and next-state values to its
  equilibrium policy does not depend on how the actions are numbered; a head with that symmetry
  learns it from far fewer games and steps. ``--train.positions`` computes the loss (and the
  read-out) at a random subset of positions per batch, which keeps its cost down.

Loss (``--train.labels``), averaged over steps t and all (h, s) (the paper's augmentation: labels
for unvisited states too, Lin–Bai–Mei 2023):

* ``"soft"`` (default): cross-entropy −Σ_x π^alg_t(x | h, s) log TF_θ(x | D_{t−1}, h, s) to the
  algorithm's recorded per-step policy. It has the same minimiser as the paper's MLE and lower
  variance; it is what meets the acceptance bar within the CPU budget.
* ``"sampled"``: one action per (t, h, s) drawn from π^alg_t in ``sample_batch`` (fresh draws every
  step, from the trainer's seeded generator) and the usual cross-entropy: the paper's loss
  Σ_t Σ_s log TF_θ(a_t^s | D_{t−1}, s).

Data (``--data D``). ``pretrain`` reads only the dataset D written by ``icarena generate games``
(:mod:`icarena.pretraining.data.games`, the one producer of game data): its manifest fixes the
setting, H, S, A, B, K and the context algorithm (not flags); its train split (N games from the
ICGP prior, seed branch ``[seed, 1]``, ``trajectories_per_game`` runs of the context algorithm on
each) is trained on and its val split (branch ``[seed, 2]``) gives eval/val_kl and eval/val_tv.
Held-out evaluation games use the branch ``[eval_seed, 3]`` (:func:`eval_games`), so training
never sees them. The run records D's manifest SHA-256 in ``config.json`` (``dataset``), which a
``--resume`` and ``icarena evaluate icgp`` check. A batch is ``--train.batch-size`` whole
trajectories drawn uniformly with replacement. ``--preset paper`` sets the paper's optimisation
(batch 32, lr 5e-4, 100 epochs of D's trajectories) where the ``--train`` flags were not given.
``--train.stream-workers 2`` trains the max and min models side by side in two spawned processes
(same results as one after the other at the same thread count; roughly halves the wall time on
two cores).

Run dir layout (``icarena pretrain icgp --out-dir RUN``)::

    RUN/icgp.json            setting, game dims, K, context algorithm, streams (atomic JSON)
    RUN/max/, RUN/min/       decentralized: one Trainer run dir per player
    RUN/joint/               centralized: one Trainer run dir
    (each: config.json, model.safetensors, ckpt.pt, TensorBoard events)

``icgp.json`` keeps the keys it had before the config groups (``context_cfg`` holds
``--data.context-options``, ``read_out_cfg`` ``--model.read-out-options``, ``labels``
``--train.labels``), so earlier run dirs still load and play.

:class:`icarena.pretraining.game_player.InContextGamePlayer` loads such a run dir and plays in
context.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import CheckpointError, ConfigError, check
from icarena.lifecycle import atomic_write_json, writes_run
from icarena.pretraining.data import games as games_data
from icarena.pretraining.data.games import (
    algorithm_config,
    check_options,
    dataset_settings,
    derived_seed,
    has_split,
    run_trajectories,
    split_columns,
)
from icarena.pretraining.model import ModelConfig, ModelSpec, Options, SequenceModel
from icarena.pretraining.readouts import READ_OUTS
from icarena.pretraining.train import TrainConfig, TrainResult, seed_everything, train

SETTINGS = ("decentralized", "centralized")
EMBEDDINGS = ("slot", "concat", "slot_prob", "slot_policy", "cell")
POLICY_COLUMNS = {"max": "pi/max", "min": "pi/min", "joint": "pi/joint"}
LABELS = ("soft", "sampled")
STREAMS = {"decentralized": ("max", "min"), "centralized": ("joint",)}
CONTEXT_ALGORITHMS = {"decentralized": ("exp3", "vlearning"), "centralized": ("viulcb",)}
META_FILE = "icgp.json"
SCHEMA = 1


# ------------------------------------------------------------------------------ tokenization
def n_actions(stream: str, A: int, B: int) -> int:
    """Size of a stream's action set: A (max), B (min) or A·B (joint)."""
    sizes = {"max": A, "min": B, "joint": A * B}
    check(stream in sizes, f"stream must be one of {sorted(sizes)}, got {stream!r}")
    return sizes[stream]


def token_dim(stream: str, H: int, S: int, A: int, B: int, embedding: str = "slot") -> int:
    """Width of a step token (module docstring): H + S + (own action(s)) + n ("slot"), 1
    ("concat"), 2n ("slot_prob", "slot_policy") or 2·H·S·n ("cell"); own action(s) = n for a
    player stream, A + B for the joint stream (n = A·B)."""
    check(embedding in EMBEDDINGS, f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    acts = A + B if stream == "joint" else n_actions(stream, A, B)
    n = n_actions(stream, A, B)
    return H + S + acts + {"slot": n, "concat": 1, "cell": 2 * H * S * n}.get(embedding, 2 * n)


def step_tokens(
    history: dict[str, np.ndarray], stream: str, H: int, S: int, A: int, B: int,
    embedding: str = "slot",
) -> np.ndarray:
    """Tokens x_t of every recorded step (see the module docstring).

    Args:
        history: record columns ``traj/h``, ``traj/s``, ``act/max``, ``act/min``, ``rew/max``,
            each (G, t). A player's stream reads only its own action column (``act/max`` for
            "max", ``act/min`` for "min") and the reward; the joint stream reads both.
        stream: "max", "min" or "joint".
        H, S, A, B: game dims.
        embedding: "slot" (default: the reward is written into the taken action's slot),
            "concat" (a single reward feature), "slot_prob", "slot_policy" (these two also
            read the stream's own policy column ``pi/max``, ``pi/min`` or ``pi/joint``, (G, t,
            H, S, n)) or "cell"; see the module docstring.
    Returns:
        float32 (G, t, token_dim).
    """
    n = n_actions(stream, A, B)
    check(embedding in EMBEDDINGS, f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    h = np.asarray(history["traj/h"], dtype=np.int64)
    s = np.asarray(history["traj/s"], dtype=np.int64)
    r = np.asarray(history["rew/max"], dtype=np.float32)
    check(h.ndim == 2 and h.shape == s.shape == r.shape,
          f"history columns must be (G, t) of one shape, got {h.shape}, {s.shape}, {r.shape}")
    parts = [_onehot(h, H, "traj/h"), _onehot(s, S, "traj/s")]
    if stream == "joint":
        a, b = _onehot(history["act/max"], A, "act/max"), _onehot(history["act/min"], B,
                                                                   "act/min")
        parts += [a, b]
        own_r, own = r, (a[..., :, None] * b[..., None, :]).reshape(*a.shape[:-1], n)
    elif stream == "max":
        own = _onehot(history["act/max"], A, "act/max")
        parts.append(own)
        own_r = r
    else:
        own = _onehot(history["act/min"], B, "act/min")
        parts.append(own)
        own_r = 1.0 - r
    if embedding == "concat":
        parts.append(own_r[..., None])
    elif embedding == "cell":
        visit = _onehot(h * S + s, H * S, "traj/h·S + traj/s")
        cell = (visit[..., :, None] * own[..., None, :]).reshape(*own.shape[:-1], H * S * n)
        parts += [cell, own_r[..., None] * cell]
    else:
        parts.append(own_r[..., None] * own)
    if embedding in ("slot_prob", "slot_policy"):
        pi = _own_policy_at_visits(history, stream, h, s, n)
        parts.append(pi * own if embedding == "slot_prob" else pi)
    return np.concatenate(parts, axis=-1).astype(np.float32)


def _own_policy_at_visits(history: dict[str, np.ndarray], stream: str, h: np.ndarray,
                          s: np.ndarray, n: int) -> np.ndarray:
    """π_t(· | h_t, s_t), the stream's own policy used at each recorded step: (G, t, n)."""
    key = POLICY_COLUMNS[stream]
    G, t = h.shape
    if key not in history:
        check(t == 0, f"the 'slot_prob' / 'slot_policy' embeddings need the stream's own "
              f"policies {key!r} (G, t, H, S, n) in the history; it has only {sorted(history)}")
        return np.zeros((G, 0, n), np.float32)
    pi = np.asarray(history[key], dtype=np.float32)
    check(pi.ndim == 5 and pi.shape[:2] == (G, t) and pi.shape[-1] == n,
          f"{key} must be (G, t, H, S, {n}) with (G, t) = {(G, t)}, got {pi.shape}")
    g, i = np.arange(G)[:, None], np.arange(t)[None, :]
    return pi[g, i, h, s]


def _onehot(x: Any, n: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.size:
        check(int(x.min()) >= 0 and int(x.max()) < n,
              f"{name} values must lie in [0, {n}), got [{int(x.min())}, {int(x.max())}]")
    return (x[..., None] == np.arange(n)).astype(np.float32)


def model_inputs(tokens: np.ndarray | torch.Tensor, length: int | None = None):
    """Prepend the all-zero start token: (G, t, D) -> (G, t + 1, D), cut to ``length`` positions.

    Position i of the result holds x_{i−1} (position 0: the start token), so a causal model's
    output at position i has seen exactly D_i = x_{<i} and predicts the policy of step i.
    """
    G, _, D = tokens.shape
    if isinstance(tokens, torch.Tensor):
        out = torch.cat([tokens.new_zeros((G, 1, D)), tokens], dim=1)
    else:
        out = np.concatenate([np.zeros((G, 1, D), tokens.dtype), tokens], axis=1)
    return out if length is None else out[:, :length]


def policy_targets(record: dict[str, np.ndarray], stream: str) -> np.ndarray:
    """The context algorithm's per-step policy at all (h, s): (G, T, H, S, n) float32."""
    key = POLICY_COLUMNS[stream]
    check(key in record, f"the record has no {key!r}; the centralized setting needs a "
          "centralized context algorithm (viulcb) whose record carries pi/joint")
    return np.asarray(record[key], dtype=np.float32)


def logits_to_log_policy(logits: torch.Tensor, H: int, S: int, n: int) -> torch.Tensor:
    """(B, L, H·S·n) read-out -> (B, L, H, S, n) log-probabilities (softmax over actions)."""
    check(logits.shape[-1] == H * S * n,
          f"read-out width {logits.shape[-1]} != H·S·n = {H * S * n}")
    return F.log_softmax(logits.float().reshape(*logits.shape[:-1], H, S, n), dim=-1)


# --------------------------------------------------------------------------------- the model
def icgp_model_config(
    stream: str,
    dims: tuple[int, int, int, int],
    seq_len: int,
    *,
    backbone: str = "gpt",
    d_model: int = 32,
    n_layers: int = 4,
    n_heads: int = 4,
    backbone_cfg: dict[str, Any] | None = None,
    embedding: str = "slot",
    read_out: str = "linear",
    read_out_cfg: dict[str, Any] | None = None,
) -> ModelConfig:
    """The model of one stream: Linear read-in -> causal backbone -> read-out of H·S·n logits.

    Defaults follow DPT (Lee et al. 2023, arXiv 2306.14892) and Lin, Bai & Mei 2023
    (arXiv 2310.08566): d_model 32, 4 layers, 4 heads, dropout 0.
    ``backbone_cfg`` overrides/extends the backbone options; ``causal`` is always True.
    ``read_out``: "linear" (one Linear(d, H·S·n), as in the paper), "query" (one causal attention
    query per (h, s), :class:`icarena.pretraining.readouts.QueryReadOut`; ``read_out_cfg``
    sets its heads, head_dim, hidden, summary) or "cells"
    (:class:`icarena.pretraining.readouts.CellReadOut`, its token layout from
    :func:`cell_layout`; ``read_out_cfg`` sets heads, width, layers, summary).
    """
    H, S, A, B = dims
    cfg: dict[str, Any] = dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                               max_len=seq_len, dropout=0.0)
    cfg.update(backbone_cfg or {})
    check(cfg.get("causal", True) is True,
          "in-context game players must be causal (the policy at step t may use only D_{t-1}); "
          "drop causal=False from backbone_cfg")
    cfg["causal"] = True
    layout = ({"groups": H * S} if read_out == "query" else
              cell_layout(stream, H, S, A, B, embedding) if read_out == "cells" else {})
    fixed = sorted(set(layout) & set(read_out_cfg or {}))
    check(not fixed, f"the {read_out} read-out's {fixed} follow from the game and the token "
          f"(H·S states, the action and reward slots); drop them from read_out_cfg")
    return ModelConfig(backbone=backbone, backbone_cfg=cfg, input_kind="vectors",
                       input_dim=token_dim(stream, H, S, A, B, embedding),
                       output_dim=H * S * n_actions(stream, A, B), read_out=read_out,
                       read_out_cfg=layout | dict(read_out_cfg or {}))


def cell_layout(stream: str, H: int, S: int, A: int, B: int, embedding: str) -> dict[str, int]:
    """Where the 'cells' read-out (:class:`icarena.pretraining.readouts.CellReadOut`) finds a
    step token's state, action(s) and reward slot: the token starts [e_h, e_s, own action(s),
    reward slot, ...] for the 'slot', 'slot_prob' and 'slot_policy' embeddings."""
    check(embedding in ("slot", "slot_prob", "slot_policy"),
          f"the 'cells' read-out reads the reward from the action's slot: it needs the 'slot', "
          f"'slot_prob' or 'slot_policy' embedding, got {embedding!r}")
    n = n_actions(stream, A, B)
    joint = stream == "joint"
    return {"groups": H * S, "states": S, "rows": A if joint else n, "action_a": H + S,
            "action_b": H + S + A if joint else -1,
            "reward_slot": H + S + (A + B if joint else n), "state_at": H}


class GamePolicyTask:
    """Trainer task: imitate the context algorithm's per-step policy of one stream.

    Args:
        tokens: float32 (M, T, D) step tokens of M training trajectories.
        targets: (M, T, H, S, n) the algorithm's policy used at each step.
        labels: "soft" or "sampled" (module docstring).
        val_tokens, val_targets: optional held-out trajectories for ``evaluate``.
    """

    def __init__(self, tokens: np.ndarray, targets: np.ndarray, *, labels: str = "soft",
                 val_tokens: np.ndarray | None = None, val_targets: np.ndarray | None = None,
                 positions: int = 0):
        check(labels in LABELS, f"labels must be one of {LABELS}, got {labels!r}")
        check(isinstance(positions, int) and positions >= 0,
              f"positions must be an int >= 0 (0: every position), got {positions!r}")
        check(tokens.ndim == 3 and targets.ndim == 5 and tokens.shape[:2] == targets.shape[:2],
              f"tokens (M, T, D) and targets (M, T, H, S, n) must share (M, T), got "
              f"{tokens.shape} and {targets.shape}")
        check(tokens.shape[0] >= 1, "need at least one training trajectory")
        self.tokens = np.ascontiguousarray(tokens, dtype=np.float32)
        self.targets = np.ascontiguousarray(targets, dtype=np.float32)
        self.labels = labels
        self.val_tokens, self.val_targets = val_tokens, val_targets
        self.T = tokens.shape[1]
        self.positions = positions if 0 < positions < self.T else 0
        self.H, self.S, self.n = targets.shape[2:]
        self.tokens_per_sample = self.T
        self.device_tokens: torch.Tensor | None = None  # set by ``to``
        self.device_targets: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> GamePolicyTask:
        """Keep the training tokens (and soft targets) on ``device``; batches are gathered
        there."""
        self.device_tokens = torch.from_numpy(self.tokens).to(device)
        if self.labels == "soft":
            self.device_targets = torch.from_numpy(self.targets).to(device)
        return self

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.tokens.shape[0], size=batch_size)
        pos = (np.sort(rng.choice(self.T, size=self.positions, replace=False))
               if self.positions else None)
        if self.device_tokens is not None:  # the same rows, gathered on the device
            idx_t = torch.from_numpy(idx).to(self.device_tokens.device, non_blocking=True)
            batch = {"x": model_inputs(self.device_tokens[idx_t], self.T)}
            if self.device_targets is not None:
                p_t = self.device_targets[idx_t]
                if pos is not None:
                    pos_t = torch.from_numpy(pos).to(p_t.device)
                    batch["pos"], p_t = pos_t, p_t[:, pos_t]
                batch["p"] = p_t
                return batch
        else:
            batch = {"x": torch.from_numpy(model_inputs(self.tokens[idx], self.T))}
        p = self.targets[idx]
        if pos is not None:
            batch["pos"], p = torch.from_numpy(pos), p[:, pos]
        if self.labels == "soft":
            batch["p"] = torch.from_numpy(p)
        else:
            cdf = np.cumsum(p, axis=-1)
            u = rng.random(p.shape[:-1])[..., None] * cdf[..., -1:]
            batch["a"] = torch.from_numpy(
                np.minimum((cdf <= u).sum(-1), self.n - 1).astype(np.int64))
        return batch

    def log_policy(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return logits_to_log_policy(model(x), self.H, self.S, self.n)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy over the batch's positions (all, or ``batch["pos"]``: a random
        subset of ``positions`` per batch, shared by its sequences)."""
        logq = (self.log_policy(model, batch["x"]) if "pos" not in batch else
                logits_to_log_policy(model(batch["x"], positions=batch["pos"]),
                                     self.H, self.S, self.n))
        if "p" in batch:
            return -(batch["p"] * logq).sum(-1).mean()
        return F.nll_loss(logq.reshape(-1, self.n), batch["a"].reshape(-1))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out imitation error: mean KL(π^alg ‖ TF) and total variation over (t, h, s)."""
        if self.val_tokens is None or self.val_targets is None:
            return {}
        x = torch.from_numpy(model_inputs(self.val_tokens, self.T).astype(np.float32))
        device = next(model.parameters()).device
        with torch.no_grad():
            q = self.log_policy(model, x.to(device)).exp().cpu().double().numpy()
        return policy_divergences(self.val_targets, q)


def policy_divergences(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Mean KL(p ‖ q) and TV(p, q) = ½ Σ|p − q| over all leading axes (last axis = actions)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    kl = np.where(p > 0, p * (np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(q, 1e-300))),
                  0.0).sum(-1)
    return {"val_kl": float(kl.mean()), "val_tv": float(0.5 * np.abs(p - q).sum(-1).mean())}


# ------------------------------------------------------------------------------------- data
def pretraining_games(H: int, S: int, A: int, B: int, n_games: int, seed: int, *,
                      branch: int = 1, transition: str = "dirichlet", initial: str = "fixed"):
    """N games from the ICGP prior on seed branch ``[seed, branch]`` (1: train, 2: validation:
    the games of ``icarena generate games``)."""
    from icarena.envs.games import TabularGame

    return TabularGame.random(H, S, A, B, seed=np.random.SeedSequence([seed, branch]),
                              n_games=n_games, transition=transition, initial=initial)


def eval_games(H: int, S: int, A: int, B: int, n_games: int, eval_seed: int, *,
               transition: str = "dirichlet", initial: str = "fixed"):
    """Held-out evaluation games: seed branch ``[eval_seed, 3]``, disjoint from training draws."""
    return pretraining_games(H, S, A, B, n_games, eval_seed, branch=3, transition=transition,
                             initial=initial)


def context_records(game, algorithm: str, episodes: int, trajectories: int, seed: int,
                    algo_kwargs: dict[str, Any] | None = None,
                    workers: int = 1) -> dict[str, np.ndarray]:
    """Run the context algorithm ``trajectories`` times on each of the G games (the context
    algorithm's play in evaluation; pretraining data come from ``icarena generate games``).

    Returns the record with M = G·trajectories rows, trajectory j of game g at row j·G + g,
    drawn by :func:`icarena.pretraining.data.games.run_trajectories` in ``workers`` parts (part c
    from seed branch [seed, c]; one part: ``seed`` itself).
    """
    check(isinstance(workers, int) and workers >= 1,
          f"workers must be an int >= 1, got {workers!r}")
    return run_trajectories(game, algorithm, episodes, trajectories, seed, options=algo_kwargs,
                            chunks=workers, workers=workers)


def _spawn_map(fn, jobs: list[tuple], workers: int) -> list:
    """``[fn(job) for job in jobs]`` in ``workers`` spawned processes (fresh interpreters, so
    no torch / BLAS thread state is inherited, dying with this one), results in job order."""
    from icarena.lifecycle import spawn_pool

    with spawn_pool(workers) as pool:
        return list(pool.map(fn, jobs))


_algo_config = algorithm_config
_seed_int = derived_seed
_check_options = check_options


# --------------------------------------------------------------------------- pretrain entry
@dataclass
class GameData:
    """The data of an ICGP experiment (``--data.*``; made by ``icarena generate games``, one
    dataset per N): games drawn from the ICGP prior and the context algorithm's trajectories on
    them."""

    H: int = 1
    """Episode horizon (matrix games: H = S = 1)."""
    S: int = 1
    """Number of states."""
    A: int = 5
    """Max-player actions."""
    B: int = 5
    """Min-player actions."""
    transition: str = "dirichlet"
    """Transition rule of random games: 'dirichlet' or 'deterministic'."""
    episodes: int = 300
    """K episodes per trajectory (T = K·H tokens); the paper uses 3000 (dec.) and 300 (cen.)."""
    trajectories_per_game: int = 1
    """Context-algorithm runs (different random draws) per pretraining game."""
    context: str = "exp3"
    """Context algorithm: exp3 or vlearning (decentralized), viulcb (centralized)."""
    context_options: Options = field(default_factory=dict)
    """Options of the context algorithm's config, e.g. --data.context-options c 0.05 (viulcb)
    (icarena.agents.games: EXP3Config, VLearningConfig, VIULCBConfig)."""
    val_games: int = 4
    """Validation games (seed branch [seed, 2], same prior and context algorithm) for
    eval/val_kl and eval/val_tv (0: none)."""
    chunks: int = 1
    """Parts the trajectories of a dataset are generated in (part c from seed branch [s, c];
    part of the seed protocol, see icarena.pretraining.data.games)."""
    workers: int = 1
    """Processes generating the parts side by side (the data do not depend on it)."""

    @property
    def dims(self) -> tuple[int, int, int, int]:
        return (self.H, self.S, self.A, self.B)

    def games_config(self, setting: str, n_games: int, seed: int, out_dir: str,
                     **changes: Any) -> games_data.Config:
        """The ``icarena generate games`` config of N = ``n_games`` pretraining games."""
        check(setting in SETTINGS, f"setting must be one of {SETTINGS}, got {setting!r}")
        return dataclasses.replace(games_data.Config(
            out_dir=out_dir, seed=seed, setting=setting, n_games=n_games,
            trajectories_per_game=self.trajectories_per_game, val_games=self.val_games,
            episodes=self.episodes, H=self.H, S=self.S, A=self.A, B=self.B,
            algorithm=self.context, context_options=dict(self.context_options),
            transition=self.transition, chunks=self.chunks, workers=self.workers), **changes)


@dataclass
class GameModel(ModelSpec):
    """The model of each stream (``--model.*``): the backbone and its size (built causal over
    the T = K·H step tokens, dropout 0), the step token and the read-out (module docstring)."""

    embedding: str = "slot"
    """Step token: 'slot' (reward in the taken action's slot, default), 'concat' (ICGP's layout),
    'slot_prob' (+ own probability of the action taken; what icgp-decentralized uses: EXP3 /
    V-learning players need it), 'slot_policy', 'cell' (icarena.pretraining.game_lm)."""
    read_out: str = "linear"
    """Read-out: 'linear' (all (h, s) from one Linear, as in ICGP), 'query' (one causal
    attention query per (h, s)) or 'cells' (per-action-cell values and an action-symmetric head;
    icgp-centralized's default)."""
    read_out_options: Options = field(default_factory=dict)
    """Options of the 'query' read-out, e.g. --model.read-out-options hidden 64 head_dim 16
    (icarena.pretraining.readouts.QueryReadOut: heads, head_dim, hidden, summary), or of the
    'cells' read-out (CellReadOut: heads, width, layers, summary). The flag replaces the whole
    default (the keys it leaves out take the read-out's own defaults), so to change one key of
    an experiment's default give them all, e.g. width 16 layers 4 heads 4."""

    def validate(self) -> None:
        _check_options(self.options, "model.options")
        self.backbone_cfg()  # a registered backbone
        for name in ("d_model", "n_layers", "n_heads"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 1, f"model.{name} must be an int >= 1, got {v!r}")
        check(self.embedding in EMBEDDINGS,
              f"model.embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        check(self.read_out in READ_OUTS,
              f"model.read_out must be one of {READ_OUTS}, got {self.read_out!r}")
        _check_options(self.read_out_options, "model.read_out_options")
        check(self.read_out != "cells" or self.embedding.startswith("slot"),
              f"the 'cells' read-out reads the reward from the action's slot: pass "
              f"--model.embedding slot (or slot_prob / slot_policy), not {self.embedding!r}")
        check(self.read_out != "linear" or not self.read_out_options,
              "model.read_out_options sets options of the 'query' or 'cells' read-out; drop it "
              "or pass --model.read-out query (or cells); the read-out is 'linear'")


@dataclass
class GameTrainConfig(TrainConfig):
    """Optimisation settings of every stream's model (``--train.*``), plus the loss and how
    many streams train at once."""

    labels: str = "soft"
    """Loss: 'soft' (cross-entropy to the recorded policy) or 'sampled' (one action per
    (t, h, s) drawn from it, the paper's loss)."""
    stream_workers: int = 1
    """Processes training the streams side by side (decentralized: 2 trains the max and min
    models at once, each on cpu_count // 2 threads unless --train.threads is set; same results
    as 1 for the same thread count)."""
    positions: int = 0
    """Positions per trajectory the loss is computed at: a random subset of this size per
    batch, drawn by the trainer's seeded generator (0: every position). The read-out then runs
    at those positions only, which is what makes the 'cells' read-out affordable on a CPU."""

    def validate(self) -> None:
        super().validate()
        check(self.labels in LABELS, f"train.labels must be one of {LABELS}, got {self.labels!r}")
        check(isinstance(self.positions, int) and self.positions >= 0,
              f"train.positions must be an int >= 0 (0: every position), got "
              f"{self.positions!r}")
        check(isinstance(self.stream_workers, int) and self.stream_workers >= 1,
              f"train.stream_workers must be an int >= 1, got {self.stream_workers!r}")

    def trainer_config(self, **changes: Any) -> TrainConfig:
        """The plain TrainConfig the Trainer gets (without labels / stream_workers)."""
        names = [f.name for f in dataclasses.fields(TrainConfig)]
        return dataclasses.replace(TrainConfig(**{n: getattr(self, n) for n in names}),
                                   **changes)


def _default_model() -> GameModel:
    return icgp_model()


def _default_train() -> GameTrainConfig:
    return icgp_train_config()


def icgp_train_config() -> GameTrainConfig:
    """The games track's recommended optimisation settings (the ``--train.*`` defaults of
    ``icarena pretrain icgp``): 1,500 steps of batch 32, AdamW lr 1e-3 -> 1e-4 (cosine, 100
    warm-up steps), weight decay 1e-4, soft labels. Change them with ``.replace(...)``."""
    return GameTrainConfig(steps=1500, batch_size=32, lr=1e-3, min_lr=1e-4, warmup_steps=100,
                           weight_decay=1e-4, eval_every=0, ckpt_every=500, log_every=25)


def icgp_model() -> GameModel:
    """The games track's default model (``--model.*`` of ``icarena pretrain icgp``): a GPT of
    width 32, 4 layers, 4 heads, the 'slot' step token and the linear read-out."""
    return GameModel(d_model=32, n_layers=4, n_heads=4)


PRESET_NAMES = ("cpu", "paper")
PAPER_TRAIN = {"batch_size": 32, "lr": 5e-4, "min_lr": 5e-5}
PAPER_EPOCHS = 100


@dataclass
class PretrainConfig:
    """Pretrain in-context game player(s) on a games dataset (ICGP): one model per stream."""

    out_dir: str = "runs/icgp"
    """Run dir (gets icgp.json and one Trainer run dir per stream: max/ min/ or joint/)."""
    seed: int = 0
    """Seed of the model inits and the batches."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished): every stream from its checkpoint, a
    stream without one from the start; the settings and the dataset must be the same."""
    preset: Literal["cpu", "paper"] = "cpu"
    """'cpu' or 'paper' (Shi et al. 2024: batch 32, lr 5e-4, 100 epochs of the dataset's
    trajectories); fills the --train settings left at their CPU defaults."""
    data: str = "data/games"
    """Dataset dir from `icarena generate games`: its manifest fixes the setting, H, S, A, B, K
    and the context algorithm; its train split is trained on, its val split gives eval/val_kl."""
    model: GameModel = field(default_factory=_default_model)
    """The model of each stream (the size of DPT, arXiv 2306.14892, and Lin, Bai & Mei 2023)."""
    train: GameTrainConfig = field(default_factory=_default_train)
    """Optimisation settings (per stream), the loss and the stream workers."""

    def validate(self) -> None:
        check(self.preset in PRESET_NAMES,
              f"preset must be one of {PRESET_NAMES}, got {self.preset!r}")
        self.model.validate()
        self.train.validate()


def apply_paper_preset(train: GameTrainConfig, n_trajectories: int,
                       cpu: GameTrainConfig | None = None) -> GameTrainConfig:
    """``train`` with the paper's optimisation (batch 32, lr 5e-4 (min_lr lr / 10), 100 epochs
    of the ``n_trajectories`` training trajectories) wherever it still holds the CPU default
    ``cpu`` (a setting given explicitly wins; one equal to the CPU default counts as unset)."""
    cpu = cpu or _default_train()
    changes: dict[str, Any] = {k: v for k, v in PAPER_TRAIN.items()
                               if getattr(train, k) == getattr(cpu, k)}
    if train.steps == cpu.steps:
        batch = changes.get("batch_size", train.batch_size)
        changes["steps"] = max(1, -(-PAPER_EPOCHS * n_trajectories // batch))
    return dataclasses.replace(train, **changes)


def load_games_dataset(path: str | os.PathLike, *, verify: bool = True):
    """Load a games dataset and its settings: ``(Dataset, settings)`` (DatasetError when the
    directory is not a dataset of ``icarena generate games``, with the fix; ``verify``: check
    every shard's checksum)."""
    from icarena.pretraining.data.store import load_dataset

    ds = load_dataset(path, verify=verify)
    settings = dataset_settings(ds)
    check(settings["setting"] in SETTINGS, f"{path}: unknown setting {settings['setting']!r}")
    for stream in STREAMS[settings["setting"]]:
        check(POLICY_COLUMNS[stream] in ds, f"{path} has no {POLICY_COLUMNS[stream]!r} column "
              f"for the {stream} stream; regenerate it with `icarena generate games`")
    return ds, settings


def json_object(text: str | dict[str, Any], name: str) -> dict[str, Any]:
    """Parse a JSON-object option ('' -> {}); a dict passes through. ConfigError otherwise."""
    if isinstance(text, dict):
        return dict(text)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{name} must be a JSON object like '{{\"key\": 1}}' ({e})") from e
    check(isinstance(value, dict), f"{name} must be a JSON object, got {text!r}")
    return value


@writes_run
def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Train one model per stream on the games dataset ``cfg.data``; write the run dir.

    Reads only that dataset (its train split; its val split, when present, for eval/val_kl and
    eval/val_tv) and records its identity (manifest SHA-256) in ``config.json``'s ``dataset``
    section, which ``icarena evaluate icgp`` checks. Returns ``{"run_dir": str, "results":
    {stream: TrainResult}, "rows": [...]}`` (rows: final training loss and validation KL/TV per
    stream, printed by the CLI).
    """
    from icarena.pretraining.data.store import dataset_identity

    cfg.validate()
    out = Path(cfg.out_dir)
    ds, settings = load_games_dataset(cfg.data)
    spec = cfg.model
    train_cfg = cfg.train
    if cfg.preset == "paper":
        train_cfg = apply_paper_preset(train_cfg, int(ds["traj/game"].shape[0]))
    meta = icgp_meta(settings, spec, labels=train_cfg.labels, seed=cfg.seed)
    identity = {**dataset_identity(ds), "path": str(Path(cfg.data).resolve())}
    if cfg.resume and (out / META_FILE).exists():
        saved = read_meta(out)
        diff = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in meta.items() if saved.get(k) != v]
        if diff:
            raise CheckpointError(f"cannot resume {out}: its icgp.json differs ({'; '.join(diff)})"
                                  "; resume with the same settings, or start a new run in "
                                  "another --out-dir")
        before = recorded_dataset(out)
        if before is not None and before.get("manifest_sha256") != identity["manifest_sha256"]:
            raise CheckpointError(f"cannot resume {out}: it was trained on another dataset than "
                                  f"{cfg.data} (manifest hashes differ); resume with the same "
                                  "--data, or start a new run in another --out-dir")
    atomic_write_json(out / "config.json", {"pretrain": dataclasses.asdict(cfg),
                                            "train_resolved": dataclasses.asdict(train_cfg),
                                            "dataset": identity})
    rec = {k: np.array(v) for k, v in split_columns(ds, "train").items()}
    val = ({k: np.array(v) for k, v in split_columns(ds, "val").items()}
           if has_split(ds, "val") else None)
    _, results, _ = fit_icgp_models(rec, settings, model=spec, train=train_cfg, seed=cfg.seed,
                                    out_dir=out, val=val, resume=cfg.resume, dataset=identity)
    rows = [{"stream": stream, "final_loss": res.losses[-1] if res.losses else float("nan"),
             **res.final_eval, "seconds": res.seconds} for stream, res in results.items()]
    return {"run_dir": str(out), "results": results, "rows": rows}


def fit_icgp_models(
    rec: dict[str, np.ndarray],
    settings: dict[str, Any],
    *,
    model: GameModel | None = None,
    train: GameTrainConfig | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    val: dict[str, np.ndarray] | None = None,
    resume: bool = False,
    dataset: dict[str, Any] | None = None,
) -> tuple[dict[str, SequenceModel], dict[str, TrainResult], dict[str, Any]]:
    """The games track's one training recipe: one model per stream imitating the context
    algorithm's recorded per-step policies (used by ``icarena pretrain icgp``, the icgp
    experiments and :func:`icarena.pretraining.train_player`).

    Args:
        rec: the context algorithm's record on M trajectories (``traj/*``, ``act/*``,
            ``rew/max``, ``pi/*``; :func:`icarena.pretraining.data.games.run_trajectories`).
        settings: what the data fixes -- ``setting``, ``H``, ``S``, ``A``, ``B``, ``episodes``
            (K), ``algorithm``, ``n_games``, ``trajectories_per_game`` (and optionally
            ``context_options``, ``transition``, ``initial``); a dataset's
            :func:`~icarena.pretraining.data.games.dataset_settings`.
        model: backbone, size, step token and read-out (default :func:`icgp_model`).
        train: optimisation (default :func:`icgp_train_config`); each stream's seed is derived
            from ``seed``.
        out_dir: write the ICGP run dir there (``icgp.json`` and one run dir per stream); None
            trains in memory (then the streams train one after the other).
        val: a validation record (logged as eval/val_kl and eval/val_tv).
        resume / dataset: continue the run in ``out_dir``; the dataset identity to record.
    Returns:
        (models by stream, TrainResult by stream, the run's ``icgp.json`` meta).
    """
    spec = model or icgp_model()
    train = train or icgp_train_config()
    spec.validate()
    train.validate()
    setting = settings["setting"]
    check(setting in SETTINGS, f"setting must be one of {SETTINGS}, got {setting!r}",
          fields="settings")
    H, S, A, B = (int(settings[k]) for k in "HSAB")
    T = int(settings["episodes"]) * H
    meta = icgp_meta(settings, spec, labels=train.labels, seed=seed)
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        atomic_write_json(out / META_FILE, meta)
    jobs = []
    for i, stream in enumerate(STREAMS[setting]):
        task = GamePolicyTask(
            step_tokens(rec, stream, H, S, A, B, spec.embedding), policy_targets(rec, stream),
            labels=train.labels, positions=train.positions,
            val_tokens=None if val is None else step_tokens(val, stream, H, S, A, B,
                                                            spec.embedding),
            val_targets=None if val is None else policy_targets(val, stream),
        )
        mcfg = icgp_model_config(stream, (H, S, A, B), T, backbone=spec.backbone,
                                 d_model=spec.d_model, n_layers=spec.n_layers,
                                 n_heads=spec.n_heads, backbone_cfg=dict(spec.options),
                                 embedding=spec.embedding, read_out=spec.read_out,
                                 read_out_cfg=dict(spec.read_out_options))
        seed_everything(derived_seed(seed, 20 + i))
        net = SequenceModel(mcfg)
        tcfg = train.trainer_config(seed=derived_seed(train.seed, seed, i))
        run_config = {"stream": stream, "icgp": meta, "model": dataclasses.asdict(mcfg),
                      "task": {"name": "icgp", "stream": stream, "icgp": meta}}
        if dataset is not None:
            run_config["dataset"] = dataset
        jobs.append((net, task, tcfg, None if out is None else out / stream, run_config,
                     resume))
    streams = STREAMS[setting]
    workers = train.stream_workers if out is not None else 1
    results = dict(zip(streams, _train_streams(jobs, workers), strict=True))
    if workers > 1:  # trained in other processes: read the weights they wrote
        from icarena.pretraining.model import load_model

        models = {s: load_model(out / s)[0] for s in streams}
    else:
        models = {s: job[0] for s, job in zip(streams, jobs, strict=True)}
    for m in models.values():
        m.eval()
    return models, results, meta


def recorded_dataset(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``dataset`` section (manifest_sha256, generator, path) a run's ``config.json``
    recorded, or None for a run made before runs recorded their dataset."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        section = json.loads(path.read_text()).get("dataset")
    except (json.JSONDecodeError, AttributeError) as e:
        raise CheckpointError(f"{path} is not a valid run config ({e})") from e
    return section if isinstance(section, dict) else None


def _train_job(job: tuple) -> TrainResult:
    model, task, tcfg, run_dir, run_config, resume = job
    return train(model, task, tcfg, run_dir, config=run_config, resume=resume)


def _train_streams(jobs: list[tuple], workers: int) -> list[TrainResult]:
    """Train each stream's (model, task, cfg, run dir, config) job; side by side in ``workers``
    spawned processes when > 1 (each job is seeded on its own, so the order does not matter)."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [_train_job(job) for job in jobs]
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [(m, t, c if c.threads else dataclasses.replace(c, threads=threads), d, rc, r)
            for m, t, c, d, rc, r in jobs]
    return _spawn_map(_train_job, jobs, workers)


def icgp_meta(settings: dict[str, Any], spec: GameModel, *, labels: str = "soft",
              seed: int = 0) -> dict[str, Any]:
    """The run's ``icgp.json``: what an in-context player needs to tokenize and read out, from
    the dataset's settings (:func:`icarena.pretraining.data.games.dataset_settings`) and the
    model (its keys predate datasets and stay as they are, so earlier run dirs keep loading)."""
    setting = settings["setting"]
    return {
        "schema": SCHEMA, "setting": setting, "H": settings["H"], "S": settings["S"],
        "A": settings["A"], "B": settings["B"], "episodes": settings["episodes"],
        "streams": list(STREAMS[setting]), "context": settings["algorithm"],
        "context_cfg": dict(settings.get("context_options") or {}),
        "n_games": settings["n_games"],
        "trajectories_per_game": settings["trajectories_per_game"],
        "transition": settings.get("transition", "dirichlet"),
        "initial": settings.get("initial", "fixed"),
        "labels": labels, "embedding": spec.embedding, "read_out": spec.read_out,
        "read_out_cfg": dict(spec.read_out_options), "seed": seed,
        "backbone": spec.backbone,
    }


def read_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Load and check ``icgp.json`` of a run dir (CheckpointError if missing or malformed)."""
    path = Path(run_dir) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {run_dir} is not an icgp run dir; create one "
                              "with `icarena pretrain icgp` or `icarena run icgp-decentralized`")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from e
    need = {"setting", "H", "S", "A", "B", "episodes", "streams"}
    missing = sorted(need - set(meta))
    if missing or meta.get("setting") not in SETTINGS:
        raise CheckpointError(f"{path} is malformed (missing {missing} or bad setting)")
    return meta


__all__ = [
    "CONTEXT_ALGORITHMS",
    "EMBEDDINGS",
    "GameData",
    "GameModel",
    "GamePolicyTask",
    "GameTrainConfig",
    "LABELS",
    "PretrainConfig",
    "apply_paper_preset",
    "fit_icgp_models",
    "icgp_model",
    "icgp_train_config",
    "load_games_dataset",
    "recorded_dataset",
    "SETTINGS",
    "STREAMS",
    "context_records",
    "eval_games",
    "icgp_model_config",
    "logits_to_log_policy",
    "model_inputs",
    "n_actions",
    "policy_divergences",
    "policy_targets",
    "pretrain",
    "pretraining_games",
    "read_meta",
    "step_tokens",
    "token_dim",
]

"""Read-outs: how a :class:`~icarena.pretraining.model.SequenceModel` turns backbone states into
task outputs.

* ``"linear"`` (default): ``Linear(d → output_dim)`` at every position.
* ``"query"``: :class:`QueryReadOut`, a causal attention read-out with one learned query per
  output *group* (for an in-context game player: one group per (h, s), each reading out that
  state's action logits). Built for outputs that are many parallel functions of different parts
  of the history, where a single width-d position has to hold all of them at once.
* ``"cells"``: :class:`CellReadOut`, the query read-out's attention with per-action-cell values
  and a network that treats every (max action, min action) cell of a state alike: an in-context
  game player whose output does not depend on how the actions are numbered.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import check

READ_OUTS = ("linear", "query", "cells")
_SCORE_BOUND = 8.0


class QueryReadOut(nn.Module):
    """Per-group causal attention read-out with position-free queries.

    Each of ``groups`` groups g has ``heads`` heads k with a fixed (learned) query, so its score
    of position j depends on j's features only: u_j = [x_j, z_j] (the model input and the
    backbone state), σ_gk(j) = 8·tanh(w_gk·u_j / 8). At position t the head reads the weighted
    mean of the values over the prefix j ≤ t together with a learned sink (c_gk, v0_k)::

        m_gk(t) = (e^{c_gk} v0_k + Σ_{j≤t} e^{σ_gk(j)} v_k(j)) / (e^{c_gk} + Σ_{j≤t} e^{σ_gk(j)})

    with values v(j) = MLP(u_j) shared by the groups. That is softmax attention whose query does
    not change with t, so it runs as a prefix sum (O(L) in the length). A head that scores the
    positions of one state high averages the values over that state's visits, and the weight left
    on the sink, 1 / (1 + Σ e^{σ − c}), tells how many there were. Each group then maps
    [m_g·(t), sink weights, z_t, group embedding] through an MLP to a hidden vector, every group
    sends a short summary of it to the others (a game's value at one state depends on the values
    of the next states), and a linear layer gives the group's ``output_dim / groups`` logits.

    Input shapes: x (B, L, input_dim), z (B, L, d_model); output (B, L, output_dim), the
    groups' logits concatenated in group order. Position t uses positions ≤ t only.
    """

    def __init__(self, input_dim: int, d_model: int, output_dim: int, *, groups: int,
                 heads: int = 4, head_dim: int = 32, hidden: int = 128, summary: int = 8):
        super().__init__()
        for name, v in (("groups", groups), ("heads", heads), ("head_dim", head_dim),
                        ("hidden", hidden), ("summary", summary)):
            check(isinstance(v, int) and v >= 1, f"query read-out {name} must be an int >= 1, "
                  f"got {v!r}")
        check(output_dim % groups == 0, f"query read-out: output_dim {output_dim} is not a "
              f"multiple of groups {groups}; pass groups = the number of output groups")
        self.groups, self.heads, self.head_dim = groups, heads, head_dim
        u = input_dim + d_model
        self.score = nn.Linear(u, groups * heads)
        self.value = nn.Sequential(nn.Linear(u, hidden), nn.GELU(), nn.Linear(hidden,
                                                                              heads * head_dim))
        self.sink_logit = nn.Parameter(torch.zeros(groups, heads))
        self.sink_value = nn.Parameter(torch.zeros(heads, head_dim))
        self.group_embedding = nn.Parameter(torch.randn(groups, summary) * 0.5)
        f = heads * head_dim + heads + d_model + summary
        self.group_mlp = nn.Sequential(nn.Linear(f, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                       nn.GELU())
        self.summary = nn.Linear(hidden, summary)
        self.out = nn.Linear(hidden + groups * summary, output_dim // groups)

    def forward(self, x: torch.Tensor, z: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(x, z, positions=positions)[0]

    def decode(self, x: torch.Tensor, z: torch.Tensor,
               state: tuple[torch.Tensor, torch.Tensor] | None = None, *,
               positions: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Outputs (B, L, output_dim) at L new positions (x (B, L, input_dim), z (B, L, d))
        after the positions summed in ``state`` (the prefix sums of :func:`prefix_attention`;
        None: the start), and the new state. ``forward`` is ``decode`` from the start;
        ``positions`` (1-D) keeps the outputs at those positions only."""
        Bsz, L, _ = z.shape
        G, K, Dh = self.groups, self.heads, self.head_dim
        u = torch.cat([x.to(z.dtype), z], dim=-1)
        score = self.score(u).view(Bsz, L, G, K)
        v = self.value(u).view(Bsz, L, K, Dh)
        mean, sink_weight, state = _prefix_attention(score, v, self.sink_logit,
                                                     self.sink_value, state)
        if positions is not None:
            mean, sink_weight, z = mean[:, positions], sink_weight[:, positions], z[:, positions]
            Bsz, L = z.shape[:2]
        feats = torch.cat([mean.flatten(-2), sink_weight,
                           z.unsqueeze(2).expand(Bsz, L, G, z.shape[-1]),
                           self.group_embedding.expand(Bsz, L, G, -1)], dim=-1)
        hid = self.group_mlp(feats)                                                 # (B,L,G,hid)
        shared = self.summary(hid).flatten(-2).unsqueeze(2).expand(Bsz, L, G, -1)
        return self.out(torch.cat([hid, shared], dim=-1)).flatten(-2), state


class GridLayer(nn.Module):
    """A layer that treats the rows and the columns of a grid of cells as exchangeable
    (Hartford et al. 2018, "Deep Models of Interactions Across Sets", arXiv 1803.02879)::

        y_ij = W_c x_ij + W_r mean_j x_ij + W_k mean_i x_ij + W_a mean_ij x_ij + b

    Input and output (..., rows, cols, features). Permuting the rows (or the columns) of the input
    permutes those of the output the same way.
    """

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.cell = nn.Linear(d_in, d_out)
        self.row = nn.Linear(d_in, d_out, bias=False)
        self.col = nn.Linear(d_in, d_out, bias=False)
        self.all = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row, col = x.mean(-2, keepdim=True), x.mean(-3, keepdim=True)
        return self.cell(x) + self.row(row) + self.col(col) + self.all(row.mean(-3, keepdim=True))


class CellReadOut(nn.Module):
    """Per-state causal attention read-out with per-cell values and an action-symmetric head.

    For an in-context player of a game with H steps, S states and a rows × cols grid of (joint)
    actions; groups = H·S, one per (h, s), in the order h·S + s, and ``output_dim`` = groups ·
    rows · cols logits, cell (a, b) of group g at g·rows·cols + a·cols + b.

    Values (fixed, read from the step token of the layout given by ``action_a``, ``action_b``,
    ``reward_slot``, ``state_at``): at position j, per cell c the indicator that step j's action
    was c, the reward written in c's slot, the indicator that the previous step's action was c,
    and that indicator times the one-hot of step j's state (S)::

        v_j[c] = [1{c_j = c}, r_j·1{c_j = c}, 1{c_{j-1} = c}, 1{c_{j-1} = c}·e_{s_j}]

    Scores (learned): heads k of group g score position j by a linear function of [x_j, x_{j-1},
    z_j], bounded as in :class:`QueryReadOut`, and attention over the prefix with a sink
    (:func:`prefix_attention`, O(L)) averages the values. A head that attends to the visits of g
    yields, per cell, the visit share and the mean reward; one that attends to the steps after a
    visit of g yields the next-state frequencies. From the means the read-out forms per cell and
    head: visit share, mean reward (reward / share), log(1 + share / sink weight) (a visit count),
    the same for the previous-step share, next-state frequencies P(s' | c) and the group's
    log(1/sink weight − 1).

    Head: those features plus a projection of z_t and a group embedding go through ``layers``
    :class:`GridLayer` s of width ``width``; each cell gets one logit. A game's value at a state
    depends on the next states' values: the head runs H times with shared weights, and each run
    adds to every cell Σ_s' P(s' | c) σ(h + 1, s'), where σ (``summary`` wide) is the previous
    run's summary of state (h + 1, s'): its cell features averaged under its own softmax policy
    (zero for h = H). The head is symmetric: relabelling the actions in its inputs permutes its
    logits the same way. The backbone state z_t and the scores read the action labels too, so
    the model as a whole can still learn label-specific behaviour.

    Input shapes: x (B, L, input_dim), z (B, L, d_model); output (B, L, output_dim). Position t
    uses positions ≤ t only. ``positions`` (1-D, increasing) computes the head at those positions
    only (training on a subset of positions); the attention still runs over every position.
    """

    def __init__(self, input_dim: int, d_model: int, output_dim: int, *, groups: int,
                 states: int, rows: int, action_a: int, reward_slot: int, state_at: int,
                 action_b: int = -1, heads: int = 2, width: int = 32, layers: int = 2,
                 summary: int = 8):
        super().__init__()
        for name, v in (("groups", groups), ("states", states), ("rows", rows),
                        ("heads", heads), ("width", width), ("layers", layers),
                        ("summary", summary)):
            check(isinstance(v, int) and v >= 1, f"cells read-out {name} must be an int >= 1, "
                  f"got {v!r}")
        check(groups % states == 0, f"cells read-out: groups {groups} must be H·S with S = "
              f"states {states}")
        n, rem = divmod(output_dim, groups)
        check(rem == 0 and n % rows == 0, f"cells read-out: output_dim {output_dim} must be "
              f"groups {groups} × rows {rows} × cols")
        cols = n // rows
        for name, start, width_ in (("action_a", action_a, rows), ("reward_slot", reward_slot, n),
                                    ("state_at", state_at, states)) + (
                                        (("action_b", action_b, cols),) if action_b >= 0 else ()):
            check(isinstance(start, int) and 0 <= start and start + width_ <= input_dim,
                  f"cells read-out {name} = {start!r}: a block of {width_} from there does not "
                  f"fit the {input_dim}-wide token")
        check(action_b >= 0 or cols == 1, "cells read-out: a grid with cols > 1 needs action_b "
              "(the start of the column player's action one-hot)")
        self.H, self.S, self.groups, self.heads = groups // states, states, groups, heads
        self.rows, self.cols, self.n = rows, cols, n
        self.action_a, self.action_b = action_a, action_b
        self.reward_slot, self.state_at = reward_slot, state_at
        self.channels = 3 + states
        self.score = nn.Linear(2 * input_dim + d_model, groups * heads)
        self.sink_logit = nn.Parameter(torch.zeros(groups, heads))
        self.register_buffer("sink_value", torch.zeros(heads, n * self.channels),
                             persistent=False)
        self.cell_in = nn.Linear(heads * (5 + states), width)
        self.next_in = nn.Linear(heads * summary, width)
        self.context = nn.Linear(d_model, width)
        self.group_embedding = nn.Parameter(torch.randn(groups, width) * 0.1)
        self.grid = nn.ModuleList(GridLayer(width, width) for _ in range(layers))
        self.summary = nn.Linear(width, summary)
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(x, z, positions=positions)[0]

    def _taken(self, x: torch.Tensor) -> torch.Tensor:
        """(..., n): one-hot of the (joint) action of each step token."""
        a = x[..., self.action_a:self.action_a + self.rows]
        if self.action_b < 0:
            return a
        b = x[..., self.action_b:self.action_b + self.cols]
        return (a[..., :, None] * b[..., None, :]).flatten(-2)

    def decode(self, x: torch.Tensor, z: torch.Tensor, state: tuple | None = None, *,
               positions: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """Outputs (B, L, output_dim) at L new positions after those summed in ``state`` (the
        prefix sums and the last input; None: the start), and the new state."""
        Bsz, L, _ = z.shape
        x = x.to(z.dtype)
        last = x.new_zeros(Bsz, 1, x.shape[-1]) if state is None else state[2][:, None]
        x_prev = torch.cat([last, x[:, :-1]], dim=1)
        taken, prev = self._taken(x), self._taken(x_prev)
        reward = x[..., self.reward_slot:self.reward_slot + self.n]
        s_now = x[..., self.state_at:self.state_at + self.S]
        value = torch.cat([taken[..., None], reward[..., None], prev[..., None],
                           prev[..., None] * s_now[..., None, :]], dim=-1)       # (B,L,n,C)
        value = value.flatten(-2)                                                # (B,L,nC)
        score = self.score(torch.cat([x, x_prev, z], dim=-1)).view(Bsz, L, self.groups,
                                                                   self.heads)
        if positions is not None and state is None:  # training: the head at a few positions
            mean, sink_w = _attention_at(score, value, self.sink_logit, positions)
            carry, z = (None, None), z[:, positions]
        else:
            mean, sink_w, carry = _prefix_attention(
                score, value[:, :, None].expand(Bsz, L, self.heads, -1), self.sink_logit,
                self.sink_value, None if state is None else state[:2])
            if positions is not None:
                mean, sink_w, z = mean[:, positions], sink_w[:, positions], z[:, positions]
        out = self._head(mean.unflatten(-1, (self.n, self.channels)), sink_w, z)
        return out, (*carry, x[:, -1])

    def _head(self, mean: torch.Tensor, sink_w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """mean (B, L, G, K, n, C), sink_w (B, L, G, K), z (B, L, d) -> (B, L, G·n) logits."""
        eps = 1e-4
        Bsz, L, G, K, n, _ = mean.shape
        share, rew, prev, trans = mean[..., 0], mean[..., 1], mean[..., 2], mean[..., 3:]
        sw = sink_w[..., None]
        next_freq = trans / (prev[..., None] + eps)                          # (B,L,G,K,n,S)
        feats = torch.cat([share[..., None], (rew / (share + eps))[..., None],
                           torch.log1p(share / sw)[..., None], torch.log1p(prev / sw)[..., None],
                           next_freq, torch.log(1 / sw - 1 + eps)[..., None].expand(
                               Bsz, L, G, K, n, 1)], dim=-1)                 # (B,L,G,K,n,5+S)
        feats = feats.permute(0, 1, 2, 4, 3, 5).flatten(-2)                  # (B,L,G,n,K(5+S))
        base = (self.cell_in(feats) + self.context(z)[:, :, None, None]
                + self.group_embedding[:, None])                             # (B,L,G,n,W)
        freq = next_freq.view(Bsz, L, self.H, self.S, K, n, self.S)
        sigma = base.new_zeros(Bsz, L, self.H, self.S, self.summary.out_features)
        for _ in range(self.H):  # backward induction: the value of h needs that of h + 1
            ahead = torch.cat([sigma[:, :, 1:], torch.zeros_like(sigma[:, :, :1])], dim=2)
            nxt = torch.einsum("blhskcp,blhpq->blhskcq", freq, ahead)
            nxt = nxt.permute(0, 1, 2, 3, 5, 4, 6).reshape(Bsz, L, G, n, -1)
            h = (base + self.next_in(nxt)).unflatten(-2, (self.rows, self.cols))
            for i, layer in enumerate(self.grid):
                h = F.gelu(layer(h)) if i == 0 else h + F.gelu(layer(h))
            logits = self.out(h)                                             # (B,L,G,r,c,1)
            policy = torch.softmax(logits.flatten(-3, -2), dim=-2)           # (B,L,G,n,1)
            pooled = (policy * h.flatten(-3, -2)).sum(-2)                    # (B,L,G,W)
            sigma = self.summary(pooled).view(Bsz, L, self.H, self.S, -1)
        return logits.flatten(2)


def prefix_attention(score: torch.Tensor, value: torch.Tensor, sink_logit: torch.Tensor,
                     sink_value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal softmax attention with position-free queries and a sink, as prefix sums.

    Args:
        score: (B, L, G, K) raw scores of every position for query (g, k); bounded here to
            σ = 8·tanh(score / 8).
        value: (B, L, K, Dh) values (shared by the G groups).
        sink_logit: (G, K) the sink's raw score (bounded the same way); sink_value: (K, Dh).
    Returns:
        mean (B, L, G, K, Dh): at position t the softmax-weighted mean of the sink value and
        the values at positions ≤ t; sink_weight (B, L, G, K): the weight on the sink.
    """
    mean, sink_weight, _ = _prefix_attention(score, value, sink_logit, sink_value)
    return mean, sink_weight


def _bounded_weight(logit: torch.Tensor) -> torch.Tensor:
    """exp(σ − 8) of the logit bounded to σ = 8 tanh(logit / 8) in (−8, 8): an attention weight
    in (e^{-16}, 1), so prefix sums of weights neither overflow nor underflow."""
    return torch.exp(_SCORE_BOUND * torch.tanh(logit / _SCORE_BOUND) - _SCORE_BOUND)


def _prefix_attention(
    score: torch.Tensor, value: torch.Tensor, sink_logit: torch.Tensor, sink_value: torch.Tensor,
    carry: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """:func:`prefix_attention` continuing the sums ``carry`` = (Σ w v (B, G, K, Dh), Σ w
    (B, G, K)) of earlier positions; also returns the sums after the last position."""
    w = _bounded_weight(score)
    w_sink = _bounded_weight(sink_logit)[..., None]                               # (G, K, 1)
    wv = w.unsqueeze(-1) * value.unsqueeze(2)                                     # (B,L,G,K,Dh)
    if carry is not None:  # add the earlier sums to the first position: the same running sum
        wv = torch.cat([wv[:, :1] + carry[0][:, None], wv[:, 1:]], dim=1)
        w = torch.cat([w[:, :1] + carry[1][:, None], w[:, 1:]], dim=1)
    num_sum, den_sum = torch.cumsum(wv, dim=1), torch.cumsum(w, dim=1)
    num = num_sum + w_sink * sink_value
    den = den_sum.unsqueeze(-1) + w_sink
    return num / den, (w_sink / den)[..., 0], (num_sum[:, -1], den_sum[:, -1])


def _attention_at(score: torch.Tensor, value: torch.Tensor, sink_logit: torch.Tensor,
                  positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prefix_attention` with a zero sink value and one value per position for every
    head (value (B, L, Dv)), at ``positions`` (P,) only: a masked matrix product instead of
    prefix sums over every position. Returns mean (B, P, G, K, Dv) and sink_weight (B, P, G, K).
    """
    Bsz, L, G, K = score.shape
    w, w_sink = _bounded_weight(score), _bounded_weight(sink_logit)
    mask = (torch.arange(L, device=score.device)[None, :] <= positions[:, None]).to(w.dtype)
    wm = mask[None, :, None, :] * w.flatten(2).transpose(1, 2)[:, None]         # (B,P,GK,L)
    num = (wm.flatten(1, 2) @ value).view(Bsz, -1, G, K, value.shape[-1])
    den = wm.sum(-1).view(Bsz, -1, G, K) + w_sink
    return num / den[..., None], w_sink / den


def build_read_out(kind: str, input_dim: int, d_model: int, output_dim: int,
                   options: dict[str, Any], *, bias: bool = True) -> nn.Module:
    """The read-out module of a SequenceModel (module docstring); ``bias`` is the linear
    read-out's (False when it is tied to the token embedding)."""
    check(kind in READ_OUTS, f"read_out must be one of {READ_OUTS}, got {kind!r}")
    if kind == "linear":
        check(not options, f"the linear read-out takes no options, got {sorted(options)}")
        return nn.Linear(d_model, output_dim, bias=bias)
    if kind == "cells":
        known = {"groups", "states", "rows", "action_a", "action_b", "reward_slot",
                 "state_at", "heads", "width", "layers", "summary"}
        layout = ("groups", "states", "rows", "action_a", "reward_slot", "state_at")
        cls = CellReadOut
    else:
        known, layout, cls = {"groups", "heads", "head_dim", "hidden", "summary"}, ("groups",), \
            QueryReadOut
    unknown = sorted(set(options) - known)
    check(not unknown, f"{kind} read-out has no option(s) {unknown}; valid: {sorted(known)}")
    missing = [k for k in layout if k not in options]
    check(not missing, f"the {kind} read-out needs read_out_cfg {missing} (an in-context game "
          "player's model config fills them: icarena.pretraining.game_lm.icgp_model_config)")
    return cls(input_dim, d_model, output_dim, **options)


__all__ = ["READ_OUTS", "CellReadOut", "GridLayer", "QueryReadOut", "build_read_out",
           "prefix_attention"]

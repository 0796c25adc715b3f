"""Read-outs: how a :class:`~icarena.pretraining.model.SequenceModel` turns backbone states into
task outputs.

* ``"linear"`` (default): ``Linear(d → output_dim)`` at every position.
* ``"query"``: :class:`QueryReadOut`, a causal attention read-out with one learned query per
  output *group* (for an in-context game player: one group per (h, s), each reading out that
  state's action logits). Built for outputs that are many parallel functions of different parts
  of the history, where a single width-d position has to hold all of them at once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from icarena.errors import check

READ_OUTS = ("linear", "query")
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

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decode(x, z)[0]

    def decode(self, x: torch.Tensor, z: torch.Tensor,
               state: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Outputs (B, L, output_dim) at L new positions (x (B, L, input_dim), z (B, L, d))
        after the positions summed in ``state`` (the prefix sums of :func:`prefix_attention`;
        None: the start), and the new state. ``forward`` is ``decode`` from the start."""
        Bsz, L, _ = z.shape
        G, K, Dh = self.groups, self.heads, self.head_dim
        u = torch.cat([x.to(z.dtype), z], dim=-1)
        score = self.score(u).view(Bsz, L, G, K)
        v = self.value(u).view(Bsz, L, K, Dh)
        mean, sink_weight, state = _prefix_attention(score, v, self.sink_logit,
                                                     self.sink_value, state)
        feats = torch.cat([mean.flatten(-2), sink_weight,
                           z.unsqueeze(2).expand(Bsz, L, G, z.shape[-1]),
                           self.group_embedding.expand(Bsz, L, G, -1)], dim=-1)
        hid = self.group_mlp(feats)                                                 # (B,L,G,hid)
        shared = self.summary(hid).flatten(-2).unsqueeze(2).expand(Bsz, L, G, -1)
        return self.out(torch.cat([hid, shared], dim=-1)).flatten(-2), state


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


def _prefix_attention(
    score: torch.Tensor, value: torch.Tensor, sink_logit: torch.Tensor, sink_value: torch.Tensor,
    carry: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """:func:`prefix_attention` continuing the sums ``carry`` = (Σ w v (B, G, K, Dh), Σ w
    (B, G, K)) of earlier positions; also returns the sums after the last position."""
    sigma = _SCORE_BOUND * torch.tanh(score / _SCORE_BOUND)
    sink = _SCORE_BOUND * torch.tanh(sink_logit / _SCORE_BOUND)
    # both bounded by 8, so e^{σ − 8} >= e^{-16}: the prefix sums cannot underflow
    w = torch.exp(sigma - _SCORE_BOUND)
    w_sink = torch.exp(sink - _SCORE_BOUND)[..., None]                            # (G, K, 1)
    wv = w.unsqueeze(-1) * value.unsqueeze(2)                                     # (B,L,G,K,Dh)
    if carry is not None:  # add the earlier sums to the first position: the same running sum
        wv = torch.cat([wv[:, :1] + carry[0][:, None], wv[:, 1:]], dim=1)
        w = torch.cat([w[:, :1] + carry[1][:, None], w[:, 1:]], dim=1)
    num_sum, den_sum = torch.cumsum(wv, dim=1), torch.cumsum(w, dim=1)
    num = num_sum + w_sink * sink_value
    den = den_sum.unsqueeze(-1) + w_sink
    return num / den, (w_sink / den)[..., 0], (num_sum[:, -1], den_sum[:, -1])


def build_read_out(kind: str, input_dim: int, d_model: int, output_dim: int,
                   options: dict[str, Any], *, bias: bool = True) -> nn.Module:
    """The read-out module of a SequenceModel (module docstring); ``bias`` is the linear
    read-out's (False when it is tied to the token embedding)."""
    check(kind in READ_OUTS, f"read_out must be one of {READ_OUTS}, got {kind!r}")
    if kind == "linear":
        check(not options, f"the linear read-out takes no options, got {sorted(options)}")
        return nn.Linear(d_model, output_dim, bias=bias)
    known = {"groups", "heads", "head_dim", "hidden", "summary"}
    unknown = sorted(set(options) - known)
    check(not unknown, f"query read-out has no option(s) {unknown}; valid: {sorted(known)}")
    check("groups" in options, "the query read-out needs read_out_cfg['groups'] (e.g. H·S for "
          "an in-context game player)")
    return QueryReadOut(input_dim, d_model, output_dim, **options)


__all__ = ["READ_OUTS", "QueryReadOut", "build_read_out", "prefix_attention"]

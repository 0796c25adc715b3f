"""Read-outs (icarena.pretraining.readouts): the query read-out's prefix attention and causality."""

from __future__ import annotations

import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.model import ModelConfig, SequenceModel
from icarena.pretraining.readouts import prefix_attention


def test_prefix_attention_is_softmax_attention_over_the_sink_and_the_prefix():
    g = torch.Generator().manual_seed(0)
    B, L, G, K, Dh = 2, 7, 3, 2, 4
    score = torch.randn(B, L, G, K, generator=g, dtype=torch.float64) * 5
    value = torch.randn(B, L, K, Dh, generator=g, dtype=torch.float64)
    sink_logit = torch.randn(G, K, generator=g, dtype=torch.float64)
    sink_value = torch.randn(K, Dh, generator=g, dtype=torch.float64)
    mean, sink_w = prefix_attention(score, value, sink_logit, sink_value)
    bound = lambda s: 8 * torch.tanh(s / 8)  # noqa: E731
    for b in range(B):
        for t in range(L):
            for gi in range(G):
                for k in range(K):
                    logits = torch.cat([bound(sink_logit[gi, k])[None],
                                        bound(score[b, : t + 1, gi, k])])
                    p = torch.softmax(logits, 0)
                    vals = torch.cat([sink_value[k][None], value[b, : t + 1, k]])
                    torch.testing.assert_close(mean[b, t, gi, k], p @ vals)
                    torch.testing.assert_close(sink_w[b, t, gi, k], p[0])


def test_prefix_attention_survives_extreme_scores():
    score = torch.full((1, 600, 1, 1), -1e4)
    score[0, -1] = 1e4
    mean, sink_w = prefix_attention(score, torch.ones(1, 600, 1, 2), torch.zeros(1, 1),
                                    torch.zeros(1, 2))
    assert torch.isfinite(mean).all() and torch.isfinite(sink_w).all()
    assert sink_w[0, -1, 0, 0] < 1e-3 < sink_w[0, 0, 0, 0]


def _query_model(**read_out_cfg):
    return SequenceModel(ModelConfig(
        backbone="gpt", backbone_cfg=dict(d_model=16, n_layers=1, n_heads=2, max_len=20,
                                          causal=True),
        input_kind="vectors", input_dim=5, output_dim=12, read_out="query",
        read_out_cfg={"groups": 4, "heads": 2, "head_dim": 4, "hidden": 16, **read_out_cfg}))


def test_query_read_out_is_causal_and_reads_the_prefix():
    torch.manual_seed(0)
    model = _query_model()
    x = torch.randn(3, 20, 5)
    y = model(x)
    assert y.shape == (3, 20, 12)
    later = x.clone()
    later[:, 10:] = torch.randn(3, 10, 5)
    torch.testing.assert_close(model(later)[:, :10], y[:, :10])
    earlier = x.clone()
    earlier[:, 2] += 1.0
    assert (model(earlier)[:, 2:] - y[:, 2:]).abs().amax() > 1e-5


def test_query_read_out_config_errors():
    with pytest.raises(ConfigError, match="multiple of groups"):
        _query_model(groups=5)
    with pytest.raises(ConfigError, match="no option"):
        _query_model(width=3)
    with pytest.raises(ConfigError, match="read_out must be one of"):
        ModelConfig(input_kind="vectors", input_dim=3, output_dim=2, read_out="mlp").validate()
    with pytest.raises(ConfigError, match="input_kind='vectors'"):
        ModelConfig(input_kind="tokens", input_dim=3, output_dim=2, read_out="query",
                    read_out_cfg={"groups": 2}).validate()

import math

import numpy as np
import torch

from icarena.evaluation import planning_probes as probes
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import alpine_model_config


def model(n=6, d=8, seed=0):
    torch.manual_seed(seed)
    m = SequenceModel(alpine_model_config(n + 2, 8, d_model=d))
    for p in m.parameters():  # larger weights than the init so the maps are not ~0
        torch.nn.init.normal_(p, std=0.5)
    return m


def test_probes_match_explicit_matrix_algebra():
    n, d = 6, 8
    m = model(n, d)
    E = m.read_in.weight.detach().double().numpy()  # (V, d); W_o = E^T (tied)
    blk = m.backbone.blocks[0]
    W1 = blk.mlp.fc.weight.detach().double().numpy()
    W2 = blk.mlp.proj.weight.detach().double().numpy()
    Wv = blk.attn.qkv.weight.detach().double().numpy()[2 * d:]
    Wp = blk.attn.proj.weight.detach().double().numpy()

    def ffn(x):
        h = x @ W1.T
        return (0.5 * h * (1 + np.vectorize(math.erf)(h / np.sqrt(2)))) @ W2.T

    e = E[2:2 + n]
    W_M = (ffn(e) + e) @ E.T
    v = (e @ Wv.T) @ Wp.T
    W_V = (v + ffn(v)) @ E.T
    np.testing.assert_allclose(probes.adjacency_probe(m, n), W_M[:, 2:2 + n], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(probes.reachability_probe(m, n), W_V[:, 2:2 + n], rtol=1e-5,
                               atol=1e-5)


def test_edge_gap_and_reachability_means_on_hand_matrices():
    A = np.zeros((3, 3), dtype=bool)
    A[0, 1] = A[1, 2] = True
    W = np.array([[9.0, 4.0, 1.0], [9.0, 9.0, 6.0], [9.0, 9.0, 9.0]])
    assert probes.edge_weight_gap(W, A) == (4 + 6) / 2 - 1
    reach = np.zeros((3, 3), dtype=bool)  # source-first: 0->1, 1->2, 0->2
    reach[0, 1] = reach[1, 2] = reach[0, 2] = True
    observed = np.zeros((3, 3), dtype=bool)  # target-first: k=1 seen on a path to t=2
    observed[2, 1] = True
    WV = np.array([[0, 0, 0], [5.0, 0, 0], [7.0, 3.0, 0]])
    means = probes.reachability_means(WV, reach, observed)
    assert means == {"obs": 3.0, "real_not_obs": 6.0, "non": float("nan")} or (
        means["obs"] == 3.0 and means["real_not_obs"] == 6.0 and np.isnan(means["non"]))


def test_target_attention_is_a_mean_of_attention_probabilities():
    m = model()
    rows = np.array([[2, 5, 2, 3, 5, 1, 0, 0]])
    att = probes.target_attention(m, rows)
    x = m.read_in(torch.from_numpy(rows))
    maps = m.backbone.attention_maps(x)[0].mean(1)[0]
    assert np.isclose(att, float(maps[2:4, 1].mean()), atol=1e-6)
    assert 0 < att < 1

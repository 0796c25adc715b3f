"""ALPINE probes on every backbone: after training on ALPINE paths, the edge / non-edge gap of
the activation probe (all backbones) and of the weight probe (where defined) is > 0."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from icarena.envs.planning.dag import adjacency, alpine_split, random_dag, reachability
from icarena.envs.planning.tokens import vocab_size
from icarena.evaluation import planning_probes as probes
from icarena.pretraining import backbones
from icarena.pretraining.data.alpine import build_lines
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import PathLMTask, alpine_model_config

N = 16


@functools.cache
def data(seed: int):
    g = random_dag(N, 0.3, seed=seed)
    R = reachability(g)
    tr, te = alpine_split(g, train_fraction=0.5, seed=[seed, 1], reach=R)
    lines = build_lines(g, tr, te, paths_per_pair=6, edge_lines=True, seed=seed, reach=R)
    return adjacency(g).astype(bool), lines


def trained(name: str, seed: int, steps: int = 300):
    A, lines = data(seed)
    torch.manual_seed(seed)
    task = PathLMTask(lines["train/tokens"])
    model = SequenceModel(alpine_model_config(vocab_size(N), task.block_size, d_model=32,
                                              n_layers=1, n_heads=2, backbone=name))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        loss = task.loss(model, task.sample_batch(rng, 64))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), A, lines


def gaps(name: str, seed: int) -> dict[str, float]:
    model, A, lines = trained(name, seed)
    P = probes.activation_adjacency_probe(model, lines["train/tokens"], lines["test/tokens"], A)
    out = {"activation": probes.probe_gap(P, A)}
    if probes.probes_supported(model):
        out["weights"] = probes.edge_weight_gap(probes.adjacency_probe(model, N), A)
    return out


@pytest.mark.parametrize("name", ["linear", "sympformer"])
def test_probe_gap_is_positive_after_training(name):
    g = gaps(name, 0)
    assert g["activation"] > 0 and g["weights"] > 0, g
    # node-held-out fitting: the same probe on the untrained model reads (almost) nothing
    model, A, lines = trained(name, 0, steps=0)
    P0 = probes.activation_adjacency_probe(model, lines["train/tokens"], lines["test/tokens"], A)
    assert probes.probe_gap(P0, A) < g["activation"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", backbones.available())
def test_probe_gap_on_every_backbone(name, seed):
    g = gaps(name, seed)
    assert all(v > 0 for v in g.values()), g


def test_probe_gap_reads_only_defined_rows():
    A = np.zeros((4, 4), dtype=bool)
    A[0, 1] = A[2, 3] = True
    P = np.array([[0.0, 5.0, 1.0, 3.0], [np.nan] * 4, [0.0, 0.0, 0.0, 7.0], [0.0] * 4])
    # edges (0,1), (2,3): mean 6; non-edges (0,2), (0,3), (2,... none), row 1 left out: mean 2
    assert probes.probe_gap(P, A) == pytest.approx(6.0 - 2.0)

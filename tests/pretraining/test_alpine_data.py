import networkx as nx
import numpy as np
import pytest

from icarena.envs.planning import random_dag, reachability
from icarena.envs.planning.tokens import decode_rows
from icarena.errors import ConfigError, DatasetError
from icarena.evaluation import path_is_valid
from icarena.evaluation.planning import load_path_dataset
from icarena.pretraining import generate as gen
from icarena.pretraining.data import alpine, blocksworld, load_dataset


def _check_lines(ds, n_expected_edges_lines=True):
    g = ds.graph
    lines = decode_rows(ds.train_tokens, ds.n)
    for line in lines:
        s, t, path = line[0], line[1], line[2:]
        assert path_is_valid(g, s, t, path)
        assert nx.is_simple_path(g, path) and path[0] == s and path[-1] == t
    return lines


def test_alpine_dataset_n100(tmp_path):
    cfg = alpine.Config(out_dir=str(tmp_path / "a"), seed=3, nodes=100)
    path = gen.generate("alpine", cfg)
    ds = load_path_dataset(path)
    g = random_dag(100, 0.1, seed=3)  # the graph is rebuilt from the seed alone
    assert sorted(ds.graph.edges) == sorted(g.edges)
    assert ds.n == 100 and ds.config["vocab_size"] == 102
    lines = _check_lines(ds)
    # block size: longest line incl. newline rounded up to 32; width block_size + 1
    longest = max(len(x) for x in lines) + 1
    assert ds.block_size % 32 == 0 and ds.block_size - 32 < longest <= ds.block_size
    assert ds.train_tokens.shape[1] == ds.block_size + 1 and ds.train_tokens.dtype == np.uint16
    # split rules and counts
    raw = load_dataset(path)
    train_pairs, test = np.asarray(raw["train/pairs"]), ds.test_pairs
    R = reachability(g)
    assert len(train_pairs) + len(test) == R.sum()
    assert not set(map(tuple, train_pairs)) & set(map(tuple, test))
    assert set(g.edges) <= set(map(tuple, train_pairs.tolist()))
    assert 0.54 < len(train_pairs) / R.sum() < 0.66
    assert len(lines) == 20 * len(train_pairs) + g.number_of_edges()
    edge_lines = {(x[0], x[1]) for x in lines if len(x) == 4}
    assert set(g.edges) <= edge_lines  # every edge appears as "s t s t"
    targets = {x[1] for x in lines}
    assert targets == set(np.flatnonzero(R.any(axis=0)))  # every target is in train
    test_lines = decode_rows(ds.test_tokens, 100)
    assert [tuple(x[:2]) for x in test_lines] == list(map(tuple, test.tolist()))
    assert all(path_is_valid(g, x[0], x[1], x[2:]) for x in test_lines)
    deg = ds.test_degrees()
    assert set(deg.tolist()) <= {0, 1, 2, 3} and (deg <= 2).mean() > 0.95  # ALPINE's degrees


def test_alpine_deterministic_bytes_and_overwrite(tmp_path):
    a = alpine.generate(alpine.Config(out_dir=str(tmp_path / "a"), seed=1, nodes=30))
    b = alpine.generate(alpine.Config(out_dir=str(tmp_path / "b"), seed=1, nodes=30))
    for f in sorted(p.name for p in a.iterdir() if p.suffix == ".npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        alpine.generate(alpine.Config(out_dir=str(a), seed=1, nodes=30))
    with pytest.raises(ConfigError):
        alpine.generate(alpine.Config(out_dir=str(tmp_path / "c"), nodes=1))
    with pytest.raises(ConfigError):
        alpine.generate(alpine.Config(out_dir=str(tmp_path / "c"), p=2.0))


def test_blocksworld_dataset(tmp_path):
    cfg = blocksworld.Config(out_dir=str(tmp_path / "bw"), seed=0, blocks=4, lines=3000)
    ds = load_path_dataset(gen.generate("blocksworld", cfg))
    assert ds.n == 73 and ds.graph.number_of_edges() == 240
    lines = _check_lines(ds)
    assert len(lines) == 3000
    raw = load_dataset(tmp_path / "bw")
    n_train = len(raw["train/pairs"])
    assert n_train == round(0.8 * 73 * 72) and len(ds.test_pairs) == 73 * 72 - n_train
    assert '"0": "[abcd]"' in raw.file_bytes("states.json").decode()
    per_pair = blocksworld.Config(out_dir=str(tmp_path / "pp"), blocks=3, sampling="per_pair",
                                  paths_per_pair=2, edge_lines=True)
    ds = load_path_dataset(blocksworld.generate(per_pair))
    assert len(ds.train_tokens) == 2 * round(0.8 * 13 * 12) + 30
    _check_lines(ds)
    with pytest.raises(ConfigError, match="sampling"):
        blocksworld.generate(blocksworld.Config(out_dir=str(tmp_path / "x"), sampling="bfs"))


def test_cli_registry_names():
    assert {"alpine", "blocksworld"} <= set(gen.GENERATORS)
    assert gen.generator_module("blocksworld").Config().lines == 50_000


def test_chained_lines_join_two_train_walks_and_only_add_observations(tmp_path):
    from icarena.evaluation.planning import degrees, observed_matrices

    base = load_path_dataset(gen.generate("alpine", alpine.Config(
        out_dir=str(tmp_path / "base"), seed=2, nodes=40, p=0.15, paths_per_pair=3)))
    path = gen.generate("alpine", alpine.Config(
        out_dir=str(tmp_path / "chain"), seed=2, nodes=40, p=0.15, paths_per_pair=3,
        chain_lines=300))
    ds = load_path_dataset(path)
    train_pairs = {tuple(p) for p in np.asarray(load_dataset(path)["train/pairs"]).tolist()}
    lines = _check_lines(ds)  # every line, chained ones included, is a valid simple path
    assert len(lines) == len(decode_rows(base.train_tokens, base.n)) + 300
    # ALPINE's lines and the split are unchanged; the chained lines come last
    assert decode_rows(base.train_tokens, base.n) == lines[:-300]
    assert np.array_equal(base.test_pairs, ds.test_pairs)
    for line in lines[-300:]:
        s, t, walk = line[0], line[1], line[2:]
        assert (s, t) in train_pairs
        # some node u of the walk splits it into two train pairs (s, u), (u, t)
        assert any((s, u) in train_pairs and (u, t) in train_pairs for u in walk[1:-1])
    # observations only grow, so no test pair's degree rises
    A0, R0 = observed_matrices(base.train_tokens, base.n)
    A1, R1 = observed_matrices(ds.train_tokens, ds.n)
    assert (R1 >= R0).all() and (A1 >= A0).all() and R1.sum() > R0.sum()
    assert (degrees(A1, R1, ds.test_pairs) <= degrees(A0, R0, ds.test_pairs)).all()
    # same seed, same bytes
    again = gen.generate("alpine", alpine.Config(
        out_dir=str(tmp_path / "again"), seed=2, nodes=40, p=0.15, paths_per_pair=3,
        chain_lines=300))
    assert np.array_equal(load_path_dataset(again).train_tokens, ds.train_tokens)


def test_chained_lines_refused_when_no_train_pair_can_be_chained(tmp_path):
    import networkx as nx

    g = nx.DiGraph([(0, 1), (1, 2)])
    g.add_nodes_from(range(3))
    with pytest.raises(ConfigError, match="--chain-lines 0"):
        alpine.chained_paths(g, np.array([[0, 1], [1, 2]]), 5, seed=0)


def test_cover_chains_observe_every_reachable_pair_a_train_prompt_can_carry(tmp_path):
    from icarena.evaluation.planning import observed_matrices

    common = dict(seed=5, nodes=40, p=0.12, paths_per_pair=2, train_fraction=0.2)
    base = load_path_dataset(gen.generate("alpine", alpine.Config(
        out_dir=str(tmp_path / "base"), **common)))
    path = gen.generate("alpine", alpine.Config(out_dir=str(tmp_path / "cover"), chain_lines=3000,
                                                chain_mode="cover", **common))
    ds = load_path_dataset(path)
    lines = _check_lines(ds)
    train_pairs = np.asarray(load_dataset(path)["train/pairs"])
    assert all((line[0], line[1]) in set(map(tuple, train_pairs.tolist())) for line in lines)
    # observed_reachability (from node paths) agrees with the evaluation's token-based reading
    n = ds.n
    rows = decode_rows(ds.train_tokens, n)
    width = max(len(r) - 2 for r in rows)
    paths = np.full((len(rows), width), -1)
    for i, r in enumerate(rows):
        paths[i, :len(r) - 2] = r[2:]
    lengths = np.array([len(r) - 2 for r in rows])
    assert np.array_equal(alpine.observed_reachability(paths, lengths, n),
                          observed_matrices(ds.train_tokens, n)[1])
    # every reachable (u, t) that a train prompt (s, t) with s -> u could carry is now observed
    R = reachability(ds.graph)
    train = np.zeros((n, n), bool)
    train[train_pairs[:, 0], train_pairs[:, 1]] = True
    carried = R & ((R.T.astype(int) @ train.astype(int)) > 0)
    R_base = observed_matrices(base.train_tokens, n)[1]
    R_cover = observed_matrices(ds.train_tokens, n)[1]
    assert (carried & ~R_base.T).sum() > 0  # there was something to cover
    assert not (carried & ~R_cover.T).any()
    with pytest.raises(ConfigError, match="--chain-mode"):
        alpine.chained_paths(ds.graph, train_pairs, 5, seed=0, mode="greedy")

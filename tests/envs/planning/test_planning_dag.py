import networkx as nx
import numpy as np
import pytest

from icarena.envs.planning import (
    adjacency,
    alpine_split,
    blocksworld_graph,
    dag_statistics,
    random_dag,
    reachability,
    reachable_pairs,
    sample_paths,
)
from icarena.errors import ConfigError
from icarena.evaluation import path_is_valid


def test_random_dag_structure_and_determinism():
    g = random_dag(30, 0.3, seed=5)
    assert sorted(g.nodes) == list(range(30))
    assert all(i < j for i, j in g.edges)
    assert nx.is_directed_acyclic_graph(g)
    assert list(random_dag(30, 0.3, seed=5).edges) == list(g.edges)
    assert list(random_dag(30, 0.3, seed=6).edges) != list(g.edges)
    assert random_dag(10, 0.0, seed=0).number_of_edges() == 0
    assert random_dag(10, 1.0, seed=0).number_of_edges() == 45


@pytest.mark.parametrize("n,p", [(1, 0.1), (0, 0.5), (5.5, 0.1), (10, -0.1), (10, 1.5), (10, "a")])
def test_random_dag_bad_input(n, p):
    with pytest.raises(ConfigError):
        random_dag(n, p, seed=0)


def test_alpine_statistics_n100():
    """ALPINE's graphs: ~500 edges, ~2.9k reachable pairs, longest path 16-22 at n=100."""
    stats = [dag_statistics(random_dag(100, 0.1, seed=s)) for s in range(8)]
    edges = np.mean([s["edges"] for s in stats])
    reach = np.mean([s["reachable_pairs"] for s in stats])
    assert 470 <= edges <= 520  # expectation 495
    assert 2600 <= reach <= 3200
    assert all(12 <= s["longest_path_edges"] <= 25 for s in stats)


def test_reachability_matches_networkx():
    for g in (random_dag(40, 0.08, seed=1), blocksworld_graph(3)):
        R = reachability(g)
        for s in g.nodes:
            assert set(np.flatnonzero(R[s])) == nx.descendants(g, s) - {s}


def test_split_rules():
    g = random_dag(100, 0.1, seed=3)
    R, A = reachability(g), adjacency(g)
    train, test = alpine_split(g, seed=4)
    T = np.zeros_like(R)
    T[train[:, 0], train[:, 1]] = True
    S = np.zeros_like(R)
    S[test[:, 0], test[:, 1]] = True
    assert not (T & S).any() and ((T | S) == R).all()
    assert (T[A]).all()  # every edge pair is in train
    for t in range(100):  # the first reachable source of every target is in train
        srcs = np.flatnonzero(R[:, t])
        if srcs.size:
            assert T[srcs[0], t]
    frac = T.sum() / R.sum()
    assert 0.54 < frac < 0.66  # ALPINE's graphs: ~58-60%
    t2, _ = alpine_split(g, seed=4)
    assert np.array_equal(t2, train)


def test_split_exact_fraction_and_no_forcing():
    g = blocksworld_graph(4)
    train, test = alpine_split(g, train_fraction=0.8, exact=True, first_source_in_train=False,
                               seed=0)
    assert len(train) + len(test) == 73 * 72 == len(reachable_pairs(g))
    assert len(train) == round(0.8 * 5256)
    train0, _ = alpine_split(g, train_fraction=0.0, edges_in_train=False,
                             first_source_in_train=False, seed=0)
    assert len(train0) == 0
    with pytest.raises(ConfigError):
        alpine_split(g, train_fraction=1.5)


def test_sampled_paths_are_valid_and_follow_alg1():
    g = random_dag(60, 0.1, seed=2)
    pairs = np.repeat(reachable_pairs(g), 3, axis=0)
    paths, lengths = sample_paths(g, pairs, seed=0)
    for (s, t), row, m in zip(pairs, paths, lengths, strict=True):
        path = row[:m].tolist()
        assert path_is_valid(g, s, t, path)
        assert nx.is_simple_path(g, path) and path[0] == s and path[-1] == t  # independent check
        assert (row[m:] == -1).all()
    p2, l2 = sample_paths(g, pairs, seed=0)
    assert np.array_equal(p2, paths) and np.array_equal(l2, lengths)


def test_walks_are_uniform_over_admissible_neighbours():
    # 0 -> {1, 2, 3}, 1 -> 4, 2 -> 4, 3 is a dead end: from 0 to 4 the walk picks 1 or 2 evenly.
    g = nx.DiGraph([(0, 1), (0, 2), (0, 3), (1, 4), (2, 4)])
    paths, lengths = sample_paths(g, np.tile([[0, 4]], (4000, 1)), seed=1)
    assert (lengths == 3).all()
    share = (paths[:, 1] == 1).mean()
    assert abs(share - 0.5) < 0.04 and not (paths[:, 1] == 3).any()


def test_self_avoiding_walks_on_cyclic_graph():
    g = blocksworld_graph(3)
    pairs = reachable_pairs(g)
    paths, lengths = sample_paths(g, pairs, seed=0)
    for (s, t), row, m in zip(pairs, paths, lengths, strict=True):
        path = row[:m].tolist()
        assert path_is_valid(g, s, t, path) and len(set(path)) == len(path)
    with pytest.raises(ConfigError, match="DAG"):
        sample_paths(g, pairs, simple=False)


def test_sample_paths_bad_input():
    g = random_dag(10, 0.3, seed=0)
    R = reachability(g)
    s, t = np.argwhere(~R & ~np.eye(10, dtype=bool))[0]
    with pytest.raises(ConfigError, match="not reachable"):
        sample_paths(g, [[s, t]])
    with pytest.raises(ConfigError, match="unknown nodes"):
        sample_paths(g, [[0, 99]])
    with pytest.raises(ConfigError, match="shape"):
        sample_paths(g, [0, 1])
    with pytest.raises(ConfigError, match="0..n-1"):
        reachability(nx.DiGraph([("a", "b")]))

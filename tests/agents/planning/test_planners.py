import networkx as nx
import numpy as np
import pytest

from icarena.agents.planning import BFSPlanner, RandomWalkPlanner
from icarena.envs.planning import PathFindingEnv, random_dag, reachable_pairs
from icarena.errors import ConfigError
from icarena.evaluation.planning import score_completions


def test_bfs_shortest_and_valid():
    g = random_dag(60, 0.1, seed=0)
    planner = BFSPlanner(g)
    pairs = reachable_pairs(g)
    paths, lengths = planner.plan_batch(pairs)
    for (s, t), row, m in zip(pairs[:300], paths, lengths, strict=False):
        assert m - 1 == nx.shortest_path_length(g, s, t)
        assert nx.is_path(g, row[:m].tolist())
    scores = score_completions(g, pairs, planner.complete(pairs))
    assert scores.path_valid.all()
    assert planner.plan(59, 0) is None


def test_random_walk_baselines():
    g = random_dag(60, 0.1, seed=0)
    pairs = reachable_pairs(g)
    naive = RandomWalkPlanner(g, seed=0)
    acc = score_completions(g, pairs, naive.complete(pairs)).path_valid.mean()
    # independent estimate of the naive walk's success by simulation with networkx
    rng = np.random.default_rng(1)
    hits = []
    for s, t in pairs[rng.integers(len(pairs), size=400)]:
        cur = s
        while cur != t and list(g.successors(cur)):
            cur = rng.choice(list(g.successors(cur)))
        hits.append(cur == t)
    assert 0 < acc < 1 and abs(acc - np.mean(hits)) < 0.08
    aware = RandomWalkPlanner(g, reach_aware=True, seed=0)
    assert score_completions(g, pairs, aware.complete(pairs)).path_valid.all()


def test_planners_act_in_env():
    env = PathFindingEnv(n_nodes=30, p=0.15, graph_seed=1)
    for planner in (BFSPlanner(env.graph), RandomWalkPlanner(env.graph, reach_aware=True, seed=0)):
        for seed in range(5):
            obs, _ = env.reset(seed=seed)
            done, ret = False, 0.0
            while not done:
                obs, r, term, trunc, _ = env.step(planner.act(obs))
                ret, done = ret + r, term or trunc
            assert ret == 1.0


def test_planner_bad_pairs():
    with pytest.raises(ConfigError, match="unknown nodes"):
        BFSPlanner(random_dag(5, 0.5, seed=0)).plan_batch(np.array([[0, 7]]))
    with pytest.raises(ConfigError):
        RandomWalkPlanner(random_dag(5, 0.5, seed=0), max_steps=0)

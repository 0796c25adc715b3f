"""The paths library API: train_planner on the user's graph, PathPlanner save/load (Python and
CLI runs), evaluate_planners against independent checks, and the planning fixes."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from icarena.agents import BFSPlanner, RandomWalkPlanner
from icarena.envs.planning import alpine_split, random_dag, reachability
from icarena.envs.planning.dag import distances
from icarena.envs.planning.tokens import decode_path, decode_row
from icarena.errors import CheckpointError, ConfigError
from icarena.evaluation import evaluate_planners, path_is_valid
from icarena.pretraining import ModelSpec, PathPlanner, TrainConfig, load_model, train_planner

TINY_MODEL = ModelSpec(d_model=16, n_layers=1, n_heads=1)
TINY_TRAIN = TrainConfig(steps=12, batch_size=8, warmup_steps=2, progress=False, threads=1)


@pytest.fixture(scope="module")
def graph():
    return random_dag(12, 0.3, seed=3)


@pytest.fixture(scope="module")
def planner(graph):
    return train_planner(graph, model=TINY_MODEL, train=TINY_TRAIN, paths_per_pair=2, seed=1)


def all_pairs(n):
    return np.array([(s, t) for s in range(n) for t in range(n) if s != t])


def test_train_planner_in_memory_writes_nothing(graph, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = train_planner(graph, model=TINY_MODEL, train=TINY_TRAIN, paths_per_pair=2)
    assert list(tmp_path.iterdir()) == []
    assert p.result.out_dir is None and len(p.result.losses) == TINY_TRAIN.steps
    assert p.config["model"]["input_dim"] == 14 and p.config["graph"]["n"] == 12
    path = p.plan(0, 11)
    assert path is None or all(0 <= v < 12 for v in path)


def test_same_seed_same_planner(graph, planner):
    again = train_planner(graph, model=TINY_MODEL, train=TINY_TRAIN, paths_per_pair=2, seed=1)
    a, b = planner.model.state_dict(), again.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_save_and_load_give_identical_predictions(graph, planner, tmp_path):
    planner.save(tmp_path / "run")
    loaded = PathPlanner.load(tmp_path / "run")
    pairs = all_pairs(12)
    assert np.array_equal(loaded.complete(pairs, seed=5), planner.complete(pairs, seed=5))
    assert np.array_equal(loaded.complete(pairs, greedy=True), planner.complete(pairs, greedy=True))
    assert sorted(loaded.graph.edges) == sorted(graph.edges)
    model, config = load_model(tmp_path / "run")  # no extra arguments: the model config is there
    assert model.cfg == planner.model.cfg
    with pytest.raises(CheckpointError, match="pass overwrite to replace"):
        planner.save(tmp_path / "run")
    planner.save(tmp_path / "run", overwrite=True)


def test_a_cli_run_loads_as_a_planner(tmp_path):
    from icarena.pretraining.data import alpine as alpine_data
    from icarena.pretraining.path_lm import PretrainConfig, pretrain

    data = tmp_path / "data"
    alpine_data.generate(alpine_data.Config(out_dir=str(data), nodes=10, p=0.3, paths_per_pair=2))
    run = tmp_path / "run"
    pretrain(PretrainConfig(out_dir=str(run), data=str(data), model=TINY_MODEL,
                            train=TINY_TRAIN.replace(ckpt_every=6)))
    planner = PathPlanner.load(run)
    pairs = all_pairs(10)
    first = planner.complete(pairs, seed=2)
    assert np.array_equal(PathPlanner.load(run).complete(pairs, seed=2), first)
    # a run that records no graph (an older one) takes it from its recorded dataset
    cfg = json.loads((run / "config.json").read_text())
    graph_edges = sorted(map(tuple, cfg.pop("graph")["edges"]))
    (run / "config.json").write_text(json.dumps(cfg))
    old = PathPlanner.load(run)
    assert sorted(old.graph.edges) == graph_edges
    assert np.array_equal(old.complete(pairs, seed=2), first)


def test_evaluate_planners_agrees_with_path_is_valid(graph, planner):
    pairs = all_pairs(12)
    bfs = BFSPlanner(graph)
    res = evaluate_planners(graph, pairs, {
        "model": planner, "BFS": bfs, "walk": RandomWalkPlanner(graph, seed=0),
        "callable": lambda s, t: bfs.plan(s, t), "nothing": lambda s, t: None,
    }, samples_per_pair=2, seed=4)
    reach = reachability(graph)[res.pairs[:, 0], res.pairs[:, 1]]
    assert np.array_equal(res.scores["BFS"].path_valid, reach)  # BFS: valid iff reachable
    assert np.array_equal(res.scores["callable"].path_valid, reach)
    assert not res.scores["nothing"].path_valid.any()
    for name in ("model", "walk"):  # every row, re-checked one by one by the scalar rule
        rows = res.rows[name]
        expect = [path_is_valid(graph, s, t, decode_path(r, 12))
                  for (s, t), r in zip(res.pairs.tolist(), rows, strict=True)]
        assert res.scores[name].path_valid.tolist() == expect
        assert res.summary[name]["path_valid"] == pytest.approx(np.mean(expect))
    D = distances(graph)
    curve = res.accuracy_by_distance()["walk"]
    for key, acc in curve.items():
        d = D[res.pairs[:, 0], res.pairs[:, 1]]
        sel = ~np.isfinite(d) if key == "unreachable" else d == int(key)
        assert acc == pytest.approx(res.scores["walk"].path_valid[sel].mean())
    assert "| BFS |" in res.table()


def test_evaluate_planners_rejects_bad_input_naming_the_argument(graph):
    with pytest.raises(ConfigError, match="planner 'x' is a int: pass a PathPlanner"):
        evaluate_planners(graph, [[0, 1]], {"x": 3})
    with pytest.raises(ConfigError, match="planners must be a non-empty dict"):
        evaluate_planners(graph, [[0, 1]], {})
    with pytest.raises(ConfigError, match="pairs"):
        evaluate_planners(graph, [[0, 99]], {"BFS": BFSPlanner(graph)})
    with pytest.raises(ConfigError, match="planner 'bad' returned"):
        evaluate_planners(graph, [[0, 1]], {"bad": lambda s, t: [0, "x"]})


def test_train_planner_rejects_bad_graphs_and_pairs():
    g = nx.DiGraph([("a", "b")])
    with pytest.raises(ConfigError, match="0..n-1"):
        train_planner(g, train=TINY_TRAIN)
    dag = random_dag(8, 0.3, seed=0)
    unreachable = np.argwhere(~reachability(dag) & ~np.eye(8, dtype=bool))[:1]
    with pytest.raises(ConfigError, match="pairs hold unreachable"):
        train_planner(dag, pairs=unreachable, train=TINY_TRAIN)


def test_train_planner_on_a_graph_with_cycles():
    g = nx.gnp_random_graph(10, 0.3, seed=2, directed=True)
    assert not nx.is_directed_acyclic_graph(g)
    p = train_planner(g, model=TINY_MODEL, train=TINY_TRAIN, paths_per_pair=1)
    assert p.complete(all_pairs(10)[:5]).shape == (5, p.max_len)


def test_planning_fixes():
    g = random_dag(15, 0.2, seed=0)
    a, b = alpine_split(g), alpine_split(g)  # deterministic without a seed
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    unreachable = next((s, t) for s in range(15) for t in range(s))  # edges go up: t < s
    assert BFSPlanner(g).plan(*unreachable) is None
    assert path_is_valid(g, *unreachable, None) is False
    row = [2 + 3, 2 + 7, 2 + 3, 2 + 5, 2 + 7, 1, 0]
    assert decode_path(row, 15) == [3, 5, 7]
    assert decode_row(row, 15)[0] == [3, 7, 3, 5, 7]
    assert decode_path([5, 9, 5, 0, 1], 15) is None

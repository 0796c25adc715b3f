import itertools

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icarena  # noqa: F401
from icarena.agents.planning import BFSPlanner
from icarena.envs.planning import (
    BlocksworldEnv,
    InvalidActionError,
    apply_action,
    blocksworld_graph,
    make_state,
    parse_pddl_problem,
    parse_plan,
    path_to_plan,
    to_pddl,
    validate_plan,
)
from icarena.envs.planning.blocksworld import TABLE, state_facts
from icarena.envs.planning.dag import distances
from icarena.errors import ConfigError


def test_state_and_edge_counts():
    assert [blocksworld_graph(k).number_of_nodes() for k in range(1, 6)] == [1, 3, 13, 73, 501]
    g = blocksworld_graph(4)
    assert g.number_of_edges() == 240
    assert blocksworld_graph(4, "4ops").number_of_nodes() == 125
    deg = np.bincount([d for _, d in g.out_degree()])
    assert {k: int(v) for k, v in enumerate(deg) if v} == {1: 24, 3: 24, 4: 12, 7: 12, 12: 1}
    # towers first: nodes 0..23 are the single-tower states
    assert all(len(g.nodes[i]["state"].towers) == 1 for i in range(24))
    D = distances(g)
    assert np.bincount(D[~np.eye(73, dtype=bool)].astype(int)).tolist() == [
        0, 240, 636, 1332, 1584, 1104, 360]


def _position(state):
    """block -> ('table' | block below) for a hand-empty state."""
    out = {}
    for t in state.towers:
        out[t[0]] = "table"
        for below, above in itertools.pairwise(t):
            out[above] = below
    return out


def test_every_move_edge_is_one_legal_move():
    g = blocksworld_graph(4)
    for u, v, data in g.edges(data=True):
        a, b = g.nodes[u]["state"], g.nodes[v]["state"]
        pa, pb = _position(a), _position(b)
        moved = [x for x in range(4) if pa[x] != pb[x]]
        assert len(moved) == 1
        x = moved[0]
        tops = {t[-1] for t in a.towers}
        assert x in tops  # x was clear
        assert pb[x] == "table" or pb[x] in tops - {x}  # onto a clear block or the table
        assert g.has_edge(v, u)  # moves are reversible
        assert data["action"][1] == x


def test_every_4ops_edge_preserves_blocks_and_alternates_hand():
    g = blocksworld_graph(3, "4ops")
    for u, v, data in g.edges(data=True):
        a, b = g.nodes[u]["state"], g.nodes[v]["state"]
        assert (a.holding < 0) != (b.holding < 0)
        assert data["action"][0] in ("pick-up", "put-down", "stack", "unstack")
        assert apply_action(a, data["action"]) == b


def test_bfs_plan_replays_and_pddl_roundtrip():
    g = blocksworld_graph(4, "4ops")
    planner = BFSPlanner(g)
    rng = np.random.default_rng(0)
    empty = [i for i in g.nodes if g.nodes[i]["state"].holding < 0]
    for s, t in rng.choice(empty, size=(15, 2)):
        if s == t:
            continue
        path = planner.plan(int(s), int(t))
        init, goal = g.nodes[int(s)]["state"], g.nodes[int(t)]["state"]
        plan = path_to_plan(g, path)
        assert len(plan) == len(path) - 1
        res = validate_plan(init, goal, plan)
        assert res.valid and res.final_state == goal, res.reason
        domain, problem = to_pddl(init, goal, name=f"p{s}-{t}")
        assert "(:action unstack" in domain and "blocksworld-4ops" in domain
        back = parse_pddl_problem(problem)
        assert back.initial == init and back.goal_state() == goal and back.n_blocks == 4
        assert validate_plan(back.initial, back.goal, "\n".join(plan)).valid


def test_move_paths_expand_to_valid_pddl_plans():
    g = blocksworld_graph(4)
    path = nx.shortest_path(g, 0, 72)
    plan = path_to_plan(g, path)
    assert len(plan) == 2 * (len(path) - 1)
    assert validate_plan(g.nodes[0]["state"], g.nodes[72]["state"], plan).valid


def test_validator_reports_failing_step():
    init = make_state([[0, 1], [2]])  # b on a, c on table
    res = validate_plan(init, {("on", "c", "b")}, ["(pick-up c)", "(stack c a)"])
    assert not res.valid and res.failed_step == 1 and "(clear a)" in res.reason
    res = validate_plan(init, {("on", "c", "b")}, ["(pick-up c)", "(put-down c)"])
    assert res.failed_step == 2 and "(on c b)" in res.reason
    res = validate_plan(init, {("on", "c", "b")}, "(pick-up c)\n(stack c b) ; partial goal")
    assert res.valid
    res = validate_plan(init, init, [("move", 1, TABLE), ("move", 1, 0)])
    assert res.valid


def test_pddl_parse_errors():
    with pytest.raises(ConfigError, match="unclosed"):
        parse_pddl_problem("(define (problem x)")
    with pytest.raises(ConfigError, match="domain"):
        parse_pddl_problem("(define (problem x) (:domain other) (:objects a) (:init) (:goal))")
    _, text = to_pddl(make_state([[0], [1]]), {("on", "a", "b")})
    with pytest.raises(ConfigError, match="consistent"):
        parse_pddl_problem(text.replace("(clear a)", ""))
    with pytest.raises(ConfigError, match="malformed plan step"):
        parse_plan("(fly a)")


@pytest.mark.filterwarnings("ignore:.*alternative render modes")
@pytest.mark.parametrize("ops", ["move", "4ops"])
def test_env_check_and_solve(ops):
    env = gym.make("icarena/Blocksworld-v0", n_blocks=3, ops=ops, render_mode="ansi")
    check_env(env.unwrapped)
    raw = env.unwrapped
    g = blocksworld_graph(3, ops)
    obs, info = env.reset(seed=1)
    path = BFSPlanner(g).plan(int(obs["node"]), int(obs["goal_node"]))
    total = 0.0
    for u, v in itertools.pairwise(path):
        obs, r, term, trunc, info = env.step(raw.encode_action(g.edges[u, v]["action"]))
        total += r
    assert term and total == 1.0 and obs["node"] == obs["goal_node"]
    assert "hand" in env.render()
    assert state_facts(raw.state) == state_facts(raw.goal)


def test_env_invalid_actions():
    env = BlocksworldEnv(3, "4ops", initial=[[0, 1], [2]], goal=[[0], [1], [2]])
    obs, info = env.reset(seed=0)
    assert obs["on"].tolist() == [3, 0, 3]
    _, r, term, _, info = env.step(env.encode_action(("pick-up", 0)))
    assert r == -1.0 and not term and "(clear a)" in info["invalid"]
    strict = BlocksworldEnv(3, "4ops", initial=[[0, 1], [2]], invalid_action="raise")
    strict.reset(seed=0)
    with pytest.raises(InvalidActionError, match="clear a"):
        strict.step(strict.encode_action(("pick-up", 0)))
    for a in range(env.action_space.n):
        assert env.encode_action(env.decode_action(a)) == a
    with pytest.raises(ConfigError):
        BlocksworldEnv(0)
    with pytest.raises(ConfigError):
        BlocksworldEnv(3, ops="fly")
    with pytest.raises(ConfigError):
        BlocksworldEnv(3, initial=[[0, 1]])
    with pytest.raises(ConfigError):
        env.step(env.action_space.n)

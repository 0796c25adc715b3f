"""`icarena export minari`: minari.load_dataset opens each export and its episodes equal the
source trajectories (skipped when the optional extra is absent)."""

from __future__ import annotations

import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="optional extra icarena[minari] not installed")

from icarena.agents.planning import BFSPlanner  # noqa: E402
from icarena.envs.planning.dag import graph_from_edges  # noqa: E402
from icarena.envs.planning.pathfinding import PathFindingEnv  # noqa: E402
from icarena.errors import IcarenaError  # noqa: E402
from icarena.exports.minari_export import Config, export  # noqa: E402
from icarena.pretraining.data import alpine, games, regression  # noqa: E402
from icarena.pretraining.data.store import load_dataset  # noqa: E402


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


@pytest.mark.parametrize("player", ["max", "min"])
def test_games_export_is_one_players_view_of_the_recorded_runs(tmp_path, root, player):
    data = tmp_path / "g"
    games.generate(games.Config(out_dir=str(data), setting="centralized", n_games=3,
                                episodes=4, seed=2))
    ds = load_dataset(data)
    export(Config(data=str(data), player=player))
    m = minari.load_dataset(f"icarena/games-{player}-v0")
    assert m.total_episodes == 3
    H, S = 2, 4
    for i, ep in enumerate(m.iterate_episodes()):
        own = np.asarray(ds[f"act/{player}"][i])
        r = np.asarray(ds["rew/max"][i], dtype=np.float64)
        np.testing.assert_array_equal(ep.actions, own)
        np.testing.assert_allclose(ep.rewards, r if player == "max" else 1 - r)
        assert ep.terminations[-1] and not ep.terminations[:-1].any() and not ep.truncations.any()
        obs = ep.observations                                  # (T + 1, H + S + n + 2)
        np.testing.assert_array_equal(obs[:-1, :H].argmax(1), ds["traj/h"][i])
        np.testing.assert_array_equal(obs[:-1, H:H + S].argmax(1), ds["traj/s"][i])
        np.testing.assert_array_equal(obs[1:, H + S:-1].argmax(1), own)   # previous own action
        np.testing.assert_allclose(obs[1:, -1], ep.rewards, rtol=1e-6)   # previous own reward


def test_path_exports_replay_in_the_env(tmp_path, root):
    data = tmp_path / "a"
    alpine.generate(alpine.Config(out_dir=str(data), nodes=20, p=0.2, paths_per_pair=1, seed=3))
    ds = load_dataset(data)
    graph = graph_from_edges(int(ds.config["n"]), np.asarray(ds["graph/edges"]))
    pairs = np.asarray(ds["test/pairs"])
    export(Config(data=str(data), planner="bfs"))
    export(Config(data=str(data), planner="random_walk", seed=1,
                  dataset_id="icarena/walks-v2"))
    bfs = BFSPlanner(graph)
    for ep, (s, t) in zip(minari.load_dataset("icarena/alpine-bfs-v0").iterate_episodes(),
                          pairs, strict=True):
        assert ep.actions.tolist() == bfs.plan(int(s), int(t))[1:]      # a shortest path
        assert ep.rewards[-1] == 1.0 and ep.terminations[-1]
    walks = minari.load_dataset("icarena/walks-v2")
    assert walks.total_episodes == len(pairs)
    env = PathFindingEnv(graph)
    for ep, (s, t) in zip(walks.iterate_episodes(), pairs, strict=True):
        o, _ = env.reset(options={"source": int(s), "target": int(t)})
        assert ep.observations["current"][0] == s and ep.observations["target"][0] == t
        for j, a in enumerate(ep.actions):
            o, r, term, trunc, _ = env.step(int(a))
            assert (r, term, trunc) == (ep.rewards[j], ep.terminations[j], ep.truncations[j])
            assert o["current"] == ep.observations["current"][j + 1]
        np.testing.assert_array_equal(ep.observations["adjacency"][-1], o["adjacency"])


def test_regression_export_is_least_squares_answering_each_prompt(tmp_path, root):
    data = tmp_path / "r"
    regression.generate(regression.Config(out_dir=str(data), d=3, k=6, n_prompts=5, seed=4))
    ds = load_dataset(data)
    x, y = np.asarray(ds["x"]), np.asarray(ds["y"])
    export(Config(data=str(data)))
    m = minari.load_dataset("icarena/regression-leastsquares-v0")
    for i, ep in enumerate(m.iterate_episodes()):
        pred = [0.0] + [float(x[i, j] @ np.linalg.lstsq(x[i, :j], y[i, :j], rcond=None)[0])
                        for j in range(1, 6)]
        np.testing.assert_allclose(ep.actions[:, 0], pred, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ep.observations["x"][:6], x[i], rtol=1e-6)
        np.testing.assert_allclose(ep.observations["prev_y"][1:, 0], y[i], rtol=1e-6)
        np.testing.assert_allclose(ep.rewards, -(ep.actions[:, 0] - y[i]) ** 2, rtol=1e-5)


def test_ids_targets_and_overwrite(tmp_path, root):
    data = tmp_path / "r"
    regression.generate(regression.Config(out_dir=str(data), d=2, k=3, n_prompts=2))
    with pytest.raises(IcarenaError, match="namespace/name-vN"):
        export(Config(data=str(data), dataset_id="no-namespace"))
    export(Config(data=str(data), dataset_id="mine/reg-v1"))
    with pytest.raises(IcarenaError, match="--overwrite"):
        export(Config(data=str(data), dataset_id="mine/reg-v1"))
    export(Config(data=str(data), dataset_id="mine/reg-v1", overwrite=True))
    assert minari.load_dataset("mine/reg-v1").total_episodes == 2
    (root / "mine" / "own-v0").mkdir(parents=True)
    (root / "mine" / "own-v0" / "notes.txt").write_text("mine")
    with pytest.raises(IcarenaError, match="not a Minari dataset"):
        export(Config(data=str(data), dataset_id="mine/own-v0", overwrite=True))
    assert (root / "mine" / "own-v0" / "notes.txt").read_text() == "mine"
    assert not [p for p in root.iterdir() if p.name.startswith(".icarena")]  # no leftovers

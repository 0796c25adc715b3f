"""The games-baselines experiment at its quick config."""

import json

from icarena.experiments import EXPERIMENTS, experiment_module


def test_games_baselines_quick(tmp_path):
    mod = experiment_module("games-baselines")
    assert "games-baselines" in EXPERIMENTS
    out = mod.run(mod.quick_config(str(tmp_path / "run")))
    run = tmp_path / "run"
    for name in ("config.json", "metrics.json", "report.md", "matrix_games.png",
                 "markov_games.png"):
        assert (run / name).is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    curves = metrics["curves"]["matrix"]
    assert len(curves["EXP3 (avg)"]["mean"]) == 300
    assert len(metrics["curves"]["markov"]["VI-ULCB (last)"]["mean"]) == 30
    uni = curves["uniform"]["mean"][0]
    assert curves["EXP3 (avg)"]["mean"][-1] < uni  # learning happened
    policies = {r["policy"] for r in out["rows"]}
    assert {"EXP3 (avg)", "V-learning (certified)", "VI-ULCB (avg)", "uniform"} <= policies
    assert "K=300" in out["rows"][0]

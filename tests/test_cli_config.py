"""``--config RUN/config.json`` reruns a saved run's settings (through the installed command)."""

from __future__ import annotations

import json

from cli_helpers import TINY, ok, refused


def test_a_saved_config_reruns_with_the_same_settings(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    ok("run", "regression-linear", *TINY["run regression-linear"], "--out-dir", str(first))
    ok("run", "regression-linear", "--config", str(first / "config.json"), "--out-dir",
       str(second))
    a = json.loads((first / "config.json").read_text())
    b = json.loads((second / "config.json").read_text())
    assert {**a["experiment"], "out_dir": None} == {**b["experiment"], "out_dir": None}
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    # the flags after --config override it; a finished run resumes with more steps
    ok("run", "regression-linear", "--config", str(first), "--resume", "--train.steps", "30")
    assert json.loads((first / "config.json").read_text())["train"]["steps"] == 30


def test_a_config_of_another_command_is_refused(tmp_path):
    run, data = tmp_path / "icgp", tmp_path / "games"
    ok("generate", "games", *TINY["generate games"], "--out-dir", str(data))
    ok("pretrain", "icgp", "--data", str(data), *TINY["pretrain icgp"], "--out-dir", str(run))
    assert "does not hold settings" in refused("run", "regression-linear", "--config",
                                               str(run / "config.json"))
    assert "cannot read --config" in refused("pretrain", "icgp", "--config",
                                             str(tmp_path / "missing.json"))
    ok("pretrain", "icgp", "--config", str(run / "config.json"), "--out-dir",
       str(tmp_path / "again"))


def test_evaluate_regression_reproduces_the_experiments_curves(tmp_path):
    """The evaluate stage on a regression-linear run, on the same held-out prompts, gives the
    curves the experiment reported (transformer and least squares)."""
    run = tmp_path / "rl"
    ok("run", "regression-linear", *TINY["run regression-linear"], "--out-dir", str(run))
    ok("evaluate", "regression", "--run-dir", str(run), "--eval.n-prompts", "16",
       "--eval.n-boot", "5")
    mine = json.loads((run / "eval" / "metrics.json").read_text())["curves"]
    theirs = json.loads((run / "metrics.json").read_text())["curves"]
    for name in ("transformer", "least_squares"):
        assert mine[name]["mean"] == theirs[name]["mean"], name
    assert "not found" in refused("evaluate", "regression", "--run-dir",
                                             str(tmp_path / "missing"))

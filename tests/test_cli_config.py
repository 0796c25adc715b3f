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


# Experiments that train nothing have no --train group (documented in their Config).
NO_TRAINING = {"games-baselines"}


def test_every_experiment_help_shows_the_four_config_groups():
    import subprocess
    import sys

    from icarena.experiments import EXPERIMENTS

    code = ("import sys, contextlib, io\nfrom icarena.cli import main\n"
            "for name in sys.argv[1:]:\n"
            "    buf = io.StringIO()\n"
            "    with contextlib.redirect_stdout(buf):\n"
            "        try:\n"
            "            main(['run', name, '--help'])\n"
            "        except SystemExit:\n"
            "            pass\n"
            "    print('=====', name)\n"
            "    print(buf.getvalue())\n")
    out = subprocess.run([sys.executable, "-c", code, *EXPERIMENTS], capture_output=True,
                         text=True, check=True, env={"COLUMNS": "200", **__import__("os").environ}
                         ).stdout
    helps = {part.split("\n", 1)[0].strip(): part for part in out.split("===== ")[1:]}
    assert set(helps) == set(EXPERIMENTS)
    for name, text in helps.items():
        groups = {"data", "model", "eval"} | ({"train"} - ({"train"} if name in NO_TRAINING
                                                           else set()))
        for group in groups:
            assert f"--{group}." in text or f"--{group} KEY VALUE" in text, (name, group)
        for flag in ("--out-dir", "--seed", "--overwrite"):
            assert flag in text, (name, flag)
        if name not in NO_TRAINING:
            assert "--resume" in text, name


def test_search_verb_is_the_search_experiment(tmp_path):
    out = tmp_path / "s"
    ok("search", "--out-dir", str(out), *TINY["run search"])
    saved = json.loads((out / "config.json").read_text())["search"]
    assert saved["train"]["steps"] == int(TINY["run search"][
        TINY["run search"].index("--train.steps") + 1])
    # the saved config reruns through `run search`, into another directory
    ok("run", "search", "--config", str(out / "config.json"), "--out-dir", str(tmp_path / "t"))
    assert (json.loads((tmp_path / "t" / "search.json").read_text())["best"]
            == json.loads((out / "search.json").read_text())["best"])


def test_paper_preset_sets_the_papers_scale_and_flags_beside_it_win():
    from icarena import cli
    from icarena.experiments import EXPERIMENTS, experiment_module

    with_preset = [n for n in EXPERIMENTS if "paper" in getattr(experiment_module(n),
                                                                "PRESETS", {})]
    assert {"alpine", "blocksworld", "regression-linear", "regression-families"} <= set(
        with_preset)
    for name in with_preset:
        module = experiment_module(name)
        paper = module.PRESETS["paper"]()
        assert paper != module.Config(), name  # the preset changes something
        parsed = cli._parse(module.Config, ["--preset", "paper", "--seed", "7"], name,
                            module=module)
        assert parsed == type(paper)(**{**paper.__dict__, "seed": 7}), name
    from icarena.experiments import alpine

    cfg = cli._parse(alpine.Config, ["--preset", "paper", "--train.steps", "5"], "alpine",
                     module=alpine)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.lr) == (5, 1024, 5e-4)


def test_unknown_preset_or_preset_with_config_is_refused(tmp_path):
    assert "unknown --preset 'huge'" in refused("run", "alpine", "--preset", "huge")
    assert "paper" in refused("run", "alpine", "--preset", "huge")
    assert "not both" in refused("run", "alpine", "--preset", "paper", "--config",
                                 str(tmp_path / "config.json"))
    assert "needs a value" in refused("run", "alpine", "--preset")
    assert not any(tmp_path.iterdir())


def test_a_head_count_that_does_not_divide_the_width_is_refused_before_writing(tmp_path):
    out = tmp_path / "rf"
    msg = refused("run", "regression-families", "--family-heads.decision-tree", "3",
                  "--out-dir", str(out))
    assert "family_heads['decision_tree'] = 3 does not divide model.d_model = 64" in msg
    assert "--family-heads.decision-tree" in msg
    assert not out.exists()

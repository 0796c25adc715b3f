"""ICGP experiments (icgp-decentralized / icgp-centralized) and `icarena evaluate icgp`."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from icarena.cli import run_stage
from icarena.evaluation import icgp as ev
from icarena.evaluation.nash import gap_curve, nash_gap
from icarena.experiments import icgp_centralized, icgp_decentralized
from icarena.pretraining import backbones
from icarena.pretraining.game_lm import eval_games

MICRO = ["--data.episodes", "4", "--data.n-values", "1", "2", "--data.trajectories-per-game",
         "1", "--model.d-model", "8", "--model.n-layers", "1", "--model.n-heads", "2",
         "--eval.n-games", "2", "--train.steps", "2", "--train.batch-size", "2",
         "--train.warmup-steps", "1", "--train.ckpt-every", "2", "--train.log-every", "1",
         "--train.stream-workers", "1", "--overwrite"]


CENTRALIZED_MICRO = ["--data.H", "2", "--data.S", "2", "--data.A", "3", "--data.B", "3",
                     "--data.workers", "1", "--data.context-options", "mwu_iters", "10", *MICRO]


@pytest.mark.parametrize("setting", ["decentralized", "centralized"])
@pytest.mark.parametrize("backbone", backbones.available())
def test_every_backbone_runs_the_experiment(tmp_path, backbone, setting):
    out = tmp_path / backbone
    micro = MICRO if setting == "decentralized" else CENTRALIZED_MICRO
    res = run_stage("run", f"icgp-{setting}", ["--out-dir", str(out), "--model.backbone",
                                               backbone, *micro])
    methods = [r["method"] for r in res["rows"]]
    context = "exp3" if setting == "decentralized" else "viulcb"
    assert methods == ["TF N=1", "TF N=2", context, "uniform"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backbone"] == backbone
    stream = "max" if setting == "decentralized" else "joint"
    model = json.loads((out / "N2" / stream / "config.json").read_text())["model"]
    assert model["backbone"] == backbone
    # both experiments read out with the action-symmetric cells read-out (per action / per cell)
    assert model["read_out"] == "cells"
    for f in ("report.md", "gap_last.png", "gap_avg.png", "icgp_eval.json"):
        assert (out / f).is_file()
    assert any((out / "tb_icgp").iterdir())


def test_centralized_experiment_and_reported_numbers_match_an_independent_recomputation(tmp_path):
    out = tmp_path / "cen"
    args = ["--out-dir", str(out), *CENTRALIZED_MICRO]
    res = run_stage("run", "icgp-centralized", args)
    assert [r["method"] for r in res["rows"]] == ["TF N=1", "TF N=2", "viulcb", "uniform"]
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {r["method"]: r for r in metrics["rows"]}
    # typed option flags reach the run: --data.context-options mwu_iters 10
    assert json.loads((out / "N2" / "icgp.json").read_text())["context_cfg"] == {"mwu_iters": 10}
    # recompute the transformer's final averaged gap from its own play, independently
    from icarena.pretraining.game_player import InContextGamePlayer

    games = eval_games(2, 2, 3, 3, 2, metrics["eval_seed"])
    rec = InContextGamePlayer.load(out / "N2").play(games, 4, seed=metrics["seed"])
    mu = rec["pi/joint"][:, ::2].reshape(2, 4, 2, 2, 3, 3)
    mu_bar = mu.mean(1)  # state-wise average over the 4 episodes
    gap = nash_gap(games, mu_bar.sum(-1), mu_bar.sum(-2))
    assert rows["TF N=2"]["gap_avg"] == pytest.approx(float(gap.mean()), rel=1e-6)
    assert rows["TF N=2"]["ratio_avg_to_context"] == pytest.approx(
        rows["TF N=2"]["gap_avg"] / rows["viulcb"]["gap_avg"])
    # the per-episode curve is the gap of the episode-start read-out
    last = gap_curve(games, mu.sum(-1), mu.sum(-2))
    assert rows["TF N=2"]["gap_last"] == pytest.approx(float(last[:, -1].mean()), rel=1e-6)
    assert set(metrics["acceptance"]) >= {"ratios", "largest_N_ratio_ok",
                                          "largest_N_not_worse_than_first"}


def test_evaluate_stage_and_its_errors(tmp_path):
    out = tmp_path / "dec"
    run_stage("run", "icgp-decentralized", ["--out-dir", str(out), *MICRO])
    res = run_stage("evaluate", "icgp", ["--run-dir", f"{out / 'N1'},{out / 'N2'}",
                                         "--out-dir", str(tmp_path / "ev"), "--eval.n-games",
                                         "3", "--eval.episodes", "3"])
    assert [r["method"] for r in res["rows"]] == ["N1", "N2", "exp3", "uniform"]
    summary = json.loads((tmp_path / "ev" / "icgp_eval.json").read_text())
    assert summary["K"] == 3 and len(summary["mean_curves"]["exp3/avg"]) == 3
    # the evaluate stage with the experiment's --eval.* settings (play seed: the run's seed)
    # reproduces the experiment's numbers
    run_stage("evaluate", "icgp", ["--run-dir", str(out / "N2"), "--eval.n-games", "2"])
    mine = json.loads((out / "N2" / "eval" / "metrics.json").read_text())["rows"]
    theirs = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())["rows"]}
    assert mine[0]["method"] == "N2"
    assert mine[0]["gap_avg"] == theirs["TF N=2"]["gap_avg"]
    assert mine[0]["ratio_avg_to_context"] == theirs["TF N=2"]["ratio_avg_to_context"]
    # the experiment chained generate -> pretrain: one games dataset per N inside out_dir, which
    # the run recorded; pretraining that dataset by hand gives the same weights
    from icarena.pretraining.data import load_dataset
    from icarena.pretraining.game_lm import PretrainConfig, pretrain

    ds = load_dataset(out / "data" / "N2", generator="games")
    assert ds.config["n_games"] == 2 and ds.config["episodes"] == 4
    recorded = json.loads((out / "N2" / "config.json").read_text())["dataset"]
    assert recorded["manifest_sha256"] == ds.manifest_sha256
    cfg = icgp_decentralized.Config()
    by_hand = tmp_path / "by-hand"
    pretrain(PretrainConfig(out_dir=str(by_hand), data=str(out / "data" / "N2"),
                            model=dataclasses.replace(cfg.model, d_model=8, n_layers=1,
                                                      n_heads=2),
                            train=dataclasses.replace(cfg.train, steps=2, batch_size=2,
                                                      warmup_steps=1, ckpt_every=2,
                                                      log_every=1, stream_workers=1)))
    for stream in ("max", "min"):
        assert (by_hand / stream / "model.safetensors").read_bytes() == \
            (out / "N2" / stream / "model.safetensors").read_bytes()
    from icarena.errors import CheckpointError, ConfigError

    with pytest.raises(ConfigError, match="run-dir"):
        ev.evaluate(ev.EvalConfig())
    with pytest.raises(CheckpointError, match="icgp run dir"):
        ev.evaluate(ev.EvalConfig(run_dir=str(tmp_path)))
    with pytest.raises(CheckpointError, match="already holds a run"):
        run_stage("run", "icgp-decentralized", ["--out-dir", str(out), *MICRO[:-1]])


def test_paper_preset_fills_only_the_settings_left_at_the_cpu_defaults():
    import tyro

    dec, cen = icgp_decentralized, icgp_centralized
    cpu = dec.apply_preset(dec.Config(), dec.Config(), 3000)
    assert cpu == dec.Config()
    paper = dec.apply_preset(dec.Config(preset="paper"), dec.Config(), 3000)
    assert paper.data.episodes == 3000 and paper.data.n_values == (10, 20)
    assert (paper.train.batch_size, paper.train.lr, paper.train.min_lr) == (32, 5e-4, 5e-5)
    # 100 epochs of the largest N's trajectories: 20 games x 5 trajectories, batch 32
    assert paper.train.steps == math.ceil(100 * 20 * 5 / 32)
    # explicit flags win
    cfg = tyro.cli(dec.Config, args=["--preset", "paper", "--train.steps", "7",
                                     "--data.n-values", "30", "--train.batch-size", "8"])
    got = dec.apply_preset(cfg, dec.Config(), 3000)
    assert (got.train.steps, got.data.n_values, got.train.batch_size) == (7, (30,), 8)
    assert got.data.episodes == 3000 and got.train.lr == 5e-4
    c = cen.apply_preset(cen.Config(preset="paper"), cen.Config(), 300)
    assert c.data.episodes == 300 and c.train.steps == math.ceil(100 * 20 / 32)
    with pytest.raises(Exception, match="preset"):
        dec.apply_preset(dec.Config(preset="gpu"), dec.Config(), 3000)


def test_acceptance_checks_logic():
    summary = {"rows": [{"method": "TF N=10", "gap_avg": 0.3, "ratio_avg_to_context": 1.2},
                        {"method": "TF N=50", "gap_avg": 0.25, "ratio_avg_to_context": 1.0}]}
    acc = icgp_decentralized.acceptance_checks(summary, ["TF N=10", "TF N=50"])
    assert acc["largest_N_ratio_ok"] and not acc["every_N_ratio_ok"]
    assert acc["largest_N_not_worse_than_first"]
    summary["rows"][1]["gap_avg"] = 0.31
    assert not icgp_decentralized.acceptance_checks(
        summary, ["TF N=10", "TF N=50"])["largest_N_not_worse_than_first"]
    assert np.isclose(icgp_decentralized.RATIO_BAR, 1.1)


@pytest.mark.slow
@pytest.mark.parametrize("module", [icgp_decentralized, icgp_centralized])
def test_quick_configs_run(tmp_path, module):
    res = module.run(module.quick_config(str(tmp_path / "q")))
    assert res["rows"] and (tmp_path / "q" / "report.md").is_file()

"""Tests of ``icarena run backbones`` (icarena/experiments/backbones.py)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from icarena.errors import CheckpointError, ConfigError, IcarenaError
from icarena.experiments import EXPERIMENTS, experiment_module
from icarena.experiments import backbones as bb
from icarena.pretraining import backbones as registry


def _tiny(tmp_path, **groups) -> bb.Config:
    """quick_config with ``group={"task.field": value, "field": value}`` changes."""
    cfg = bb.quick_config(str(tmp_path / "run"))
    return _with(cfg, **groups)


def _with(cfg: bb.Config, **groups) -> bb.Config:
    for group, changes in groups.items():
        section = getattr(cfg, group)
        for key, value in changes.items():
            task, _, name = key.rpartition(".")
            if task:
                section = dataclasses.replace(section, **{task: dataclasses.replace(
                    getattr(section, task), **{name: value})})
            else:
                section = dataclasses.replace(section, **{name: value})
        cfg = dataclasses.replace(cfg, **{group: section})
    return cfg


def _cell(tmp_path, cfg: bb.Config, task: str, backbone: str, data=None) -> dict:
    return {"task": task, "backbone": backbone, "options": {},
            "spec": dataclasses.asdict(getattr(cfg, task)), "data": data,
            "out_dir": str(tmp_path / "cells" / task / backbone), "seed": cfg.seed,
            "threads": 1, "device": "cpu", "resume": False, "isolated": False}


# ----------------------------------------------------------------------------- config checks
def test_registered_and_defaults_cover_every_backbone_and_task():
    assert EXPERIMENTS["backbones"][0] == "icarena.experiments.backbones"
    assert experiment_module("backbones") is bb
    names, tasks, extra = bb.resolve(bb.Config())
    assert names == registry.available() and "bixt" in names and "sympformer" in names
    assert tasks == ["regression", "alpine", "icgp"]
    names, _, _ = bb.resolve(_with(bb.Config(), model={"exclude": ("bixt",)}))
    assert "bixt" not in names and len(names) == len(registry.available()) - 1
    _, _, extra = bb.resolve(_with(bb.Config(), model={"options": {"bixt.n_latents": 8}}))
    assert extra["bixt"] == {"n_latents": 8} and extra["gpt"] == {}


def test_each_cell_spec_gathers_its_task_from_the_four_groups():
    cfg = _with(bb.Config(), data={"regression.d": 3}, model={"regression.d_model": 8},
                train={"regression.steps": 7}, eval={"regression.n_eval": 9})
    assert cfg.regression == bb.RegressionSpec(d=3, k=11, d_model=8, n_layers=3, n_heads=2,
                                               steps=7, batch_size=32, lr=1e-3,
                                               warmup_steps=50, n_eval=9, eval_seed=1234)
    assert cfg.alpine == bb.Config().alpine  # the other tasks keep their settings


@pytest.mark.parametrize("kw, needle", [
    ({"model": {"backbones": ("gpt", "transformerxl")}}, "transformerxl"),
    ({"model": {"exclude": ("nope",)}}, "nope"),
    ({"model": {"backbones": ("gpt",), "exclude": ("gpt",)}}, "no backbone left"),
    ({"data": {"tasks": ("chess",)}}, "chess"),
    ({"model": {"options": {"n_latents": 8}}}, "BACKBONE.OPTION"),
    ({"model": {"options": {"gpt.d_model": 8}}}, "shared budget"),
    ({"model": {"options": {"bert.x": 1}}}, "bert"),
    ({"data": {"regression.k": 10}}, "2d"),
    ({"train": {"alpine.steps": 0}}, "train.alpine.steps"),
    ({"eval": {"smoothing": 1.0}}, "smoothing"),
])
def test_bad_config_raises_config_error_naming_the_problem(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        bb.resolve(_with(bb.Config(), **kw))


def test_ema_matches_closed_form_weights():
    rng = np.random.default_rng(0)
    v = rng.normal(size=50)
    a = 0.9
    got = bb.ema(v, a)
    for t in (0, 1, 17, 49):
        w = (1 - a) * a ** np.arange(t, -1, -1)  # weights of v_0..v_t
        assert got[t] == pytest.approx(float(w @ v[: t + 1]) / float(w.sum()), rel=1e-12)
    np.testing.assert_allclose(bb.ema(np.full(10, 3.0), 0.95), 3.0)
    np.testing.assert_array_equal(bb.ema(v, 0.0), v)


# ----------------------------------------------------------------------------------- cells
def test_regression_cell_metric_matches_independent_recomputation(tmp_path):
    from icarena.envs.regression import make_family, sample_prompts
    from icarena.pretraining.data.regression import _EVAL_STREAM
    from icarena.pretraining.model import load_model

    cfg = _tiny(tmp_path)
    s = cfg.regression
    res = bb.run_cell(_cell(tmp_path, cfg, "regression", "gpt"))
    assert len(res["losses"]) == s.steps and res["tokens_per_s"] > 0
    model, _ = load_model(tmp_path / "cells" / "regression" / "gpt")
    assert res["params"] == sum(p.numel() for p in model.parameters())
    # prompts re-drawn from the same documented stream; prediction read at x-token positions
    p = sample_prompts(make_family("linear", s.d), np.random.default_rng(
        [s.eval_seed, _EVAL_STREAM]), s.n_eval, s.k)
    tokens = np.zeros((s.n_eval, 2 * s.k, s.d), dtype=np.float32)
    tokens[:, 0::2] = p.x
    tokens[:, 1::2, 0] = p.y
    with torch.no_grad():
        pred = model(torch.from_numpy(tokens))[:, 0::2, 0].double().numpy()
    want = float(((pred[:, 2 * s.d] - p.y[:, 2 * s.d]) ** 2).mean() / s.d)
    assert res["metric"] == pytest.approx(want, rel=1e-5)
    assert np.isnan(res["peak_mem_mb"])  # not isolated: memory is not attributed


def test_supernet_cell_is_single_path_trained_and_scored_at_max(tmp_path):
    from icarena.pretraining.model import load_model

    cfg = _tiny(tmp_path, train={"regression.steps": 12},
                model={"regression.n_layers": 3})
    sup = bb.run_cell(_cell(tmp_path, cfg, "regression", "supernet"))
    gpt = bb.run_cell(_cell(tmp_path, cfg, "regression", "gpt"))
    # trained on random sub-networks: the losses differ from the max network's (gpt) run
    assert not np.allclose(sup["losses"], gpt["losses"])
    model, _ = load_model(tmp_path / "cells" / "regression" / "supernet")  # loads at max
    assert model.backbone.active == model.backbone.max_config()
    from icarena.envs.regression import make_family
    from icarena.pretraining.data.regression import RegressionTask

    task = RegressionTask(make_family("linear", 2), 5, n_eval=32)
    assert sup["metric"] == pytest.approx(task.evaluate(model)["err_k4"], rel=1e-5)


def test_alpine_cell_path_validity_matches_rescoring_with_path_is_valid(tmp_path):
    from icarena.envs.planning.tokens import decode_row
    from icarena.evaluation.path_eval import PathEval, draw_prompts
    from icarena.evaluation.planning import load_path_dataset, path_is_valid
    from icarena.pretraining.model import load_model
    from icarena.pretraining.path_lm import sample_completions

    cfg = _tiny(tmp_path, train={"alpine.steps": 120, "alpine.batch_size": 32,
                                 "alpine.lr": 5e-3},
                model={"alpine.d_model": 32}, eval={"alpine.n_prompts": 30})
    data_dir = bb.prepare_alpine(cfg.alpine, tmp_path / "data", cfg.seed)
    res = bb.run_cell(_cell(tmp_path, cfg, "alpine", "gpt", data=str(data_dir)))
    data = load_path_dataset(data_dir)
    model, _ = load_model(tmp_path / "cells" / "alpine" / "gpt")
    opts = PathEval(n_prompts=cfg.alpine.n_prompts,
                    samples_per_prompt=cfg.alpine.samples_per_prompt)
    pairs = draw_prompts(data, opts, cfg.seed)
    rows = sample_completions(model, pairs + 2, data.block_size - 2, seed=cfg.seed)
    valid = []
    for (s, t), row in zip(pairs, rows, strict=True):
        nodes, err = decode_row(row, data.n)
        path = nodes[2:]  # after the 's t' prompt
        valid.append(err is None and path_is_valid(data.graph, s, t, path))
    assert 0.0 < res["metric"] <= 1.0  # 120 steps learn some valid paths
    assert res["metric"] == pytest.approx(float(np.mean(valid)))


def test_icgp_cell_dir_is_a_playable_run_and_gap_matches_evaluator(tmp_path):
    from icarena.evaluation.icgp import evaluate_players

    cfg = _tiny(tmp_path)
    data = bb.prepare_icgp(cfg.icgp, tmp_path / "data", cfg.seed)
    # reused (not regenerated) when the config matches; refused when it does not
    assert bb.prepare_icgp(cfg.icgp, tmp_path / "data", cfg.seed) == data
    with pytest.raises(CheckpointError, match="other settings"):
        bb.prepare_icgp(dataclasses.replace(cfg.icgp, n_games=3), tmp_path / "data", cfg.seed)
    res = bb.run_cell(_cell(tmp_path, cfg, "icgp", "sympformer", data=str(data)))
    s = cfg.icgp
    ev = evaluate_players({"tf": tmp_path / "cells" / "icgp" / "sympformer"},
                          n_games=s.eval_games, eval_seed=s.eval_seed, episodes=s.episodes,
                          seed=cfg.seed)
    assert res["metric"] == pytest.approx(float(ev["gaps"]["tf"]["avg"][:, -1].mean()))
    assert 0.0 <= res["metric"] <= 2.0  # H = 2, rewards in [0, 1]


# ------------------------------------------------------------------------------ end to end
def test_run_writes_table_plot_and_refuses_to_overwrite(tmp_path):
    cfg = _tiny(tmp_path, model={"backbones": ("gpt", "sympformer", "bixt")},
                data={"tasks": ("regression",)})
    out = bb.run(cfg)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.json", "report.md", "sympformer_vs_gpt.png",
                 "regression_loss_all.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    cells = {c["backbone"]: c for c in metrics["cells"]}
    assert set(cells) == {"gpt", "sympformer", "bixt"}
    # every backbone of a task got the same budget (steps) and the same data stream
    assert all(len(c["losses"]) == cfg.regression.steps for c in cells.values())
    assert (run / "cells" / "regression" / "bixt" / "cell.json").is_file()
    report = (run / "report.md").read_text()
    assert "SympFormer vs GPT" in report and f"{cells['sympformer']['params']}" in report
    assert "least squares (reference)" in report
    table = [r for r in out["rows"] if r["backbone"] in cells]
    assert {r["backbone"] for r in table} == set(cells)
    assert all(r["value"] == round(cells[r["backbone"]]["metric"], 4) for r in table)
    with pytest.raises(CheckpointError, match="overwrite"):
        bb.run(dataclasses.replace(cfg, overwrite=False))


@pytest.mark.slow  # two fresh Python processes (torch import): 10-50 s on a busy 2-core box
def test_isolated_cell_equals_in_process_and_reports_memory(tmp_path):
    cfg = _tiny(tmp_path)
    cell = _cell(tmp_path, cfg, "regression", "gpt")
    here = bb.run_cell(cell)
    there = bb._run_isolated({**cell, "isolated": True,  # a fresh run dir: runs are never reused
                              "out_dir": str(tmp_path / "isolated")})
    assert there["metric"] == pytest.approx(here["metric"], rel=1e-6)  # same seed, same bytes
    assert there["losses"] == pytest.approx(here["losses"], rel=1e-6)
    assert there["peak_mem_mb"] > 50 and 0 <= there["peak_growth_mb"] <= there["peak_mem_mb"]
    with pytest.raises(IcarenaError, match="failed in its subprocess"):
        bb._run_isolated({**cell, "task": "no-such-task"})

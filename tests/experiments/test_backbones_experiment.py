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
    _, _, options = bb.resolve(_with(cfg, model={"backbones": (backbone,)}))
    return {"task": task, "backbone": backbone, "options": options[backbone],
            "spec": dataclasses.asdict(getattr(cfg, task)), "data": data,
            "lr": bb.learning_rate(cfg, task, backbone),
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
    _, _, extra = bb.resolve(_with(bb.Config(), model={"options": {"bixt.n_latents": 12}}))
    assert extra["bixt"] == {**bb.DEFAULT_OPTIONS["bixt"], "n_latents": 12}
    assert extra["bixt"]["mode"] == "latent_scan" and extra["gpt"] == {}
    # every backbone of every task has a swept learning rate; an explicit rate wins for all
    cfg = bb.Config()
    assert all(bb.learning_rate(cfg, t, b) == bb.TUNED_LR[t][b] and bb.TUNED_LR[t][b] in
               bb.LR_GRID for t in bb.TASKS for b in registry.available())
    cfg = _with(cfg, train={"alpine.lr": 5e-4})
    assert {bb.learning_rate(cfg, "alpine", b) for b in registry.available()} == {5e-4}
    assert bb.Config(seed=4, n_seeds=3).seeds == [4, 5, 6]


def test_each_cell_spec_gathers_its_task_from_the_four_groups():
    cfg = _with(bb.Config(), data={"regression.d": 3}, model={"regression.d_model": 8},
                train={"regression.steps": 7}, eval={"regression.n_eval": 9})
    d = bb.Config()
    assert cfg.regression == dataclasses.replace(d.regression, d=3, d_model=8, steps=7,
                                                 n_eval=9)
    assert cfg.alpine == bb.Config().alpine  # the other tasks keep their settings


@pytest.mark.parametrize("kw, needle", [
    ({"model": {"backbones": ("gpt", "transformerxl")}}, "transformerxl"),
    ({"model": {"exclude": ("nope",)}}, "nope"),
    ({"model": {"backbones": ("gpt",), "exclude": ("gpt",)}}, "no backbone left"),
    ({"data": {"tasks": ("chess",)}}, "chess"),
    ({"model": {"options": {"n_latents": 8}}}, "BACKBONE.OPTION"),
    ({"model": {"options": {"gpt.d_model": 8}}}, "shared budget"),
    ({"model": {"options": {"bert.x": 1}}}, "bert"),
    ({"data": {"regression.k": 6}}, "2d"),
    ({"train": {"alpine.steps": 0}}, "train.alpine.steps"),
    ({"eval": {"smoothing": 1.0}}, "smoothing"),
    ({"train": {"lr_sweep": (1e-3, -1.0)}}, "lr_sweep"),
    ({"train": {"lr_sweep": (1e-3, 1e-3)}}, "lr_sweep"),
    ({"train": {"regression.lr": -1e-3}}, "train.regression.lr"),
    ({"train": {"workers": 2, "isolate": False}}, "train.isolate"),
    ({"train": {"workers": 0}}, "train.workers"),
    ({"n_seeds": 0}, "n_seeds"),
])
def test_bad_config_raises_config_error_naming_the_problem(kw, needle):
    kw = dict(kw)
    top = {k: kw.pop(k) for k in list(kw) if k == "n_seeds"}
    with pytest.raises(ConfigError, match=needle):
        bb.resolve(dataclasses.replace(_with(bb.Config(), **kw), **top))


# ----------------------------------------------------------------------------- statistics
def test_t_interval_matches_the_textbook_formula():
    v = [0.2, 0.5, 0.35]
    mean, lo, hi = bb.t_interval(v)
    half = 4.302652729911275 * np.std(v, ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert mean == pytest.approx(0.35) and lo == pytest.approx(0.35 - half)
    assert hi == pytest.approx(0.35 + half)
    assert bb.t_interval([0.7]) == (0.7, 0.7, 0.7)


def _fake(task, backbone, seed, metric, **kw):
    return {"task": task, "backbone": backbone, "seed": seed, "metric": metric, "lr": 1e-3,
            "ms_per_step": 1.0, "params": 10, **kw}


def test_summary_pairs_seeds_and_says_who_differs_from_gpt():
    gpt = [0.10, 0.20, 0.30]
    cells = [_fake("regression", "gpt", s, v) for s, v in enumerate(gpt)]
    cells += [_fake("regression", "linear", s, v + 0.5 + 0.01 * s) for s, v in enumerate(gpt)]
    cells += [_fake("regression", "sepnorm", s, v + d) for s, (v, d) in
              enumerate(zip(gpt, (0.05, -0.05, 0.01), strict=True))]
    cells += [_fake("alpine", "gpt", s, 0.9) for s in range(3)]
    cells += [_fake("alpine", "linear", s, 0.95 + 0.01 * s) for s in range(3)]
    rows = {(r["task"], r["backbone"]): r for r in bb.summarize(
        cells, ["regression", "alpine"], ["gpt", "linear", "sepnorm"])}
    lin = rows["regression", "linear"]
    # paired differences 0.50, 0.51, 0.52: a tight interval far from 0
    assert lin["diff_vs_gpt"] == pytest.approx(0.51) and lin["distinguishable"]
    assert bb.verdict(lin) == "worse than GPT" and lin["meets"] == 0
    assert rows["regression", "gpt"]["meets"] == 2  # 0.1, 0.2 <= 0.2; 0.3 is not
    assert bb.verdict(rows["regression", "sepnorm"]) == "not distinguishable"
    assert bb.verdict(rows["alpine", "linear"]) == "better than GPT"  # higher is better
    assert bb.verdict(rows["alpine", "gpt"]) == "-"
    assert ("alpine", "sepnorm") not in rows


def test_icgp_threshold_also_needs_half_the_way_from_uniform_to_the_context_algorithm():
    assert bb.meets("icgp", {"metric": 1.2, "uniform_ratio": 2.0})
    assert not bb.meets("icgp", {"metric": 1.2, "uniform_ratio": 1.3})  # halfway is 1.15
    assert not bb.meets("icgp", {"metric": 1.4, "uniform_ratio": 5.0})
    assert not bb.meets("alpine", {"metric": float("nan")})


def test_sweep_choice_takes_the_best_mean_rate_per_cell():
    cells = [_fake("regression", "gpt", 0, 0.5, lr=1e-3), _fake("regression", "gpt", 0, 0.2,
                                                                 lr=3e-3),
             _fake("regression", "gpt", 0, float("nan"), lr=1e-2),
             _fake("alpine", "gpt", 0, 0.5, lr=1e-3), _fake("alpine", "gpt", 0, 0.7, lr=3e-3),
             _fake("alpine", "gpt", 1, 0.1, lr=3e-3)]
    best = {(c["task"], c["backbone"]): c["lr"] for c in bb.sweep_choice(cells)}
    assert best == {("regression", "gpt"): 3e-3, ("alpine", "gpt"): 1e-3}  # 0.5 > mean 0.4


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
        [s.eval_seed + cfg.seed, _EVAL_STREAM]), s.n_eval, s.k)
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
    cfg = dataclasses.replace(cfg, seed=3)
    data = bb.prepare_icgp(cfg.icgp, tmp_path / "data3", cfg.seed)
    res = bb.run_cell(_cell(tmp_path, cfg, "icgp", "sympformer", data=str(data)))
    s = cfg.icgp
    ev = evaluate_players({"tf": tmp_path / "cells" / "icgp" / "sympformer"},
                          n_games=s.eval_games, eval_seed=s.eval_seed + 3, episodes=s.episodes,
                          seed=cfg.seed)
    gap = {m: float(g["avg"][:, -1].mean()) for m, g in ev["gaps"].items()}
    assert ev["context"] == "exp3" and res["gap"] == pytest.approx(gap["tf"])
    assert res["metric"] == pytest.approx(gap["tf"] / gap["exp3"])
    assert res["uniform_ratio"] == pytest.approx(float(np.mean(ev["uniform"])) / gap["exp3"])
    assert 0.0 <= res["gap"] <= 1.0  # H = 1, rewards in [0, 1]


# ------------------------------------------------------------------------------ end to end
def test_run_writes_table_plot_and_refuses_to_overwrite(tmp_path):
    cfg = _tiny(tmp_path, model={"backbones": ("gpt", "sympformer", "bixt")},
                data={"tasks": ("regression", "alpine")})
    out = bb.run(cfg)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.json", "report.md", "sympformer_vs_gpt.png",
                 "loss_regression.png", "loss_alpine.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    cells = {(c["task"], c["backbone"], c["seed"]): c for c in metrics["cells"]}
    assert set(cells) == {(t, b, s) for t in ("regression", "alpine")
                          for b in ("gpt", "sympformer", "bixt") for s in (0, 1)}
    # every backbone of a task got the same budget; each seed has its own graph
    assert all(len(c["losses"]) == cfg.spec(t).steps for (t, _, _), c in cells.items())
    from icarena.evaluation.planning import load_path_dataset

    g0, g1 = (load_path_dataset(run / "data" / "alpine" / f"seed{s}") for s in (0, 1))
    assert not np.array_equal(g0.train_tokens, g1.train_tokens)
    assert (run / "cells" / "regression" / "bixt" / "seed1" / "cell.json").is_file()
    report = (run / "report.md").read_text()
    assert "SympFormer vs GPT" in report and "least squares (reference)" in report
    assert "random-walk planner" in report and "GPT err@2d <= 0.2 at" in report
    # a summary row is the mean and t-interval of its cells
    for r in out["rows"]:
        vals = [cells[r["task"], r["backbone"], s]["metric"] for s in (0, 1)]
        mean, lo, hi = bb.t_interval(vals)
        assert (r["mean"], r["low"], r["high"]) == (round(mean, 4), round(lo, 4), round(hi, 4))
    assert set(metrics["acceptance"]) == {"gpt_learns_regression", "gpt_learns_alpine"}
    with pytest.raises(CheckpointError, match="overwrite"):
        bb.run(dataclasses.replace(cfg, overwrite=False))
    # --resume keeps every finished cell (nothing is retrained)
    before = {c: (run / "cells" / c[0] / c[1] / f"seed{c[2]}" / "cell.json").stat().st_mtime_ns
              for c in cells}
    again = bb.run(dataclasses.replace(cfg, resume=True))
    assert again["rows"] == out["rows"]
    assert before == {c: (run / "cells" / c[0] / c[1] / f"seed{c[2]}" / "cell.json")
                      .stat().st_mtime_ns for c in cells}


def test_resume_continues_a_two_model_cell_killed_before_its_first_checkpoint(tmp_path):
    cfg = _tiny(tmp_path)
    data = bb.prepare_icgp(cfg.icgp, tmp_path / "data", cfg.seed)
    cell = _cell(tmp_path, cfg, "icgp", "gpt", data=str(data))
    whole = bb.run_cell(cell)
    # a killed cell: the 'max' model finished, 'min' got its run dir but no checkpoint yet
    killed = {**cell, "out_dir": str(tmp_path / "killed")}
    bb.run_cell(killed)
    (tmp_path / "killed" / "min" / "ckpt.pt").unlink()
    (tmp_path / "killed" / "min" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="already holds a run"):
        bb.run_cell(killed)
    resumed = bb.run_cell({**killed, "resume": True})
    assert resumed["metric"] == pytest.approx(whole["metric"], rel=1e-6)
    assert resumed["losses"] == pytest.approx(whole["losses"], rel=1e-6)


def test_lr_sweep_runs_every_rate_and_names_the_best(tmp_path):
    cfg = _tiny(tmp_path, model={"backbones": ("gpt", "linear")},
                data={"tasks": ("regression",)}, train={"lr_sweep": (1e-4, 3e-3)})
    out = bb.run(dataclasses.replace(cfg, n_seeds=1))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    got = {(c["backbone"], c["lr"]): c["metric"] for c in metrics["cells"]}
    assert set(got) == {(b, lr) for b in ("gpt", "linear") for lr in (1e-4, 3e-3)}
    for r in out["rows"]:
        assert r["best lr"] == min((1e-4, 3e-3), key=lambda lr: got[r["backbone"], lr])
    assert "learning-rate sweep" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.slow  # two fresh Python processes (torch import): 10-50 s on a busy 2-core box
def test_isolated_cell_equals_in_process_and_reports_memory(tmp_path):
    cfg = _tiny(tmp_path)
    cell = _cell(tmp_path, cfg, "regression", "gpt")
    here = bb.run_cell(cell)
    icgp = bb.prepare_icgp(cfg.icgp, tmp_path / "data", cfg.seed)
    two = bb._run_isolated({**_cell(tmp_path, cfg, "icgp", "linear", str(icgp)),
                            "isolated": True})
    assert two["params"] > 0 and len(two["losses"]) == cfg.icgp.steps
    there = bb._run_isolated({**cell, "isolated": True,  # a fresh run dir: runs are never reused
                              "out_dir": str(tmp_path / "isolated")})
    assert there["metric"] == pytest.approx(here["metric"], rel=1e-6)  # same seed, same bytes
    assert there["losses"] == pytest.approx(here["losses"], rel=1e-6)
    assert there["peak_mem_mb"] > 50 and 0 <= there["peak_growth_mb"] <= there["peak_mem_mb"]
    with pytest.raises(IcarenaError, match="failed in its subprocess"):
        bb._run_isolated({**cell, "task": "no-such-task"})


@pytest.mark.slow  # 4 cells in fresh processes, 2 at a time
def test_parallel_cells_give_the_same_results_as_one_at_a_time(tmp_path):
    base = _tiny(tmp_path, model={"backbones": ("gpt", "sepnorm")},
                 data={"tasks": ("regression",)}, train={"isolate": True})
    one = bb.run(_with(base, train={"workers": 1}))
    two = bb.run(dataclasses.replace(_with(base, train={"workers": 2}),
                                     out_dir=str(tmp_path / "two")))
    assert one["rows"] == [dict(r, **{"ms/step": r2["ms/step"]}) for r, r2 in
                           zip(two["rows"], one["rows"], strict=True)]

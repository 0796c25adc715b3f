"""S3-style search: legal offspring, elitist evolution, determinism, split hygiene, extraction."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from icarena.errors import CheckpointError, ConfigError
from icarena.pretraining import search as S
from icarena.pretraining.backbones import build
from icarena.pretraining.data.regression import RegressionTask, tokenize
from icarena.pretraining.model import load_model


def _net():
    return build("supernet", d_model=32, n_layers=4, n_heads=4, head_dim=8, max_len=8)


def test_mutation_and_crossover_stay_in_the_space():
    net = _net()
    space = net.config.space()
    rng = np.random.default_rng(0)
    parents = [net.sample_config(rng) for _ in range(20)]
    for _ in range(300):
        a, b = (parents[i] for i in rng.integers(len(parents), size=2))
        m = S.mutate(a, space, rng, 0.4, 0.4, 0.2)
        c = S.crossover(a, b, rng)
        assert net.in_space(m) and net.in_space(c)
        assert c.depth in (a.depth, b.depth) and c.embed in (a.embed, b.embed)
        for i in range(c.depth):
            assert c.heads[i] in {p.heads[i] for p in (a, b) if p.depth > i}


def test_evolution_is_elitist_legal_and_seeded():
    net = _net()
    cfg = S.SearchConfig(search=S.Evolution(population=8, top_k=3, n_mutations=3,
                                            n_crossovers=2, generations=6, param_max=30_000))
    target = 12_000

    def fitness(sub):  # a synthetic landscape: be close to a parameter budget
        return abs(net.count_params(sub) - target) / target

    runs = [S.evolve(net, fitness, cfg, np.random.default_rng(3)) for _ in range(2)]
    assert runs[0]["best"] == runs[1]["best"]  # same seed, same answer
    best = [h["best_val_loss"] for h in runs[0]["history"]]
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:], strict=False))  # top-k is kept
    assert best[-1] < best[0]
    assert all(S.is_legal(net, s, 0, 30_000) for s in runs[0]["evaluated"])
    rnd = S.random_search(net, fitness, len(runs[0]["evaluated"]), cfg,
                          np.random.default_rng(3))
    assert rnd["evaluated"] == len(runs[0]["evaluated"])


def test_parameter_cap_that_admits_nothing_is_a_config_error():
    net = _net()
    cfg = S.SearchConfig(search=S.Evolution(param_max=10))
    with pytest.raises(ConfigError, match="param_min, param_max"):
        S.evolve(net, lambda s: 0.0, cfg, np.random.default_rng(0))


def _tiny(out_dir):
    cfg = S.quick_config(str(out_dir))
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, steps=8),
        eval=dataclasses.replace(cfg.eval, n_val=32, n_test=32),
        search=dataclasses.replace(cfg.search, population=4, generations=2))


def test_search_end_to_end_extracts_an_identical_standalone_winner(tmp_path, monkeypatch):
    calls = []
    real_evaluate = RegressionTask.evaluate

    def spy(self, model):  # the test split: must be touched only for the two winners
        calls.append(1)
        return real_evaluate(self, model)

    monkeypatch.setattr(RegressionTask, "evaluate", spy)
    res = S.search(_tiny(tmp_path / "a"))
    # the two winners, then one final evaluation per model trained from scratch
    trained = len({r["config"] for r in res["compare"]})
    assert len(calls) == 2 + trained
    assert res["extract_max_abs_diff"] <= 1e-6
    saved = json.loads((tmp_path / "a" / "search.json").read_text())
    assert saved["best"] == res["best"] and (tmp_path / "a" / "report.md").is_file()
    assert [r["method"] for r in res["rows"]] == [
        "evolution", "random search", "evolution, retrained from scratch",
        "random search, retrained from scratch", "hand-set GPT"]

    # independent check: the winner run dir, loaded alone, equals the supernet at that config
    winner, _ = load_model(tmp_path / "a" / "winner")
    supernet_model, _ = load_model(tmp_path / "a" / "supernet")
    sub = S.SubnetConfig.from_dict(res["best"])
    supernet_model.backbone.set_active(sub)
    x = tokenize(np.random.default_rng(5).standard_normal((4, 6, 3)),
                 np.random.default_rng(6).standard_normal((4, 6)))
    with torch.no_grad():
        torch.testing.assert_close(winner(x), supernet_model(x), atol=1e-6, rtol=0)
    assert winner.backbone.num_params() == res["best_params"]
    assert winner.backbone.num_params() <= 20_000

    # same seed -> same search; an existing search is not overwritten silently
    again = S.search(_tiny(tmp_path / "b"))
    assert again["best"] == res["best"] and again["best_val_loss"] == res["best_val_loss"]
    with pytest.raises((ConfigError, CheckpointError), match="overwrite"):
        S.search(_tiny(tmp_path / "a"))


def test_comparison_retrains_the_winners_from_scratch_next_to_a_hand_set_gpt(tmp_path):
    cfg = _tiny(tmp_path / "a")
    res = S.search(cfg)
    rows = {r["method"]: r for r in res["compare"]}
    task = RegressionTask(S.make_family(cfg.data.family, cfg.data.d), cfg.data.k,
                          n_eval=cfg.eval.n_test, eval_seed=cfg.eval.test_seed)
    inherited, _ = load_model(tmp_path / "a" / "winner")
    for method, dirname in (("evolution, retrained from scratch", "scratch-evolution"),
                            ("hand-set GPT", "handset-gpt")):
        model, _ = load_model(tmp_path / "a" / dirname)
        row = rows[method]
        # an independent evaluation of the saved model gives the reported test errors
        curve = task.evaluate(model)
        assert row["test_err"] == pytest.approx(curve["err_mean"], rel=1e-6)
        assert row["err_last"] == pytest.approx(curve[f"err_k{cfg.data.k - 1}"], rel=1e-6)
        assert row["params"] == model.backbone.num_params() <= cfg.search.param_max
    scratch, _ = load_model(tmp_path / "a" / "scratch-evolution")
    # the searched architecture, with its own (fresh) weights, not the inherited ones
    assert scratch.cfg.backbone_cfg == inherited.cfg.backbone_cfg
    assert rows["evolution, retrained from scratch"]["params"] == res["best_params"]
    assert not torch.equal(scratch.backbone.blocks[0].attn.qkv.weight,
                           inherited.backbone.blocks[0].attn.qkv.weight)
    gpt, _ = load_model(tmp_path / "a" / "handset-gpt")
    assert gpt.cfg.backbone == "gpt" and rows["hand-set GPT"]["params"] == S.handset_params(cfg)
    # the comparison is seeded: a second search trains the same models
    again = S.search(_tiny(tmp_path / "b"))
    assert again["compare"] == res["compare"]


def test_hand_set_gpt_over_the_cap_is_refused_before_training(tmp_path):
    cfg = _tiny(tmp_path / "a")
    cfg = dataclasses.replace(cfg, compare=dataclasses.replace(cfg.compare, gpt_width=64))
    with pytest.raises(ConfigError, match="--compare.gpt-width"):
        S.search(cfg)
    assert not (tmp_path / "a").exists()


def test_validation_prompts_are_not_the_test_prompts():
    from icarena.envs.regression.families import make_family, sample_prompts

    cfg = S.quick_config("unused")
    d, k, ev = cfg.data.d, cfg.data.k, cfg.eval
    fam = make_family(cfg.data.family, d)
    task = RegressionTask(fam, k, n_eval=ev.n_test, eval_seed=ev.test_seed)
    val = sample_prompts(fam, np.random.default_rng([cfg.seed, S._VAL_STREAM]), ev.n_val, k)
    test_rows = {r.tobytes() for r in task.eval_prompts.x.reshape(ev.n_test, -1)}
    assert not any(r.tobytes() in test_rows for r in val.x.reshape(ev.n_val, -1))


def test_supernet_task_activates_a_sampled_subnet_per_step():
    net = _net()
    inner = type("T", (), {"sample_batch": lambda self, rng, b: {"n": torch.tensor(b)},
                           "tokens_per_sample": 4})()
    task = S.SupernetTask(inner, net, fitness=lambda m: 0.0)
    seen = []
    for step in range(5):
        task.sample_batch(np.random.default_rng([0, 0, step]), 2)
        seen.append(net.active)
    again = S.SupernetTask(inner, net, fitness=lambda m: 0.0)
    for step in range(5):  # the same step rng gives the same sub-network (exact resume)
        again.sample_batch(np.random.default_rng([0, 0, step]), 2)
        assert net.active == seen[step]
    assert len(set(seen)) > 1
    assert task.evaluate(net) == {"val_loss_max": 0.0, "val_loss_min": 0.0}
    assert net.active == seen[-1]


def test_config_errors():
    with pytest.raises(ConfigError, match="search.top_k"):
        S.search(S.SearchConfig(search=S.Evolution(top_k=20, population=4)))
    with pytest.raises(ConfigError, match="param_min"):
        S.search(S.SearchConfig(search=S.Evolution(param_min=10, param_max=5)))
    with pytest.raises(ConfigError, match="misses the space"):  # refused before any training
        cfg = S.quick_config("unused")
        S.search(dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, param_max=10),
                                     compare=S.Comparison(steps=0)))

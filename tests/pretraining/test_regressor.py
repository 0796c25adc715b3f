"""The regression library API: train_regressor on a family or the user's sampler,
InContextRegressor predict / save / load (Python and CLI runs), evaluate_regressors against an
independent least-squares computation."""

from __future__ import annotations

import numpy as np
import pytest

from icarena.envs.regression import make_family, sample_prompts
from icarena.errors import ConfigError
from icarena.evaluation import evaluate_regressors
from icarena.pretraining import (
    InContextRegressor,
    ModelSpec,
    TrainConfig,
    load_model,
    regression_train_config,
    train_regressor,
)

TINY_MODEL = ModelSpec(d_model=16, n_layers=1, n_heads=1)
TINY_TRAIN = TrainConfig(steps=10, batch_size=8, warmup_steps=2, progress=False, threads=1)


def sampler(rng, n, k):
    x = rng.standard_normal((n, k, 2))
    return x, np.sin(x[..., 0]) + 0.5 * x[..., 1]


@pytest.fixture(scope="module")
def reg():
    return train_regressor("linear", d=2, k=6, model=TINY_MODEL, train=TINY_TRAIN, n_eval=16)


@pytest.fixture(scope="module")
def prompts():
    p = sample_prompts(make_family("linear", 2), np.random.default_rng(0), 40, 6)
    return p.x, p.y


def test_predict_has_the_baselines_signature_and_matches_the_prefix_pass(reg, prompts):
    x, y = prompts
    assert reg.d == 2 and reg.k == 6
    out = reg.predict(x[:, :3], y[:, :3], x[:, 3:5])
    assert out.shape == (40, 2) and out.dtype == np.float64
    assert reg.predict(x[0, :3], y[0, :3], x[0, 3:5]).shape == (2,)
    prefix = reg.predict_prefixes(x, y)
    one_by_one = np.stack([reg.predict(x[:, :i], y[:, :i], x[:, i:i + 1])[:, 0]
                           for i in range(1, 6)], axis=1)
    np.testing.assert_allclose(prefix[:, 1:], one_by_one, atol=1e-5)
    with pytest.raises(ConfigError, match="at most k = 6"):
        reg.predict(x, y, x[:, :1])
    with pytest.raises(ConfigError, match="xs must have d = 2"):
        reg.predict(np.zeros((1, 2, 3)), np.zeros((1, 2)), np.zeros((1, 1, 3)))


def test_train_regressor_on_a_sampler_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = train_regressor(sampler, k=5, model=TINY_MODEL, train=TINY_TRAIN, n_eval=8)
    assert list(tmp_path.iterdir()) == [] and r.result.out_dir is None
    assert r.d == 2 and r.config["task"]["sampler"].endswith("sampler") and r.family() is None
    again = train_regressor(sampler, k=5, model=TINY_MODEL, train=TINY_TRAIN, n_eval=8)
    a, b = r.model.state_dict(), again.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)  # same seed, same weights
    with pytest.raises(ConfigError, match="the sampler must return"):
        train_regressor(lambda rng, n, k: (np.zeros((n, k)), np.zeros((n, k))), train=TINY_TRAIN)


def test_save_and_load_give_identical_predictions(reg, prompts, tmp_path):
    x, y = prompts
    reg.save(tmp_path / "run")
    loaded = InContextRegressor.load(tmp_path / "run")
    assert np.array_equal(loaded.predict_prefixes(x, y), reg.predict_prefixes(x, y))
    assert np.array_equal(loaded.predict(x[:, :4], y[:, :4], x[:, 4:]),
                          reg.predict(x[:, :4], y[:, :4], x[:, 4:]))
    assert loaded.family() == make_family("linear", 2)
    model, _ = load_model(tmp_path / "run")
    assert model.cfg == reg.model.cfg


def test_a_cli_run_loads_as_a_regressor(tmp_path, prompts):
    from icarena.pretraining.data.regression import PretrainConfig, RegressionData, pretrain

    run = tmp_path / "run"
    pretrain(PretrainConfig(out_dir=str(run), data=RegressionData(d=2, k=6, n_eval=8),
                            model=TINY_MODEL, train=TINY_TRAIN.replace(ckpt_every=5)))
    x, y = prompts
    a, b = InContextRegressor.load(run), InContextRegressor.load(run)
    assert np.array_equal(a.predict_prefixes(x, y), b.predict_prefixes(x, y))
    # the same weights as training it from Python with the same settings
    py = train_regressor("linear", d=2, k=6, model=TINY_MODEL, train=TINY_TRAIN, n_eval=8)
    assert np.array_equal(a.predict_prefixes(x, y), py.predict_prefixes(x, y))


def test_evaluate_regressors_against_an_independent_least_squares(reg, prompts):
    x, y = prompts
    res = evaluate_regressors(x, y, {"model": reg, "ls": "least_squares",
                                     "ridge": ("ridge", {"lam": 0.1}),
                                     "zero": lambda xs, ys, xq: np.zeros(xq.shape[:2])},
                              normaliser=2.0, n_boot=20)
    expect = np.zeros_like(y)
    for p in range(x.shape[0]):
        for i in range(1, x.shape[1]):
            w = np.linalg.lstsq(x[p, :i], y[p, :i], rcond=None)[0]  # minimum-norm solution
            expect[p, i] = x[p, i] @ w
    np.testing.assert_allclose(res.errors["ls"], (expect - y) ** 2 / 2.0, atol=1e-8)
    np.testing.assert_allclose(res.errors["zero"], y ** 2 / 2.0)
    np.testing.assert_allclose(res.errors["model"], (reg.predict_prefixes(x, y) - y) ** 2 / 2.0)
    np.testing.assert_allclose(res.mean("ls"), res.errors["ls"].mean(0))
    assert res.table().count("\n") == 6 + 1
    with pytest.raises(ConfigError, match="unknown baseline 'nope'"):
        evaluate_regressors(x, y, {"bad": "nope"})


def test_recommended_settings_are_the_cli_defaults():
    from icarena.pretraining import path_train_config
    from icarena.pretraining.data.regression import PretrainConfig
    from icarena.pretraining.path_lm import PretrainConfig as PathPretrain

    assert PretrainConfig().train == regression_train_config()
    assert PathPretrain().train == path_train_config()
    assert path_train_config() != TrainConfig() and path_train_config().weight_decay == 0.1
    assert regression_train_config().replace(steps=5).steps == 5
    with pytest.raises(ConfigError, match="train.steps must be >= 1"):
        regression_train_config().replace(steps=0)


def test_the_cli_evaluates_a_python_saved_regressor_with_the_same_numbers(reg, tmp_path):
    """`icarena evaluate regression` on a regressor saved from Python reports the curves that
    evaluate_regressors gives in Python on the same held-out prompts."""
    import json

    from cli_helpers import ok

    from icarena.evaluation.regression import FAMILY_BASELINES
    from icarena.pretraining import RegressionTask

    reg.save(tmp_path / "run")
    ok("evaluate", "regression", "--run-dir", str(tmp_path / "run"), "--eval.n-prompts", "16",
       "--eval.n-boot", "5", "--eval.seed", "9")
    cli = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())["curves"]
    p = RegressionTask(make_family("linear", 2), 6, n_eval=16, eval_seed=9).eval_prompts
    py = evaluate_regressors(p.x, p.y, {"transformer": reg, **FAMILY_BASELINES["linear"]},
                             normaliser=2.0, n_boot=5, seed=9).curves
    assert set(cli) == set(py)
    for name in py:
        np.testing.assert_allclose(cli[name]["mean"], py[name]["mean"], rtol=1e-6, atol=1e-9)

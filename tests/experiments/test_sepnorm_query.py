import json

import numpy as np
import pytest
import torch
from cli_helpers import TINY as DOC_TINY
from cli_helpers import ok, refused, weights
from scipy import stats

from icarena.envs.regression import make_family
from icarena.experiments import sepnorm_query as sq
from icarena.pretraining.data.query_regression import (
    QueryRegressionTask,
    query_predictions,
    query_tokens,
)
from icarena.pretraining.model import SequenceModel

TINY = DOC_TINY["run sepnorm-query"]


def test_query_tokens_put_the_query_first_and_zero_the_padding():
    rng = np.random.default_rng(0)
    x, y, xq = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    tokens, pad = query_tokens(x, y, xq, np.array([0, 2, 4]))
    assert tokens.shape == (3, 5, 4) and pad.shape == (3, 5)
    assert torch.equal(pad, torch.tensor([[0, 1, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]],
                                         dtype=torch.bool))
    np.testing.assert_allclose(tokens[:, 0, :2], xq, rtol=1e-6)
    assert torch.equal(tokens[:, 0, 2:], torch.tensor([[0.0, 1.0]] * 3))
    np.testing.assert_allclose(tokens[2, 1:, :2], x[2], rtol=1e-6)
    np.testing.assert_allclose(tokens[2, 1:, 2], y[2], rtol=1e-6)
    assert not tokens[2, 1:, 3].any()  # context tokens carry no query flag
    assert not tokens[1, 3:].any() and not tokens[0, 1:].any()
    with pytest.raises(Exception, match="n must lie"):
        query_tokens(x, y, xq, np.array([0, 2, 5]))


@pytest.mark.parametrize("variant", ["sharenorm", "sepnorm"])
def test_the_query_prediction_ignores_padded_pairs_and_other_prompts(variant):
    torch.manual_seed(0)
    net = SequenceModel(sq.model_config(variant, 2, 4, sq.QueryModel(16, 2, 2))).eval()
    rng = np.random.default_rng(1)
    x, y, xq = rng.normal(size=(4, 4, 2)), rng.normal(size=(4, 4)), rng.normal(size=(4, 2))
    n = np.array([1, 2, 3, 4])
    base = query_predictions(net, *query_tokens(x, y, xq, n))
    x2, y2 = x.copy(), y.copy()
    x2[0, 1:], y2[0, 1:] = 9.0, -9.0  # beyond prompt 0's single context pair
    tokens, pad = query_tokens(x2, y2, xq, n)
    tokens[0, 2:] = 5.0  # even garbage in padded tokens is not read
    changed = query_predictions(net, tokens, pad)
    assert torch.equal(changed[0], base[0])
    assert torch.equal(changed[1:], base[1:])  # eval mode: no coupling across the batch
    y3 = y.copy()
    y3[0, 0] += 1.0
    assert not torch.equal(query_predictions(net, *query_tokens(x, y3, xq, n))[0], base[0])


def test_cell_errors_match_a_direct_computation():
    cfg = sq.quick_config("unused")
    task = QueryRegressionTask(make_family("linear", 2, noise_std=0.5), 4, n_eval=32,
                               eval_seed=7)
    torch.manual_seed(0)
    net = SequenceModel(sq.model_config("sepnorm", 2, 4, cfg.model)).eval()
    errors = sq.cell_errors(cfg, net, task)
    p = task.eval_prompts
    for i in range(1, 5):
        X, Y, xq = p.x[:, :i], p.y[:, :i], p.x[:, i]
        ls = np.array([xq[j] @ np.linalg.pinv(X[j]) @ Y[j] for j in range(32)])
        ridge = np.array([xq[j] @ np.linalg.solve(X[j].T @ X[j] + 0.25 * np.eye(2), X[j].T @ Y[j])
                          for j in range(32)])
        with torch.no_grad():
            own = query_predictions(net, *query_tokens(np.pad(X, ((0, 0), (0, 4 - i), (0, 0))),
                                                       np.pad(Y, ((0, 0), (0, 4 - i))), xq,
                                                       np.full(32, i))).double().numpy()
        for name, pred in [("least_squares", ls), ("ridge (Bayes)", ridge), ("transformer", own)]:
            np.testing.assert_allclose(errors[name][:, i - 1], (pred - p.y[:, i]) ** 2 / 2,
                                       rtol=1e-6, atol=1e-9, err_msg=f"{name}, i={i}")


def test_compare_gives_paired_t_intervals():
    per_seed = {"sharenorm": [0.30, 0.34, 0.32], "sepnorm": [0.28, 0.319, 0.301],
                "sepnorm-ln": [0.40, 0.45, 0.41]}
    rows = {r["variant"]: r for r in sq.compare(per_seed, "sharenorm")}
    diff = np.array([-0.02, -0.021, -0.019])
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert rows["sepnorm"]["minus_sharenorm"] == pytest.approx(diff.mean(), abs=1e-4)
    assert rows["sepnorm"]["diff_ci95"] == pytest.approx([diff.mean() - half,
                                                          diff.mean() + half], abs=1e-4)
    assert rows["sepnorm"]["verdict"] == "lower error"
    assert rows["sepnorm-ln"]["verdict"] == "higher error"
    assert rows["sepnorm"]["relative_change_%"] == pytest.approx(-100 * 0.02 / 0.32, abs=0.1)
    assert "verdict" not in rows["sharenorm"]
    noisy = sq.compare({"a": [0.3, 0.3], "b": [0.2, 0.5]}, "a")
    assert noisy[1]["verdict"] == "not distinguishable"


def test_config_errors_name_the_fix(tmp_path):
    out = str(tmp_path / "r")
    assert "sepnorm-final" in refused("run", "sepnorm-query", "--out-dir", out, "--variants",
                                      "layernorm")
    assert "batch_size must be >= 2" in refused("run", "sepnorm-query", "--out-dir", out,
                                                "--train.batch-size", "1")


def test_cli_run_then_resume_keeps_every_cell(tmp_path):
    run = tmp_path / "sq"
    proc = ok("run", "sepnorm-query", "--out-dir", str(run), *TINY)
    assert "not distinguishable" in proc.stdout or "error" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["variant"] for r in metrics["rows"]] == ["sharenorm", "sepnorm"]
    cells = {(c["variant"], c["seed"]): c for c in metrics["cells"]}
    assert set(cells) == {(v, s) for v in ("sharenorm", "sepnorm") for s in (0, 1)}
    # each row's mean is the mean of its cells, and the cells' own evaluation agrees
    for row in metrics["rows"]:
        own = [cells[(row["variant"], s)]["err_mean"] for s in (0, 1)]
        assert row["err_mean"] == pytest.approx(np.mean(own), abs=1e-4)
        trained = json.loads((run / "cells" / row["variant"] / "seed1" / "metrics.json")
                             .read_text())["train"]["final_eval"]["err_mean"]
        assert trained == pytest.approx(cells[(row["variant"], 1)]["err_mean"], rel=1e-5)
    assert (run / "error_vs_k.png").stat().st_size > 0
    before = weights(run / "cells")
    ok("run", "sepnorm-query", "--out-dir", str(run), "--resume", *TINY)
    assert weights(run / "cells") == before
    assert json.loads((run / "metrics.json").read_text())["rows"] == metrics["rows"]


"""`icarena evaluate regression --eval.shifts ...`: a plot per shift, a table in the report, and
least squares' curves equal to a recomputation from the shift functions."""

from __future__ import annotations

import json

import numpy as np
from cli_helpers import TINY, ok, refused

from icarena.agents.regression import least_squares
from icarena.evaluation.regression_shifts import (
    SHIFTS,
    baseline_predictions,
    shift_errors,
    shifted_prompts,
)


def test_evaluate_with_every_shift(tmp_path):
    run = tmp_path / "run"
    ok("pretrain", "regression", "--out-dir", str(run), *TINY["pretrain regression"])
    ok("evaluate", "regression", "--run-dir", str(run), "--eval.shifts", *SHIFTS,
       "--eval.shift-scale", "3", *TINY["evaluate regression"])
    out = run / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["shifts"]["curves"]) == set(SHIFTS)
    report = (out / "report.md").read_text()
    for j, s in enumerate(SHIFTS):  # prompts of shift s: seed (eval seed, index in SHIFTS)
        assert (out / f"shift_{s}.png").stat().st_size > 0 and f"| {s} |" in report
        curves = metrics["shifts"]["curves"][s]
        assert set(curves) == {"transformer", "least_squares", "ridge(0.1)"}
        p = shifted_prompts(s, np.random.default_rng([metrics["seed"], j]), metrics["n_prompts"],
                            metrics["k"], 2, scale=3.0, noise_std=1.0)
        expected = shift_errors(p, baseline_predictions(p, least_squares), 2).mean(0)
        np.testing.assert_allclose(curves["least_squares"]["mean"], expected, rtol=1e-9,
                                   atol=1e-12)
        assert np.all(np.isfinite(curves["transformer"]["mean"]))
    msg = refused("evaluate", "regression", "--run-dir", str(run), "--out-dir",
                  str(tmp_path / "e2"), "--eval.shifts", "tilted")
    assert "unknown eval.shifts" in msg and not (tmp_path / "e2").exists()

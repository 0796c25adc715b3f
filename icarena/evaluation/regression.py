"""In-context regression: error vs number of in-context examples, against classical baselines
(``icarena evaluate regression``).

Garg, Tsipras, Liang, Valiant 2022, "What Can Transformers Learn In-Context? A Case Study of
Simple Function Classes" (arXiv 2208.01066): the error of the prediction for the (i+1)-th query
given i in-context examples, i = 0..k-1, normalised by the family's ``normaliser`` (d for linear
functions), averaged over held-out prompts, with bootstrap 90% intervals; the baselines predict
from the same prefixes of the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from icarena.errors import ConfigError, check
from icarena.evaluation.report import (
    bootstrap_ci,
    line_plot,
    markdown_table,
    write_metrics,
    write_report,
)
from icarena.lifecycle import claim_run, eval_out_dir

_LINEAR = {"least_squares": ("least_squares", {}), "3-NN": ("knn", {"n_neighbors": 3}),
           "averaging": ("averaging", {})}
# label -> (baseline name in icarena.agents.regression, options), per function family
FAMILY_BASELINES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "linear": _LINEAR,
    "sparse_linear": {**_LINEAR, "lasso(0.01)": ("lasso", {"alpha": 0.01})},
    "relu_2nn": {**_LINEAR, "2-layer NN": ("two_layer_nn", {})},
    "decision_tree": _LINEAR,
    "holder": {"least_squares": ("least_squares", {}), "3-NN": ("knn", {"n_neighbors": 3}),
               "ridge(0.1)": ("ridge", {"lam": 0.1})},
}
FAMILY_BASELINES["manifold"] = FAMILY_BASELINES["holder"]


def curve_stats(sq_err: np.ndarray, n_boot: int, seed: int) -> dict[str, list[float]]:
    """Mean, std and bootstrap 90% interval per column of per-prompt errors (P, k)."""
    lo, hi = bootstrap_ci(sq_err, level=0.9, n_boot=n_boot, seed=seed)
    return {"mean": sq_err.mean(0).tolist(), "std": sq_err.std(0).tolist(),
            "ci90_low": np.asarray(lo).tolist(), "ci90_high": np.asarray(hi).tolist()}


def baseline_errors(
    x: np.ndarray, y: np.ndarray, normaliser: float,
    baselines: dict[str, tuple[str, dict[str, Any]]],
) -> dict[str, np.ndarray]:
    """Per-prompt normalised squared errors (P, k) of each baseline on prompts (x, y)."""
    return {label: (_prefix_errors(spec, x, y, label) - y) ** 2 / normaliser
            for label, spec in baselines.items()}


@dataclass
class RegressionCurves:
    """Error vs number of in-context examples of several regressors on the same prompts
    (:func:`evaluate_regressors`).

    ``errors[name]``: (P, k) per-prompt squared errors / ``normaliser`` (column i: prediction
    of y_i from the i points before it); ``curves[name]``: their mean, std and bootstrap 90%
    interval per i (:func:`curve_stats`, lists of length k).
    """

    errors: dict[str, np.ndarray]
    curves: dict[str, dict[str, list[float]]]
    normaliser: float

    @property
    def names(self) -> list[str]:
        return list(self.errors)

    def mean(self, name: str) -> np.ndarray:
        """The mean error curve (k,) of ``name``."""
        return np.asarray(self.curves[name]["mean"])

    def table(self, digits: int = 4) -> str:
        """Markdown table: in-context examples i x regressor (mean normalised error)."""
        names = self.names
        k = len(self.curves[names[0]]["mean"])
        return markdown_table(["k", *names], [[i] + [self.curves[n]["mean"][i] for n in names]
                                              for i in range(k)], digits=digits)


def _prefix_errors(reg: Any, x: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """Predictions (P, k) of one regressor on every prefix of the prompts."""
    from icarena.agents.regression import BASELINES, prefix_predictions
    from icarena.pretraining.regressor import InContextRegressor

    if isinstance(reg, InContextRegressor):
        return reg.predict_prefixes(x, y)
    if isinstance(reg, str):
        check(reg in BASELINES, f"regressor {name!r}: unknown baseline {reg!r}; choose one of "
                                f"{', '.join(BASELINES)}", fields="regressors")
        return prefix_predictions(reg, x, y)
    if isinstance(reg, tuple) and len(reg) == 2 and isinstance(reg[0], str):
        check(reg[0] in BASELINES, f"regressor {name!r}: unknown baseline {reg[0]!r}; choose "
                                   f"one of {', '.join(BASELINES)}", fields="regressors")
        return prefix_predictions(reg[0], x, y, **dict(reg[1]))
    if not callable(reg):
        raise ConfigError(f"regressor {name!r} is a {type(reg).__name__}: pass an "
                          "InContextRegressor, a baseline name ('least_squares', 'ridge', "
                          "'knn', 'averaging', ...), a (name, options) pair or a callable "
                          "(xs, ys, x_query) -> predictions", fields="regressors")
    out = np.asarray(prefix_predictions(reg, x, y), dtype=np.float64)
    return out


def evaluate_regressors(
    x: np.ndarray,
    y: np.ndarray,
    regressors: dict[str, Any],
    *,
    normaliser: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> RegressionCurves:
    """Error vs number of in-context examples of any mix of regressors on the user's prompts.

    Args:
        x: (P, k, d) prompt inputs; y: (P, k) labels (e.g. ``sample_prompts(family, rng, P,
            k)``'s ``.x`` and ``.y``, or one's own data).
        regressors: name -> a trained :class:`icarena.pretraining.InContextRegressor`, a
            baseline name of :mod:`icarena.agents.regression` (``"least_squares"``,
            ``"ridge"``, ``"knn"``, ``"averaging"``, ...), a ``(name, options)`` pair (e.g.
            ``("ridge", {"lam": 0.1})``) or a callable ``(xs (P, n, d), ys (P, n),
            x_query (P, m, d)) -> (P, m)``. Every one predicts y_i from the first i points of
            each prompt (a baseline's prediction from 0 points is 0).
        normaliser: divide squared errors by this (Garg et al.: d for linear functions;
            ``family.normaliser``).
        n_boot / seed: bootstrap resamples and seed of the 90% intervals.

    Returns:
        :class:`RegressionCurves` (``.errors``, ``.curves``, ``.mean(name)``, ``.table()``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check(x.ndim == 3 and y.shape == x.shape[:2] and x.shape[0] >= 2,
          f"x must be (P >= 2, k, d) and y (P, k); got {x.shape} and {y.shape}", fields="x")
    check(isinstance(regressors, dict) and len(regressors) > 0,
          "regressors must be a non-empty dict name -> regressor", fields="regressors")
    check(normaliser > 0, f"normaliser must be > 0, got {normaliser}", fields="normaliser")
    check(isinstance(n_boot, int) and n_boot >= 1, f"n_boot must be >= 1, got {n_boot!r}",
          fields="n_boot")
    errors = {}
    for name, reg in regressors.items():
        pred = _prefix_errors(reg, x, y, str(name))
        check(pred.shape == y.shape, f"regressor {name!r} gave predictions of shape "
                                     f"{pred.shape}, expected {y.shape}", fields="regressors")
        errors[name] = (pred - y) ** 2 / normaliser
    curves = {name: curve_stats(e, n_boot, seed) for name, e in errors.items()}
    return RegressionCurves(errors=errors, curves=curves, normaliser=float(normaliser))


@dataclass
class RegressionEval:
    """How a regression model is evaluated: held-out prompts and bootstrap intervals."""

    n_prompts: int = 1280
    """Held-out evaluation prompts."""
    seed: int = 1234
    """Seed of the held-out prompts."""
    n_boot: int = 1000
    """Bootstrap resamples for the 90% intervals."""
    shifts: tuple[str, ...] = ()
    """Out-of-distribution prompt shifts of Garg et al. 2022 to evaluate as well (linear family):
    skewed, half_subspace, noisy, scale_x, scale_y, orthogonal_query, half_space,
    random_quadrants (icarena.evaluation.regression_shifts)."""
    shift_scale: float = 2.0
    """Factor of the scale_x / scale_y shifts."""
    shift_noise_std: float = 1.0
    """Label noise std of the noisy shift."""

    def validate(self) -> None:
        from icarena.evaluation.regression_shifts import SHIFTS

        check(self.n_prompts >= 2, f"eval.n_prompts must be >= 2, got {self.n_prompts}")
        check(self.n_boot >= 1, f"eval.n_boot must be >= 1, got {self.n_boot}")
        bad = [s for s in self.shifts if s not in SHIFTS]
        check(not bad, f"unknown eval.shifts {bad}; choose from {', '.join(SHIFTS)}")
        check(self.shift_scale > 0, f"eval.shift_scale must be > 0, got {self.shift_scale}")
        check(self.shift_noise_std >= 0,
              f"eval.shift_noise_std must be >= 0, got {self.shift_noise_std}")


@dataclass
class EvalConfig:
    """Error vs in-context examples of a trained regression model, beside the baselines."""

    run_dir: str = "runs/regression"
    """Run dir from `icarena pretrain regression` or `icarena run regression-linear`."""
    out_dir: str = ""
    """Where to write metrics.json, report.md, error_vs_k.png ('' = run_dir/eval); the run's
    own files are never changed."""
    overwrite: bool = False
    """Replace an earlier evaluation in out_dir."""
    eval: RegressionEval = field(default_factory=RegressionEval)
    """Held-out prompts (drawn fresh from the run's function family) and intervals."""


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """``icarena evaluate regression``: curves of the model and the family's baselines
    (through :func:`evaluate_regressors`, as a Python user would)."""
    from icarena.pretraining.data.regression import RegressionTask
    from icarena.pretraining.regressor import InContextRegressor, run_family

    cfg.eval.validate()
    ev = cfg.eval
    reg = InContextRegressor.load(cfg.run_dir)
    task_cfg = reg.config.get("task", {})
    check("k" in task_cfg and ("family" in task_cfg or "sampler" in task_cfg),
          f"{cfg.run_dir} is not a regression run (its config.json has no task); train one "
          "with `icarena pretrain regression` or `icarena run regression-linear`")
    family = run_family(reg.config)
    check(family is not None,
          f"{cfg.run_dir} was trained on a Python sampler ({task_cfg.get('sampler')}), which "
          "the command line cannot draw; evaluate it from Python with "
          "icarena.evaluation.evaluate_regressors on your own prompts")
    k = int(task_cfg["k"])
    check(not ev.shifts or family.name == "linear",
          f"eval.shifts are defined for the linear family only (Garg et al.), not "
          f"{family.name!r}; drop --eval.shifts")
    out = eval_out_dir(cfg.run_dir, cfg.out_dir)
    with claim_run(out, overwrite=cfg.overwrite, resumable=False):
        task = RegressionTask(family, k, n_eval=ev.n_prompts, eval_seed=ev.seed)
        p = task.eval_prompts
        res = evaluate_regressors(p.x, p.y, {"transformer": reg, **FAMILY_BASELINES[family.name]},
                                  normaliser=family.normaliser, n_boot=ev.n_boot, seed=ev.seed)
        stats = res.curves
        extra: dict[str, Any] = {}
        shift_sections: list[str] = []
        if ev.shifts:
            from icarena.evaluation.regression_shifts import shift_report

            extra["shifts"], shift_sections = shift_report(
                out, tuple(ev.shifts), reg.predict_prefixes, d=family.d, k=k,
                n_prompts=ev.n_prompts, seed=ev.seed, n_boot=ev.n_boot, scale=ev.shift_scale,
                noise_std=ev.shift_noise_std)
        write_metrics(out, {"run_dir": str(cfg.run_dir), "family": family.to_dict(), "k": k,
                            "n_prompts": ev.n_prompts, "seed": ev.seed, "curves": stats,
                            **extra})
        ks = np.arange(k)
        line_plot(out / "error_vs_k.png", ks, {n: np.array(s["mean"]) for n, s in stats.items()},
                  bands={n: (np.array(s["ci90_low"]), np.array(s["ci90_high"]))
                         for n, s in stats.items()},
                  xlabel="in-context examples", ylabel="normalised squared error",
                  title=f"{family.name}, d = {family.d}")
        names = list(stats)
        table = markdown_table(["k", *names], [[int(i)] + [stats[n]["mean"][i] for n in names]
                                               for i in ks])
        report = write_report(out, f"In-context regression: {family.name}, d = {family.d}", [
            f"{ev.n_prompts} held-out prompts (seed {ev.seed}); normalised squared error, "
            "mean over prompts.", table, "![error vs k](error_vs_k.png)", *shift_sections])
    rows = [{"k": int(i), **{n: round(float(stats[n]["mean"][i]), 4) for n in names}}
            for i in ks]
    return {"report": str(report), "rows": rows}

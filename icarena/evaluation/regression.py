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

from icarena.errors import check
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
    from icarena.agents.regression import prefix_predictions

    return {label: (prefix_predictions(name, x, y, **opts) - y) ** 2 / normaliser
            for label, (name, opts) in baselines.items()}


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
    """``icarena evaluate regression``: curves of the model and the family's baselines."""
    from icarena.envs.regression import make_family
    from icarena.pretraining.data.regression import RegressionTask
    from icarena.pretraining.model import load_model

    cfg.eval.validate()
    ev = cfg.eval
    model, config = load_model(cfg.run_dir)
    task_cfg = config.get("task", {})
    check("family" in task_cfg and "k" in task_cfg,
          f"{cfg.run_dir} is not a regression run (its config.json has no task family); train "
          "one with `icarena pretrain regression` or `icarena run regression-linear`")
    fam = dict(task_cfg["family"])
    family = make_family(fam.pop("name"), fam.pop("d"), **fam)
    k = int(task_cfg["k"])
    check(not ev.shifts or family.name == "linear",
          f"eval.shifts are defined for the linear family only (Garg et al.), not "
          f"{family.name!r}; drop --eval.shifts")
    out = eval_out_dir(cfg.run_dir, cfg.out_dir)
    with claim_run(out, overwrite=cfg.overwrite, resumable=False):
        task = RegressionTask(family, k, n_eval=ev.n_prompts, eval_seed=ev.seed)
        p = task.eval_prompts
        errors = {"transformer": (task.predict(model, p.x, p.y) - p.y) ** 2 / family.normaliser}
        errors.update(baseline_errors(p.x, p.y, family.normaliser,
                                      FAMILY_BASELINES[family.name]))
        stats = {name: curve_stats(e, ev.n_boot, ev.seed) for name, e in errors.items()}
        extra: dict[str, Any] = {}
        shift_sections: list[str] = []
        if ev.shifts:
            from icarena.evaluation.regression_shifts import shift_report

            extra["shifts"], shift_sections = shift_report(
                out, tuple(ev.shifts), lambda x, y: task.predict(model, x, y), d=family.d, k=k,
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

"""``icarena run regression-rate``: Hölder regression rates of the PoU-Transformer (reconstruction).

Shi & Liao 2026 (arXiv 2605.08811) show that a two-block softmax transformer attains the
minimax rate E‖f̂ − f‖² = O(n^{-2α/(2α+d)} log n) for α-Hölder targets on [0,1]^d. This experiment
measures the rate (a reconstruction of the paper's rate experiment):

* target (``data.target``), x ~ U[0,1]^d, y = f(x) + N(0, 0.25²):

  - ``cusp``: f_α(x) = Σ_i |x_i − ½|^α. α-Hölder, but smooth off the hyperplanes x_i = ½, so it
    is easier than the worst case: its L² energy above frequency K decays like K^{-(2α+1)}
    instead of K^{-2α}, and a good estimator's error can fall faster than the minimax rate;
  - ``lacunary``: the Weierstrass-type series W_α(x) = c Σ_{j≤24} 2^{-jα} Π_i cos(2π 2^j x_i +
    θ_{j,i}) with fixed random phases (:func:`icarena.envs.regression.lacunary_target`), rough at
    every scale in every direction (not an additive model for d ≥ 2): exactly α-Hölder for
    α < 1 and in the Zygmund class at α = 1 (same minimax rate), with energy ≍ 4^{-kα} above
    frequency 2^k at every k, so no estimator can beat n^{-2α/(2α+d)} on it by exploiting
    smoothness; it realises at every scale the random-sign bumps of the standard lower-bound
    construction. It is chosen over bumps at one sampling scale because the experiment needs
    one fixed target for all n. c makes Var f equal to the cusp's (same signal-to-noise). It is
    the default: k-NN with the best k beats the rate on the cusp but not on it
    (docs/results/regression-rate.md);
* cases (d, α) ∈ {(1, 1), (1, 0.5), (2, 1)}, n ∈ {2^7, ..., 2^13}, ``n_seeds`` seeds each;
* model: the ``local_global`` backbone (2 encoder blocks, softmax attention, sinusoidal
  positions) on N tokens t_j = read_in(x) + PE(j) (x copied into every token), mean-pooled and read
  out linearly. Its size grows with n through m = ⌈n^{d/(2α+d)}⌉: by default the FFN hidden width
  is ``width_mult`` · m with N = ``tokens`` fixed (``size_by="width"``); ``size_by="tokens"`` uses
  N = m tokens (= partition-of-unity centres) instead, which costs O(N²) per sample and is ≈ 5–10×
  slower at the largest n on a CPU;
* training: the Trainer (Adam, i.e. AdamW without decay; no clipping), cosine learning rate,
  minibatches of ``batch_size`` (full batch would cost ≈ n/batch_size times more on a CPU; a
  documented deviation from full-batch training), early stopping on a 20% holdout (the weights with
  the best holdout MSE are kept);
* test MSE E(f̂ − f)² on ``n_test`` (10^4) fresh noiseless points;
* slope of log MSE vs log n by least squares over all (n, seed) points, with its standard error,
  against the theoretical −2α/(2α + d); tolerance ±0.15 (the log factor biases local slopes).
  With ``n_seeds`` ≥ 2 each seed (its own training data, initialisation and test points) also
  gets its own slope over n; the verdict is then judged on the mean of those slopes, reported
  with its 95% Student-t interval (mean ± t_{0.975, k−1} s/√k over k seeds);
* control: k-NN regression with k = ⌈n^{2α/(2α+d)}⌉ (the rate-optimal choice), which must show
  the theoretical slope.

Writes config.json, metrics.json, report.md and ``rate.png`` (log-log MSE vs n, one line per case
for the transformer and the k-NN control).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from icarena.envs.regression.families import RATE_TARGETS, rate_target
from icarena.errors import check
from icarena.evaluation.intervals import t_interval
from icarena.lifecycle import writes_run
from icarena.pretraining.train import TrainConfig

NOISE_STD = 0.25


@dataclass
class RateData:
    """The regression problems: noisy Hölder targets at growing sample sizes."""

    cases: list[tuple[int, float]] = field(default_factory=lambda: [(1, 1.0), (1, 0.5), (2, 1.0)])
    """(d, alpha) pairs; alpha in (0, 1]."""
    log2_n_min: int = 7
    """Smallest sample size 2^log2_n_min."""
    log2_n_max: int = 13
    """Largest sample size 2^log2_n_max."""
    n_seeds: int = 1
    """Independent repetitions per (case, n); >= 2 adds per-seed slopes and their t interval."""
    target: str = "lacunary"
    """The fixed Hölder target: 'lacunary' (Weierstrass-type series, attains the minimax rate)
    or 'cusp' (Σ|x_i − ½|^α, smooth almost everywhere: easier than the rate)."""


@dataclass
class RateModel:
    """The PoU-Transformer: a 2-block local_global backbone whose size grows with n."""

    d_model: int = 16
    """Token width of the local_global backbone."""
    n_heads: int = 2
    """Attention heads."""
    mlp_ratio: float = 4.0
    """FFN hidden width / d_model (size_by='tokens')."""
    size_by: str = "width"
    """How the model grows with n: 'width' (FFN hidden = width_mult·m) or 'tokens' (N = m)."""
    tokens: int = 8
    """Number of tokens N when size_by='width'."""
    width_mult: int = 4
    """FFN hidden width per unit of m when size_by='width'."""
    max_tokens: int = 128
    """Cap on the number of tokens N when size_by='tokens'."""


@dataclass
class RateEval:
    """How a fit is scored."""

    n_test: int = 10_000
    """Fresh noiseless test points."""


def _default_train() -> TrainConfig:
    return TrainConfig(steps=1000, batch_size=128, lr=3e-3, min_lr=0.0, warmup_steps=50,
                       grad_clip=0.0, eval_every=50, ckpt_every=250, log_every=50,
                       device="cpu", progress=False)


@dataclass
class Config:
    """PoU-Transformer (reconstruction) on noisy Hölder targets: test MSE vs n."""

    out_dir: str = "runs/regression-rate"
    """Run directory."""
    seed: int = 0
    """Base seed (data, model init)."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir: every fit (out_dir/fits/...) from its checkpoint."""
    data: RateData = field(default_factory=RateData)
    """The regression problems."""
    model: RateModel = field(default_factory=RateModel)
    """The model and how it grows with n."""
    train: TrainConfig = field(default_factory=_default_train)
    """Optimisation of every fit (eval_every: the holdout check of early stopping)."""
    eval: RateEval = field(default_factory=RateEval)
    """Scoring."""

    def validate(self) -> None:
        data, model = self.data, self.model
        check(len(data.cases) >= 1, "data.cases must hold at least one (d, alpha) pair")
        for d, alpha in data.cases:
            check(int(d) == d and d >= 1, f"d must be an integer >= 1, got {d}")
            check(0.0 < alpha <= 1.0, f"alpha must be in (0, 1], got {alpha} (case d={d})")
        check(3 <= data.log2_n_min < data.log2_n_max <= 20,
              "need 3 <= data.log2_n_min < data.log2_n_max <= 20 (at least two sample sizes)")
        check(data.n_seeds >= 1, f"data.n_seeds must be >= 1, got {data.n_seeds}")
        check(data.target in RATE_TARGETS, f"unknown data.target {data.target!r}; choose one of "
              f"{', '.join(sorted(RATE_TARGETS))}", fields="data.target")
        check(model.d_model % model.n_heads == 0, "model.d_model must be divisible by n_heads")
        check(model.size_by in ("width", "tokens"),
              f"model.size_by must be 'width' or 'tokens', got {model.size_by!r}")
        check(self.train.eval_every >= 1,
              f"train.eval_every must be >= 1 (early stopping), got {self.train.eval_every}")
        self.train.validate()
        check(self.eval.n_test >= 1, f"eval.n_test must be >= 1, got {self.eval.n_test}")


def quick_config(out_dir: str) -> Config:
    """A tiny version: 3 sample sizes, few steps; slopes are not meaningful."""
    return Config(out_dir=out_dir, data=RateData(log2_n_min=7, log2_n_max=9),
                  model=RateModel(max_tokens=16),
                  train=dataclasses.replace(_default_train(), steps=60, eval_every=20),
                  eval=RateEval(n_test=2000))


def theory_slope(d: int, alpha: float) -> float:
    """Minimax exponent −2α/(2α + d)."""
    return -2.0 * alpha / (2.0 * alpha + d)


def size_unit(n: int, d: int, alpha: float) -> int:
    """m = ⌈n^{d/(2α+d)}⌉: the number of centres that balances bias and variance."""
    return max(2, math.ceil(n ** (d / (2 * alpha + d))))


def model_size(n: int, d: int, alpha: float, cfg: Config) -> tuple[int, int]:
    """(tokens N, FFN hidden width) of the fit on n samples."""
    m = size_unit(n, d, alpha)
    if cfg.model.size_by == "tokens":
        return min(cfg.model.max_tokens, m), int(round(cfg.model.mlp_ratio * cfg.model.d_model))
    return cfg.model.tokens, cfg.model.width_mult * m


def fit_slope(n: np.ndarray, mse: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of log(mse) on log(n) and its standard error."""
    x, y = np.log(np.asarray(n, float)), np.log(np.asarray(mse, float))
    A = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    dof = max(len(x) - 2, 1)
    sigma2 = float(((y - A @ coef) ** 2).sum()) / dof
    cov = sigma2 * np.linalg.inv(A.T @ A)
    return float(coef[0]), float(math.sqrt(cov[0, 0]))


def slope_summary(records: list[dict[str, Any]], key: str, theory: float,
                  tol: float = 0.15) -> dict[str, Any]:
    """Slope of log ``key`` (a record's MSE) vs log n: pooled over all (n, seed) points with its
    standard error; with ≥ 2 seeds also each seed's own slope, their mean and 95% t interval.
    ``within`` judges the mean (one seed: the pooled slope) against ``theory`` ± ``tol``. When
    every seed has the same n grid the pooled slope equals the mean (least squares with a common
    intercept); the seeds add the interval, which, unlike the pooled se, reflects how much the
    slope itself varies from seed to seed."""
    slope, se = fit_slope([r["n"] for r in records], [r[key] for r in records])
    out: dict[str, Any] = {"slope": slope, "se": se}
    seeds = sorted({r["seed"] for r in records})
    if len(seeds) >= 2:
        per_seed = [fit_slope([r["n"] for r in records if r["seed"] == s],
                              [r[key] for r in records if r["seed"] == s])[0] for s in seeds]
        mean, lo, hi = t_interval(per_seed)
        out.update(seed_slopes=per_seed, mean=mean, ci95=[lo, hi])
    out["within"] = bool(abs(out.get("mean", slope) - theory) <= tol)
    return out


def eval_points(cfg: Config, case_index: int, seed_index: int, d: int) -> np.ndarray:
    """The n_test noiseless test inputs of one (case, seed): (n_test, d). Every seed has its own;
    seed 0 keeps the points that runs made before seeds had their own (one per case)."""
    key = [cfg.seed, case_index, 99] + ([seed_index] if seed_index else [])
    return np.random.default_rng(key).random((cfg.eval.n_test, d))


class PoURegressor(nn.Module):
    """x (B, d) -> f̂(x) (B,): read-in, copy to N tokens, local_global backbone, mean, read-out."""

    def __init__(self, d: int, tokens: int, d_model: int, n_heads: int, hidden: int):
        super().__init__()
        from icarena.pretraining.backbones import build

        self.tokens = tokens
        self.read_in = nn.Linear(d, d_model)
        self.backbone = build("local_global", d_model=d_model, n_layers=2, n_heads=n_heads,
                              causal=False, max_len=tokens, mlp_ratio=hidden / d_model)
        self.read_out = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.read_in(2.0 * x - 1.0)[:, None, :].expand(-1, self.tokens, -1)
        return self.read_out(self.backbone(h).mean(dim=1))[:, 0]


def knn_regress(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, k: int,
                chunk: int = 1000) -> np.ndarray:
    """k-NN regression (uniform weights), chunked over test points."""
    out = np.empty(len(x_test))
    k = min(k, len(x_train))
    for s in range(0, len(x_test), chunk):
        dist = ((x_test[s:s + chunk, None, :] - x_train[None]) ** 2).sum(-1)
        idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
        out[s:s + chunk] = y_train[idx].mean(axis=1)
    return out


class HolderFitTask:
    """Trainer task of one fit: minibatch MSE on the training split; ``evaluate`` measures the
    holdout MSE and keeps the best weights so far (early stopping). The best weights are task
    state saved in the checkpoint, so a resumed fit keeps them."""

    tokens_per_sample = 1

    def __init__(self, xt: torch.Tensor, yt: torch.Tensor, xh: torch.Tensor, yh: torch.Tensor):
        self.xt, self.yt, self.xh, self.yh = xt, yt, xh, yh
        self.step = 0
        self.best: dict[str, Any] = {"mse": float("inf"), "step": -1, "weights": {}}

    def set_step(self, step: int) -> None:
        self.step = step

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(rng.integers(0, len(self.xt), size=min(batch_size, len(self.xt))))
        return {"x": self.xt[idx], "y": self.yt[idx]}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((model(batch["x"]) - batch["y"]) ** 2).mean()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        h = float(((model(self.xh) - self.yh) ** 2).mean())
        if h < self.best["mse"]:
            self.best = {"mse": h, "step": self.step + 1,
                         "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        return {"holdout_mse": h}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state["best"])


def fit_transformer(x: np.ndarray, y: np.ndarray, d: int, alpha: float, cfg: Config,
                    seed: int, run_dir: Path) -> tuple[PoURegressor, dict[str, float]]:
    """Train on 80% of (x, y) with early stopping on the other 20% (Trainer run ``run_dir``,
    resumed when ``cfg.resume``); returns the best model."""
    from icarena.pretraining.train import train

    n = len(x)
    rng = np.random.default_rng([seed, 1])
    perm = rng.permutation(n)
    n_hold = max(1, n // 5)
    hold, tr = perm[:n_hold], perm[n_hold:]
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    task = HolderFitTask(as_t(x[tr]), as_t(y[tr]), as_t(x[hold]), as_t(y[hold]))
    torch.manual_seed(seed)
    tokens, hidden = model_size(n, d, alpha, cfg)
    model = PoURegressor(d, tokens, cfg.model.d_model, cfg.model.n_heads, hidden)
    tcfg = dataclasses.replace(cfg.train, seed=seed,
                               warmup_steps=min(cfg.train.warmup_steps, cfg.train.steps))
    config = {"model": {"d": d, "tokens": tokens, "d_model": cfg.model.d_model,
                        "n_heads": cfg.model.n_heads, "hidden": hidden},
              "task": {"d": d, "alpha": alpha, "n": n, "seed": seed, "target": cfg.data.target}}
    train(model, task, tcfg, run_dir, config=config, resume=cfg.resume)
    model.load_state_dict(task.best["weights"])
    model.eval()
    return model, {"holdout_mse": task.best["mse"], "best_step": task.best["step"],
                   "tokens": tokens, "hidden": hidden,
                   "params": sum(p.numel() for p in model.parameters())}


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Fit every (seed, case, n), measure test MSE, fit slopes, write the report.

    Seeds are the outer loop, so an interrupted run resumed (``--resume``) with fewer
    ``data.n_seeds`` reuses the fits of the seeds it finished."""
    from icarena.evaluation.report import (
        markdown_table,
        summary_metrics,
        write_metrics,
        write_report,
    )
    from icarena.pretraining.data.store import atomic_write_json

    cfg.validate()
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    ns = [2**e for e in range(cfg.data.log2_n_min, cfg.data.log2_n_max + 1)]
    target = cfg.data.target
    t_start = time.perf_counter()
    cases = [(int(d), float(alpha)) for d, alpha in cfg.data.cases]
    records: list[list[dict[str, Any]]] = [[] for _ in cases]
    for s in range(cfg.data.n_seeds):
        for ci, (d, alpha) in enumerate(cases):
            x_test = eval_points(cfg, ci, s, d)
            f_test = rate_target(target, x_test, alpha)
            for n in ns:
                seed = cfg.seed * 1_000_003 + ci * 10_007 + n * 31 + s
                rng = np.random.default_rng([seed, 0])
                x = rng.random((n, d))
                y = rate_target(target, x, alpha) + NOISE_STD * rng.standard_normal(n)
                t0 = time.perf_counter()
                model, info = fit_transformer(x, y, d, alpha, cfg, seed,
                                              out / "fits" / f"d{d}_a{alpha:g}_n{n}_s{s}")
                with torch.no_grad():
                    pred = model(torch.as_tensor(x_test, dtype=torch.float32)).double().numpy()
                k_nn = math.ceil(n ** (2 * alpha / (2 * alpha + d)))
                knn_mse = float(np.mean((knn_regress(x, y, x_test, k_nn) - f_test) ** 2))
                records[ci].append({"n": n, "seed": s,
                                    "mse": float(np.mean((pred - f_test) ** 2)),
                                    "knn_k": k_nn, "knn_mse": knn_mse,
                                    "seconds": time.perf_counter() - t0, **info})
    multi = cfg.data.n_seeds >= 2
    results: dict[str, Any] = {}
    rows, table = [], []
    for ci, (d, alpha) in enumerate(cases):
        recs = sorted(records[ci], key=lambda r: (r["n"], r["seed"]))
        theory = theory_slope(d, alpha)
        tr, kn = slope_summary(recs, "mse", theory), slope_summary(recs, "knn_mse", theory)
        key = f"d={d},alpha={alpha:g}"
        res = {"d": d, "alpha": alpha, "theory_slope": theory,
               "transformer_slope": tr["slope"], "transformer_slope_se": tr["se"],
               "knn_slope": kn["slope"], "knn_slope_se": kn["se"],
               "within_0.15": tr["within"], "knn_within_0.15": kn["within"]}
        row: dict[str, Any] = {"case": key, "theory": round(theory, 3)}
        if multi:
            for name, r in (("transformer", tr), ("knn", kn)):
                res.update({f"{name}_seed_slopes": r["seed_slopes"],
                            f"{name}_slope_mean": r["mean"], f"{name}_slope_ci95": r["ci95"]})
                row.update({name: round(r["mean"], 3),
                            f"{name}_ci95": [round(v, 3) for v in r["ci95"]],
                            f"{name}_seeds": [round(v, 3) for v in r["seed_slopes"]]})
            table.append([key, f"{theory:.3f}",
                          f"{tr['mean']:.3f} [{tr['ci95'][0]:.3f}, {tr['ci95'][1]:.3f}]",
                          ", ".join(f"{v:.3f}" for v in tr["seed_slopes"]),
                          f"{kn['mean']:.3f} [{kn['ci95'][0]:.3f}, {kn['ci95'][1]:.3f}]",
                          ", ".join(f"{v:.3f}" for v in kn["seed_slopes"]),
                          "yes" if tr["within"] else "NO", "yes" if kn["within"] else "NO"])
        else:
            row.update({"transformer": round(tr["slope"], 3), "se": round(tr["se"], 3),
                        "knn": round(kn["slope"], 3)})
            table.append([key, f"{theory:.3f}", f"{tr['slope']:.3f} ± {tr['se']:.3f}",
                          f"{kn['slope']:.3f} ± {kn['se']:.3f}",
                          "yes" if tr["within"] else "NO", "yes" if kn["within"] else "NO"])
        row.update({"within_0.15": tr["within"], "knn_within_0.15": kn["within"]})
        results[key] = {**res, "records": recs}
        rows.append(row)
    seconds = time.perf_counter() - t_start
    write_metrics(out, {"cases": results, "seconds": seconds, "ns": ns, "target": target,
                        "n_seeds": cfg.data.n_seeds, **summary_metrics(rows)})
    _plot(out / "rate.png", results)
    detail = []
    for key, r in results.items():
        detail.append(f"### {key}\n\n" + markdown_table(
            ["n", "seed", "tokens N", "FFN width", "params", "test MSE", "best step",
             "k-NN (k) MSE"],
            [[rec["n"], rec["seed"], rec["tokens"], rec["hidden"], rec["params"], rec["mse"],
              rec["best_step"],
              f"{rec['knn_mse']:.4g} ({rec['knn_k']})"] for rec in r["records"]]))
    formula = {"cusp": "f(x) = Σ|x_i − ½|^α",
               "lacunary": "f(x) = c Σ_{j≤24} 2^{-jα} Π_i cos(2π 2^j x_i + θ_{j,i}) (lacunary)"}
    if multi:
        headers = ["case", "theory −2α/(2α+d)", "transformer mean [95% t interval]",
                   "transformer per seed", "k-NN mean [95% t interval]", "k-NN per seed",
                   "transformer mean ±0.15", "k-NN mean ±0.15"]
        how = ("Each seed's slope is fitted over n on that seed's points only (its own data, "
               "initialisation and test points); the verdict judges the mean of the seeds' "
               "slopes.")
    else:
        headers = ["case", "theory −2α/(2α+d)", "transformer", "k-NN control",
                   "transformer ±0.15", "k-NN ±0.15"]
        how = "Slopes ± their standard errors (least squares over all points)."
    title = "regression-rate: PoU-Transformer (reconstruction) on Hölder targets"
    report = write_report(out, title, [
        f"Target `{target}`: {formula[target]} on [0,1]^d, noise σ = {NOISE_STD}, n = "
        f"2^{cfg.data.log2_n_min}..2^{cfg.data.log2_n_max}, {cfg.data.n_seeds} seed(s); test MSE "
        f"on {cfg.eval.n_test} noiseless points. Total time {seconds:.0f} s.",
        "## Fitted slopes of log MSE vs log n\n\n" + how + "\n\n"
        + markdown_table(headers, table),
        "![rate](rate.png)",
        "## Per-fit measurements\n\n" + "\n\n".join(detail),
    ])
    return {"report": str(report), "rows": rows}


def _plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from icarena.evaluation.report import save_figure

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for key, r in results.items():
        recs = r["records"]
        ns = sorted({rec["n"] for rec in recs})
        mse = [np.mean([rec["mse"] for rec in recs if rec["n"] == n]) for n in ns]
        knn = [np.mean([rec["knn_mse"] for rec in recs if rec["n"] == n]) for n in ns]
        tslope = r.get("transformer_slope_mean", r["transformer_slope"])
        kslope = r.get("knn_slope_mean", r["knn_slope"])
        label = f"PoU-T {key} (slope {tslope:.2f}, theory {r['theory_slope']:.2f})"
        (line,) = ax.plot(ns, mse, marker="o", label=label)
        ax.plot(ns, knn, ls="--", marker="x", color=line.get_color(),
                label=f"k-NN {key} (slope {kslope:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (samples)")
    ax.set_ylabel("test MSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    save_figure(fig, path)

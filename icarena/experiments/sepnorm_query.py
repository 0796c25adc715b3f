"""``icarena run sepnorm-query``: SepNorm vs ShareNorm on a task read at one special position.

Chen, Wang, Du, Hassoun, Liu, "On Separate Normalization in Self-supervised Transformers",
NeurIPS 2023 (arXiv 2309.12931), report that normalising the [CLS] token apart from the other
tokens (BatchNorm for [CLS], LayerNorm for the rest: *SepNorm*) instead of one LayerNorm for every
position (*ShareNorm*) gains 2.7% on average over image, language and graph tasks. This
experiment asks the same question of in-context learning, on a task whose only answer is read
at a special position: noisy linear regression read at a query token placed first in a
bidirectional model (:mod:`icarena.pretraining.data.query_regression`):

    tokens (x_q, 0, 1), (x_1, y_1, 0), ..., (x_n, y_n, 0), padding;  prediction = out[0]

Variants (:data:`VARIANTS`), each the same 3-layer width-64 transformer, steps, batch, schedule,
data and seeds; only the norms differ:

===============  ========================================================================
``sharenorm``    GPT blocks (pre-LN), one LayerNorm for every position (the reference)
``sepnorm``      the paper's SepNorm: BatchNorm at the query position, LayerNorm elsewhere,
                 in every norm of the network (``scope="all"``)
``sepnorm-ln``   a separate LayerNorm (own parameters) at the query position
``sepnorm-final``  the paper's SepNorm in the final norm only (``scope="final"``)
===============  ========================================================================

Metric: normalised squared error (/ d) of y_i predicted from the first i points of held-out
prompts, i = 1..k, averaged over i (``err_mean``), beside least squares and ridge with
λ = σ², which is the Bayes-optimal predictor for w ~ N(0, I) and N(0, σ²) label noise (the floor
for any learner). Seeds: ``n_seeds`` seeds (``seed``, ``seed + 1``, ...), each with its own
initialisation, prompt stream and held-out prompts (``eval.seed + seed``). A variant is
compared with the reference by the paired per-seed differences of ``err_mean`` and their 95%
Student-t interval: *lower* / *higher* error when the interval excludes 0, else *not
distinguishable*.

Each cell (variant, seed) is a Trainer run dir ``out_dir/cells/<variant>/seed<s>``; ``--resume``
continues every cell from its checkpoint (finished cells are only re-evaluated). Measured
results: ``docs/results/sepnorm-query.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import check
from icarena.lifecycle import writes_run
from icarena.pretraining.train import TrainConfig

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sharenorm": ("gpt", {}),
    "sepnorm": ("sepnorm", {"special_norm": "batchnorm", "scope": "all"}),
    "sepnorm-ln": ("sepnorm", {"special_norm": "layernorm", "scope": "all"}),
    "sepnorm-final": ("sepnorm", {"special_norm": "batchnorm", "scope": "final"}),
}
"""Variant name -> (backbone, backbone options)."""


@dataclass
class QueryData:
    """The prompts: noisy linear regression, the answer read at the query token."""

    d: int = 5
    """Input dimension."""
    k: int = 10
    """Most context pairs per prompt (training draws 1..k per prompt; evaluation reads 1..k)."""
    noise_std: float = 0.5
    """Label noise σ (ridge with λ = σ² is then Bayes-optimal)."""


@dataclass
class QueryModel:
    """The transformer of every variant (bidirectional; the variants differ only in norms)."""

    d_model: int = 64
    """Width of the token states."""
    n_layers: int = 3
    """Blocks."""
    n_heads: int = 2
    """Attention heads."""


def _default_train() -> TrainConfig:
    return TrainConfig(steps=6000, batch_size=64, lr=1e-3, min_lr=0.0, warmup_steps=200,
                       weight_decay=0.0, eval_every=0, ckpt_every=2000)


@dataclass
class QueryEval:
    """Held-out prompts and intervals."""

    n_prompts: int = 1280
    """Held-out prompts per seed."""
    seed: int = 1234
    """Seed of the held-out prompts of the first seed (seed s uses eval.seed + s)."""


@dataclass
class Config:
    """SepNorm vs ShareNorm on in-context regression read at a query token, over seeds."""

    out_dir: str = "runs/sepnorm-query"
    """Run directory (one Trainer run dir per variant and seed under cells/)."""
    seed: int = 0
    """First seed (seeds are seed, seed + 1, ...)."""
    n_seeds: int = 3
    """Seeds per variant (>= 2 for the intervals)."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished): every cell from its checkpoint."""
    variants: list[str] = field(
        default_factory=lambda: ["sharenorm", "sepnorm", "sepnorm-ln", "sepnorm-final"])
    """Variants to train (the first is the reference of the comparisons): sharenorm, sepnorm,
    sepnorm-ln, sepnorm-final."""
    data: QueryData = field(default_factory=QueryData)
    """The prompts."""
    model: QueryModel = field(default_factory=QueryModel)
    """The transformer of every variant."""
    train: TrainConfig = field(default_factory=_default_train)
    """Optimisation of every cell (the seed comes from the cell)."""
    eval: QueryEval = field(default_factory=QueryEval)
    """Held-out prompts."""

    def validate(self) -> None:
        check(self.n_seeds >= 1, f"n_seeds must be >= 1, got {self.n_seeds}")
        check(len(self.variants) >= 1, "variants must name at least one variant")
        for v in self.variants:
            check(v in VARIANTS, f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
        check(len(set(self.variants)) == len(self.variants),
              f"variants must not repeat, got {self.variants}")
        check(self.data.d >= 1 and self.data.k >= 1,
              f"data.d and data.k must be >= 1, got {self.data.d} and {self.data.k}")
        check(self.data.noise_std >= 0 and np.isfinite(self.data.noise_std),
              f"data.noise_std must be a finite number >= 0, got {self.data.noise_std}")
        check(self.eval.n_prompts >= 2, f"eval.n_prompts must be >= 2, got {self.eval.n_prompts}")
        check(self.train.batch_size >= 2, "train.batch_size must be >= 2: BatchNorm at the query "
              f"position needs 2 prompts per batch, got {self.train.batch_size}")
        self.train.validate()


def quick_config(out_dir: str) -> Config:
    """A tiny version for quickstart and tests; the comparison is not meaningful."""
    return Config(out_dir=out_dir, n_seeds=2, variants=["sharenorm", "sepnorm"],
                  data=QueryData(d=2, k=4), model=QueryModel(d_model=16, n_layers=1),
                  train=dataclasses.replace(_default_train(), steps=30, batch_size=16,
                                            warmup_steps=5, progress=False),
                  eval=QueryEval(n_prompts=64))


def model_config(variant: str, d: int, k: int, size: QueryModel) -> Any:
    """The ModelConfig of ``variant``: bidirectional over the k + 1 tokens of width d + 2, one
    output read at position 0."""
    from icarena.pretraining.model import ModelConfig, ModelSpec

    backbone, options = VARIANTS[variant]
    spec = ModelSpec(backbone=backbone, d_model=size.d_model, n_layers=size.n_layers,
                     n_heads=size.n_heads, options=dict(options))
    return ModelConfig(backbone=backbone, backbone_cfg=spec.backbone_cfg(causal=False,
                                                                         max_len=k + 1),
                       input_kind="vectors", input_dim=d + 2, output_dim=1)


def train_cell(cfg: Config, variant: str, seed: int) -> tuple[Any, Any, Any]:
    """Train (or resume) one cell; returns (model in eval mode, task, TrainResult)."""
    from icarena.envs.regression import make_family
    from icarena.pretraining.data.query_regression import QueryRegressionTask
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.train import seed_everything, train

    family = make_family("linear", cfg.data.d, noise_std=cfg.data.noise_std)
    task = QueryRegressionTask(family, cfg.data.k, n_eval=cfg.eval.n_prompts,
                               eval_seed=cfg.eval.seed + seed)
    mcfg = model_config(variant, cfg.data.d, cfg.data.k, cfg.model)
    seed_everything(seed)
    net = SequenceModel(mcfg)
    tcfg = dataclasses.replace(cfg.train, seed=seed, warmup_steps=min(cfg.train.warmup_steps,
                                                                      cfg.train.steps))
    config = {"experiment": dataclasses.asdict(cfg), "variant": variant,
              "task": {"family": family.to_dict(), "k": cfg.data.k, "read_at": "query token"},
              "evaluation": {"n_eval": cfg.eval.n_prompts, "eval_seed": cfg.eval.seed + seed},
              "model": dataclasses.asdict(mcfg)}
    result = train(net, task, tcfg, Path(cfg.out_dir) / "cells" / variant / f"seed{seed}",
                   config=config, resume=cfg.resume)
    return net.eval(), task, result


def cell_errors(cfg: Config, model: Any, task: Any) -> dict[str, np.ndarray]:
    """Per-prompt normalised squared errors (P, k) at i = 1..k in-context points of the model,
    least squares and (with noise) Bayes-optimal ridge, on the cell's held-out prompts."""
    from icarena.evaluation.regression import evaluate_regressors

    regs: dict[str, Any] = {"transformer": task.predictor(model),
                            "least_squares": ("least_squares", {})}
    if cfg.data.noise_std > 0:
        regs["ridge (Bayes)"] = ("ridge", {"lam": cfg.data.noise_std ** 2})
    p = task.eval_prompts
    curves = evaluate_regressors(p.x, p.y, regs, normaliser=task.normaliser, n_boot=1)
    return {name: e[:, 1:] for name, e in curves.errors.items()}


def compare(per_seed: dict[str, list[float]], reference: str) -> list[dict[str, Any]]:
    """Summary rows: each variant's mean over seeds with its 95% t-interval, and the paired
    difference to ``reference`` (same seeds) with its interval, relative change and verdict."""
    from icarena.evaluation.intervals import t_interval

    ref = np.asarray(per_seed[reference])
    rows = []
    for name, values in per_seed.items():
        mean, lo, hi = t_interval(values)
        row: dict[str, Any] = {"variant": name, "err_mean": round(mean, 4),
                               "ci95": [round(lo, 4), round(hi, 4)]}
        if name != reference and len(values) >= 2:
            diff = np.asarray(values) - ref
            d_mean, d_lo, d_hi = t_interval(diff)
            row.update({f"minus_{reference}": round(d_mean, 4),
                        "diff_ci95": [round(d_lo, 4), round(d_hi, 4)],
                        "relative_change_%": round(100 * d_mean / float(ref.mean()), 1),
                        "verdict": ("lower error" if d_hi < 0 else "higher error" if d_lo > 0
                                    else "not distinguishable")})
        rows.append(row)
    return rows


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Train every (variant, seed) cell, evaluate on held-out prompts, compare with the
    reference variant, write metrics.json / report.md / error_vs_k.png."""
    from icarena.evaluation.report import line_plot, markdown_table, write_metrics, write_report
    from icarena.pretraining.data.store import atomic_write_json

    cfg.validate()
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    seeds = [cfg.seed + i for i in range(cfg.n_seeds)]
    cells, curves = [], {}
    per_seed: dict[str, list[float]] = {v: [] for v in cfg.variants}
    for seed in seeds:  # seeds outermost: an interrupted run has whole seeds done first
        for variant in cfg.variants:
            model, task, result = train_cell(cfg, variant, seed)
            errors = cell_errors(cfg, model, task)
            err = errors["transformer"]
            per_seed[variant].append(float(err.mean()))
            curves.setdefault(variant, []).append(err.mean(axis=0))
            if variant == cfg.variants[0]:  # the baselines once per seed's prompts
                for name, e in errors.items():
                    if name != "transformer":
                        curves.setdefault(name, []).append(e.mean(axis=0))
            cells.append({"variant": variant, "seed": seed, "eval_seed": cfg.eval.seed + seed,
                          "err_mean": float(err.mean()), "err_at_k": float(err[:, -1].mean()),
                          "baselines_err_mean": {n: float(e.mean()) for n, e in errors.items()
                                                 if n != "transformer"},
                          "curve": err.mean(axis=0).tolist(),
                          "final_loss": (float(np.mean(result.losses[-100:]))
                                         if result.losses else None),
                          "train_seconds": result.seconds})
    rows = compare(per_seed, cfg.variants[0])
    ks = np.arange(1, cfg.data.k + 1)
    mean_curves = {name: np.mean(c, axis=0) for name, c in curves.items()}
    # least squares is left out of the plot: near n = d its error is orders of magnitude larger
    shown = {n: c for n, c in mean_curves.items() if n != "least_squares"}
    line_plot(out / "error_vs_k.png", ks, shown, xlabel="in-context examples",
              ylabel="normalised squared error (mean over seeds)",
              title=f"query read-out, d={cfg.data.d}, σ={cfg.data.noise_std:g}")
    baselines = {n: float(np.mean(c)) for n, c in mean_curves.items() if n not in per_seed}
    columns = ["variant", "err_mean", "ci95", f"minus_{cfg.variants[0]}", "diff_ci95",
               "relative_change_%", "verdict"]
    write_metrics(out, {"rows": rows, "columns": columns, "cells": cells,
                        "baselines_err_mean": baselines, "seeds": seeds,
                        "reference": cfg.variants[0]})
    table = markdown_table(columns, [[r.get(c, "") for c in columns] for r in rows])
    cell_table = markdown_table(
        ["variant", "seed", "err_mean", "err at k", "train s"],
        [[c["variant"], c["seed"], c["err_mean"], c["err_at_k"], round(c["train_seconds"])]
         for c in cells])
    report = write_report(out, "sepnorm-query: separate norm of the query token", [
        f"Noisy linear regression (d = {cfg.data.d}, σ = {cfg.data.noise_std:g}, up to k = "
        f"{cfg.data.k} context pairs) read at a query token first in a bidirectional "
        f"{cfg.model.n_layers}-layer width-{cfg.model.d_model} transformer; {cfg.train.steps} "
        f"steps of batch {cfg.train.batch_size}; seeds {seeds}, each with its own held-out "
        f"{cfg.eval.n_prompts} prompts. err_mean: normalised squared error averaged over "
        "1..k in-context points; mean over seeds [95% t-interval]; the difference to the "
        f"reference ({cfg.variants[0]}) is paired by seed.",
        table,
        "Baselines (mean over seeds): " + ", ".join(f"{n} {v:.4f}" for n, v in
                                                     baselines.items()) + ".",
        "## Cells\n\n" + cell_table,
        "![error vs k](error_vs_k.png)",
    ])
    return {"report": str(report), "rows": rows}

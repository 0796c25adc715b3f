"""``icarena run backbones``: every registered backbone on three in-context tasks, at 3 seeds.

The same read-in -> backbone -> read-out model is trained with each registered backbone
(:func:`icarena.pretraining.backbones.available`) on up to three in-context tasks, with the
**same** steps, batch, schedule, width, depth, heads, data and seeds for every backbone of a
task, and scored by that task's own metric:

=================  ===========================================  =============================
task               setting                                      metric (lower/higher better)
=================  ===========================================  =============================
``regression``     Garg et al. 2022 linear regression, d = 3,   squared error / d at
                   k = 7 fresh prompts every step (causal)      k = 2d in-context examples (↓)
``alpine``         ALPINE (Wang et al. 2024) random DAG,        path validity of sampled
                   n = 50, p = 0.1, next-token LM               completions on test pairs (↑)
``icgp``           ICGP decentralized (Shi et al. 2024): each   final Nash gap of the averaged
                   player imitates EXP3 on 5x5 matrix games,    policies / EXP3's on the same
                   K = 100 episodes, own stream + probability   held-out games (↓)
=================  ===========================================  =============================

(Garg et al. 2022, arXiv 2208.01066; Wang et al. 2024, arXiv 2405.09220; Shi et al. 2024, arXiv
2410.09701.) The task sizes are chosen so that the reference backbone, GPT, clearly learns each
task within the budget (:data:`THRESHOLDS`: err@2d <= 0.2, path validity >= 0.8, gap ratio <= 1.3
and at most halfway from EXP3's gap to uniform play's), checked at every seed and written to
``metrics.json["acceptance"]``. Beside the metric every cell reports parameters, training
throughput (tokens/s, ms/step; evaluation excluded), peak memory and its loss curve.

**Seeds and intervals.** ``--n-seeds`` seeds (``seed``, ``seed + 1``, ...; default 3): each has
its own data (ALPINE graph, pretraining games), initialisation, batches and held-out set
(``eval_seed + seed``). A cell of the table is the mean over seeds with a 95% Student-t
interval; a backbone is *distinguishable from GPT* on a task when the 95% t-interval of the
paired differences (same seed, same data) excludes 0.

**Learning rates.** Where the papers give none, each backbone gets the peak learning rate that
won a small sweep (:data:`LR_GRID`, the same grid for every backbone and task) on a seed outside
the reported ones: :data:`TUNED_LR`. ``--train.lr-sweep 1e-3 3e-3 --seed 100 --n-seeds 1``
reruns that sweep (its report names the best rate per task and backbone); ``--train.TASK.lr X``
sets one rate for every backbone of that task.

Choices the spec leaves open (documented here):

* **Causality.** All three tasks are next-token / every-prefix tasks, so every backbone is built
  with ``causal=True``. BiXT has no causal form in its paper; it runs icarena's causal
  ``latent_scan`` mode (per-position latents updated by cumulative sums: cost linear in the
  sequence; :mod:`icarena.pretraining.backbones.bixt`), ``--model.options bixt.mode
  prefix_reencode`` gives the exact but O(T^2) per-prefix encoding. ``local_global``
  (bidirectional by default) is masked.
* **Supernet.** ``supernet`` trained like a plain network would always run its max
  sub-network, i.e. exactly ``gpt`` (same parameter names, same init). It is therefore trained
  the S3/AutoFormer way, uniform single-path (a random sub-network each step,
  :class:`icarena.pretraining.search.SupernetTask`), and **scored at its max sub-network**; the
  row measures what weight sharing costs the largest sub-network at an equal step budget.
* **ICGP players.** One model per player (``max`` and ``min``), trained one after the other on
  the same batches indices; the cell's ms/step, parameters and loss curve cover both models
  (loss: their mean). The step token is ``slot_prob`` (the player's own probability of its
  action rides along; :mod:`icarena.experiments.icgp_decentralized` says why).
* **Peak memory.** On CPU the only portable peak is the process's max RSS, which never goes
  down, so with ``isolate=True`` (default) each cell runs in a fresh ``spawn``-like subprocess and
  reports its own peak RSS and the growth of the peak during the cell (``peak_mem_mb`` - RSS
  after imports and data loading). On CUDA it is ``torch.cuda.max_memory_allocated`` of that
  process. With ``isolate=False`` (tests, quick runs) the cells share a process and the memory
  columns are NaN.
* **Parallel cells.** ``--train.workers`` cells run at once (each its own process, with
  ``--train.threads`` torch threads, 1 by default when several run); results do not depend on it.
* **Data.** The ALPINE dataset and the EXP3 trajectories are generated once per seed into
  ``out_dir/data/<task>/seed<s>`` (reused when the config matches) and shared by all backbones,
  so every backbone sees the same batches (the Trainer draws step i from ``[seed, rank, i]``).

Outputs in ``out_dir``: ``config.json``, ``metrics.json`` (every cell incl. its loss curve, the
summary per task and backbone, the acceptance), ``report.md``, ``loss_<task>.png`` (every
backbone's loss curve, mean over seeds), ``sympformer_vs_gpt.png``,
``cells/<task>/<backbone>/seed<s>/`` (a normal run dir per cell, with ``cell.json``, the cell's
result, written as soon as the cell ends; ``--resume`` keeps finished cells). Measured tables,
the sweep and the cost: ``docs/results/backbones.md``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icarena.errors import check
from icarena.evaluation.intervals import t_interval
from icarena.lifecycle import writes_run
from icarena.pretraining.model import Options

TASKS: tuple[str, ...] = ("regression", "alpine", "icgp")
"""Tasks of the comparison, in report order."""

METRICS: dict[str, tuple[str, str]] = {
    "regression": ("err@2d", "squared error / d at k = 2d in-context examples (lower is better)"),
    "alpine": ("path_valid", "fraction of valid sampled paths on test pairs (higher is better)"),
    "icgp": ("gap_ratio", "final Nash gap of the averaged policies / EXP3's on the same games "
             "(lower is better)"),
}

THRESHOLDS: dict[str, tuple[str, float]] = {
    "regression": ("<=", 0.2), "alpine": (">=", 0.8), "icgp": ("<=", 1.3)}
"""What "learns the task" means (GPT must meet it at every seed at the defaults). ICGP also needs
the gap at most halfway from EXP3's to uniform play's (``gap_ratio <= (1 + uniform_ratio) / 2``),
so that a task where uniform play already meets 1.3 cannot pass."""

LR_GRID: tuple[float, ...] = (1e-3, 3e-3)
"""The learning-rate sweep's grid (the same for every backbone and task)."""

TUNED_LR: dict[str, dict[str, float]] = {
    "regression": {"bixt": 1e-3, "gpt": 1e-3, "linear": 1e-3, "local_global": 1e-3,
                   "sepnorm": 1e-3, "supernet": 1e-3, "sympformer": 3e-3},
    "alpine": {"bixt": 1e-3, "gpt": 3e-3, "linear": 3e-3, "local_global": 1e-3,
               "sepnorm": 3e-3, "supernet": 3e-3, "sympformer": 3e-3},
    "icgp": {"bixt": 1e-3, "gpt": 3e-3, "linear": 3e-3, "local_global": 3e-3, "sepnorm": 3e-3,
             "supernet": 3e-3, "sympformer": 1e-3},
}
"""Peak learning rate per task and backbone: the sweep's winner (docs/results/backbones.md);
a backbone not listed (e.g. a plugin) gets :data:`DEFAULT_LR`."""

DEFAULT_LR = 1e-3
"""Learning rate of a backbone the sweep did not cover."""

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "bixt": {"mode": "latent_scan", "n_latents": 4, "d_latent": 16}}
"""Backbone options of the comparison (``--model.options`` adds to / overrides them): BiXT in its
linear-cost causal mode, with 4 latents of width 16 (a latent-scan step costs about M times a
GPT step of the latent width; the paper's 64 latents would dominate the whole run)."""


# ----------------------------------------------------------------------------------- config
# The user sets the comparison in the four groups every experiment has (--data.*, --model.*,
# --train.*, --eval.*), each with one section per task (e.g. --train.regression.steps); a cell
# sees its task's settings merged into one flat spec (RegressionSpec, AlpineSpec, IcgpSpec).
@dataclass
class Budget:
    """Optimisation budget of one task (the same for every backbone)."""

    steps: int = 500
    """Training steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 0.0
    """Peak AdamW learning rate (warm-up, then cosine decay); 0: each backbone's rate from the
    sweep (TUNED_LR)."""
    warmup_steps: int = 50
    """Linear warm-up steps."""


@dataclass
class Size:
    """Backbone size of one task (the same for every backbone)."""

    d_model: int = 64
    """Backbone width."""
    n_layers: int = 3
    """Backbone depth."""
    n_heads: int = 2
    """Attention heads."""


@dataclass
class RegressionData:
    """Garg et al. linear regression: fresh prompts every step."""

    d: int = 3
    """Input dimension."""
    k: int = 7
    """Points per prompt (must exceed 2d: the metric reads k = 2d)."""


@dataclass
class AlpineData:
    """ALPINE random DAG (written once per seed to out_dir/data/alpine/seed<s>)."""

    nodes: int = 50
    """Graph nodes n."""
    p: float = 0.1
    """Edge probability of the random DAG."""
    paths_per_pair: int = 20
    """Random-walk training lines per train pair."""


@dataclass
class IcgpData:
    """Decentralized ICGP: EXP3 trajectories on 5x5 matrix games (out_dir/data/icgp/seed<s>)."""

    episodes: int = 100
    """K episodes per trajectory (T = K tokens)."""
    n_games: int = 20
    """Pretraining games."""
    trajectories_per_game: int = 5
    """EXP3 runs per pretraining game."""
    context_options: Options = field(default_factory=dict)
    """EXP3 options, e.g. --data.icgp.context-options eta 0.1."""


@dataclass
class Data:
    """Which tasks, and each task's data."""

    tasks: tuple[str, ...] = ()
    """Tasks: regression, alpine, icgp (empty: all)."""
    regression: RegressionData = field(default_factory=RegressionData)
    """regression prompts."""
    alpine: AlpineData = field(default_factory=AlpineData)
    """alpine dataset."""
    icgp: IcgpData = field(default_factory=IcgpData)
    """icgp trajectories."""


@dataclass
class Model:
    """Which backbones, their extra options and each task's size."""

    backbones: tuple[str, ...] = ()
    """Backbones to compare (empty: every registered one)."""
    exclude: tuple[str, ...] = ()
    """Backbones to leave out, e.g. 'bixt'."""
    options: Options = field(default_factory=dict)
    """Extra options of one backbone as BACKBONE.OPTION VALUE pairs, on top of DEFAULT_OPTIONS,
    e.g. --model.options bixt.n_latents 16 sympformer.momentum 0.5."""
    regression: Size = field(default_factory=lambda: Size(64, 3, 2))
    """regression model size."""
    alpine: Size = field(default_factory=lambda: Size(120, 1, 1))
    """alpine model size (ALPINE's analysed model: width 120, 1 layer, 1 head)."""
    icgp: Size = field(default_factory=lambda: Size(32, 3, 4))
    """icgp model size (of each player's model)."""


@dataclass
class Train:
    """Each task's budget, the learning-rate sweep, and where the cells run."""

    regression: Budget = field(default_factory=lambda: Budget(4000, 64, 0.0, 100))
    """regression budget (cosine to 0)."""
    alpine: Budget = field(default_factory=lambda: Budget(1000, 64, 0.0, 50))
    """alpine budget (cosine to lr / 10)."""
    icgp: Budget = field(default_factory=lambda: Budget(600, 16, 0.0, 50))
    """icgp budget per player (cosine to lr / 10)."""
    lr_sweep: tuple[float, ...] = ()
    """Run the learning-rate sweep instead: every cell at each of these rates, e.g.
    --train.lr-sweep 3e-4 1e-3 3e-3 (the report names each backbone's best rate per task)."""
    workers: int = 2
    """Cells run at once, each in its own process (with isolate); 1: one after the other."""
    isolate: bool = True
    """Run each cell in a fresh subprocess (honest per-cell peak memory; costs the process start
    and imports of each cell)."""
    threads: int = 0
    """torch CPU threads per cell (0: 1 when several cells run at once, else torch's default)."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto'."""


@dataclass
class RegressionEval:
    """Held-out regression prompts."""

    n_eval: int = 640
    """Held-out prompts."""
    eval_seed: int = 1234
    """Seed of the held-out prompts (seed s uses eval_seed + s)."""


@dataclass
class AlpineEval:
    """Sampled completions on test pairs."""

    n_prompts: int = 200
    """Test pairs drawn (with replacement) for the path-validity metric."""
    samples_per_prompt: int = 5
    """Completions sampled (temperature 1) per drawn pair."""


@dataclass
class IcgpEval:
    """Held-out games."""

    eval_games: int = 10
    """Held-out games for the Nash gap."""
    eval_seed: int = 1000
    """Seed of the held-out games (seed s uses eval_seed + s)."""


@dataclass
class Eval:
    """Each task's held-out data, and the report's curves."""

    regression: RegressionEval = field(default_factory=RegressionEval)
    """regression evaluation."""
    alpine: AlpineEval = field(default_factory=AlpineEval)
    """alpine evaluation."""
    icgp: IcgpEval = field(default_factory=IcgpEval)
    """icgp evaluation."""
    smoothing: float = 0.95
    """EMA factor of the plotted training-loss curves (0: raw)."""


@dataclass
class RegressionSpec(Budget, Size, RegressionData, RegressionEval):
    """Everything a regression cell uses (merged from the four groups)."""


@dataclass
class AlpineSpec(Budget, Size, AlpineData, AlpineEval):
    """Everything an alpine cell uses (merged from the four groups)."""


@dataclass
class IcgpSpec(Budget, Size, IcgpData, IcgpEval):
    """Everything an icgp cell uses (merged from the four groups)."""


SPECS = {"regression": RegressionSpec, "alpine": AlpineSpec, "icgp": IcgpSpec}


@dataclass
class Config:
    """Train every backbone on every task at several seeds; one comparison table."""

    out_dir: str = "runs/backbones"
    """Run directory (report, metrics, plots, data/, cells/<task>/<backbone>/seed<s>/)."""
    seed: int = 0
    """First seed of the datasets, inits, batches and sampling (same for every backbone)."""
    n_seeds: int = 3
    """Seeds seed, seed + 1, ..., each with its own data and held-out set."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir: finished cells are kept, the others resume or start."""
    data: Data = field(default_factory=Data)
    """Tasks and their data."""
    model: Model = field(default_factory=Model)
    """Backbones and each task's model size."""
    train: Train = field(default_factory=Train)
    """Each task's budget, the sweep and the cells' device."""
    eval: Eval = field(default_factory=Eval)
    """Each task's held-out data."""

    def spec(self, task: str) -> RegressionSpec | AlpineSpec | IcgpSpec:
        """The flat settings of ``task``'s cells, gathered from the four groups."""
        parts = {}
        for group in (self.data, self.model, self.train, self.eval):
            parts.update(dataclasses.asdict(getattr(group, task)))
        return SPECS[task](**parts)

    @property
    def seeds(self) -> list[int]:
        """The seeds of the run."""
        return [self.seed + i for i in range(self.n_seeds)]

    @property
    def regression(self) -> RegressionSpec:
        return self.spec("regression")

    @property
    def alpine(self) -> AlpineSpec:
        return self.spec("alpine")

    @property
    def icgp(self) -> IcgpSpec:
        return self.spec("icgp")


def quick_config(out_dir: str) -> Config:
    """A tiny comparison (every backbone, every task, two seeds, a few steps)."""
    return Config(
        out_dir=out_dir, n_seeds=2,
        data=Data(regression=RegressionData(d=2, k=5),
                  alpine=AlpineData(nodes=12, p=0.3, paths_per_pair=2),
                  icgp=IcgpData(episodes=4, n_games=2, trajectories_per_game=1)),
        model=Model(regression=Size(16, 1, 2), alpine=Size(16, 1, 1), icgp=Size(16, 1, 2),
                    options={"bixt.n_latents": 4}),
        train=Train(regression=Budget(8, 8, 1e-3, 2), alpine=Budget(6, 8, 1e-3, 2),
                    icgp=Budget(6, 4, 2e-3, 2), isolate=False, workers=1),
        eval=Eval(regression=RegressionEval(n_eval=32),
                  alpine=AlpineEval(n_prompts=10, samples_per_prompt=1),
                  icgp=IcgpEval(eval_games=2)),
    )


def learning_rate(cfg: Config, task: str, backbone: str) -> float:
    """The peak learning rate of ``backbone`` on ``task``: the task's ``lr`` when set, else the
    sweep's winner (TUNED_LR), else DEFAULT_LR."""
    lr = getattr(cfg.train, task).lr
    return float(lr) if lr > 0 else TUNED_LR.get(task, {}).get(backbone, DEFAULT_LR)


def backbone_options(options: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """``{"bixt.n_latents": 16}`` -> ``{"bixt": {"n_latents": 16}}``, checked against the
    registered backbone ``names``."""
    extra: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        b, dot, opt = str(key).partition(".")
        check(dot and b and opt, f"model.options key {key!r} must be BACKBONE.OPTION, e.g. "
              "--model.options bixt.n_latents 16")
        check(b in names, f"model.options names unknown backbone {b!r}; available: "
              f"{', '.join(names)}")
        extra.setdefault(b, {})[opt] = value
    return extra


def resolve(cfg: Config) -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
    """Validate ``cfg``; return (backbones, tasks, per-backbone options incl. DEFAULT_OPTIONS)."""
    from icarena.pretraining import backbones as registry

    names = registry.available()
    m = cfg.model
    chosen = list(m.backbones) or names
    unknown = sorted(set(chosen) - set(names)) + sorted(set(m.exclude) - set(names))
    check(not unknown, f"unknown backbone(s) {unknown}; available: {', '.join(names)}")
    chosen = [b for b in chosen if b not in m.exclude]
    check(len(chosen) >= 1, "no backbone left to train; drop some names from --model.exclude")
    check(len(set(chosen)) == len(chosen), f"backbones listed twice: {chosen}")
    tasks = list(cfg.data.tasks) or list(TASKS)
    bad = sorted(set(tasks) - set(TASKS))
    check(not bad, f"unknown task(s) {bad}; choose from {', '.join(TASKS)} (--data.tasks)")
    check(len(set(tasks)) == len(tasks), f"tasks listed twice: {tasks}")
    check(isinstance(m.options, dict), f"model.options must be a dict, got {m.options!r}")
    extra = backbone_options(m.options, names)
    reserved = {"d_model", "n_layers", "n_heads", "causal", "max_len"}
    for b, opts in extra.items():
        clash = [f"{b}.{o}" for o in sorted(reserved & set(opts))]
        check(not clash, f"model.options sets {', '.join(clash)}: size is the shared budget; "
              "set it per task (--model.regression.d-model ...) instead")
    for name in TASKS:
        for group, fields in (("model", ("d_model", "n_layers", "n_heads")),
                              ("train", ("steps", "batch_size"))):
            for f in fields:
                v = getattr(getattr(getattr(cfg, group), name), f)
                check(isinstance(v, int) and v >= 1,
                      f"{group}.{name}.{f} must be an int >= 1, got {v!r}")
        budget = getattr(cfg.train, name)
        check(budget.lr >= 0, f"train.{name}.lr must be > 0 (or 0: each backbone's tuned "
              f"rate), got {budget.lr}")
        check(budget.warmup_steps >= 0, f"train.{name}.warmup_steps must be >= 0")
    sweep = cfg.train.lr_sweep
    check(all(lr > 0 for lr in sweep) and len(set(sweep)) == len(sweep),
          f"train.lr_sweep must be distinct rates > 0, got {list(sweep)}")
    check(isinstance(cfg.n_seeds, int) and cfg.n_seeds >= 1,
          f"n_seeds must be an int >= 1, got {cfg.n_seeds!r}")
    check(isinstance(cfg.train.workers, int) and cfg.train.workers >= 1,
          f"train.workers must be an int >= 1, got {cfg.train.workers!r}")
    check(cfg.train.workers == 1 or cfg.train.isolate,
          "train.workers > 1 runs cells in their own processes; pass --train.isolate True or "
          "--train.workers 1")
    d, k = cfg.data.regression.d, cfg.data.regression.k
    check(k > 2 * d, f"data.regression.k ({k}) must exceed 2d = {2 * d}: the metric is the "
          "error at k = 2d in-context examples")
    check(0.0 <= cfg.eval.smoothing < 1.0,
          f"eval.smoothing must be in [0, 1), got {cfg.eval.smoothing}")
    check(cfg.train.device in ("auto", "cpu", "cuda"), f"train.device must be auto, cpu or "
          f"cuda, got {cfg.train.device!r}")
    options = {b: {**DEFAULT_OPTIONS.get(b, {}), **extra.get(b, {})} for b in chosen}
    return chosen, tasks, options


# ------------------------------------------------------------------------------ task builders
@dataclass
class Part:
    """One model a cell trains (an ICGP cell trains two: one per player)."""

    name: str
    """'' for a one-model cell, else the stream ('max', 'min')."""
    model_config: Any
    """The :class:`~icarena.pretraining.model.ModelConfig`."""
    task: Any
    """The training task (sample_batch / loss)."""
    info: dict[str, Any]
    """The ``task`` section of the run's config.json."""


def _train_config(spec: Any, cell: dict[str, Any], min_lr_frac: float, seed: int):
    from icarena.pretraining.train import TrainConfig

    return TrainConfig(
        steps=spec["steps"], batch_size=spec["batch_size"], lr=cell["lr"],
        min_lr=cell["lr"] * min_lr_frac, warmup_steps=min(spec["warmup_steps"], spec["steps"]),
        eval_every=0, ckpt_every=max(1, spec["steps"] // 4),
        log_every=max(1, spec["steps"] // 100),
        seed=seed, threads=cell["threads"], device=cell["device"], progress=False)


def _regression(cell: dict[str, Any]):
    """(parts, metric_fn, min_lr_frac) of a regression cell."""
    from icarena.envs.regression import make_family
    from icarena.experiments.regression_linear import model_config
    from icarena.pretraining.data.regression import RegressionTask
    from icarena.pretraining.model import ModelConfig

    s = cell["spec"]
    family = make_family("linear", s["d"])
    mcfg = model_config(cell["backbone"], s["d"], s["k"], s["n_layers"], s["d_model"],
                        s["n_heads"])
    mcfg["backbone_cfg"].update(cell["options"])
    task = RegressionTask(family, s["k"], n_eval=s["n_eval"],
                          eval_seed=s["eval_seed"] + cell["seed"])

    def metric(models: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        ev = task.evaluate(models[""])
        return {"metric": ev[f"err_k{2 * s['d']}"], "err_mean": ev["err_mean"],
                "curve": [ev[f"err_k{i}"] for i in range(s["k"])]}

    info = {"name": "regression", "family": family.to_dict(), "k": s["k"]}
    return [Part("", ModelConfig(**mcfg), task, info)], metric, 0.0


def _alpine(cell: dict[str, Any]):
    """(parts, metric_fn, min_lr_frac) of an ALPINE cell (dataset made by the parent)."""
    from icarena.evaluation.path_eval import PathEval, evaluate_path_model
    from icarena.evaluation.planning import load_path_dataset
    from icarena.pretraining.path_lm import PathLMTask, alpine_model_config

    s = cell["spec"]
    data = load_path_dataset(cell["data"])
    mcfg = alpine_model_config(data.n + 2, data.block_size, d_model=s["d_model"],
                               n_layers=s["n_layers"], n_heads=s["n_heads"],
                               backbone=cell["backbone"], backbone_cfg=cell["options"])
    task = PathLMTask(np.asarray(data.train_tokens), val_tokens=np.asarray(data.test_tokens))
    opts = PathEval(n_prompts=s["n_prompts"], samples_per_prompt=s["samples_per_prompt"])

    def metric(models: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        model = models[""]
        ev = evaluate_path_model(model, data, opts, cell["seed"], out_dir)
        val = task.evaluate(model)
        return {"metric": ev["transformer"]["path_valid"], "val_loss": val.get("val_loss"),
                "random_walk": ev["random_walk"]["path_valid"],
                "per_degree": {d: v["accuracy"] for d, v in
                               ev["transformer"]["per_degree"].items()}}

    return [Part("", mcfg, task, {"name": "alpine", "data": cell["data"]})], metric, 0.1


def _icgp_games_config(s: dict[str, Any], seed: int, out_dir: str = ""):
    """The ``icarena generate games`` config of the icgp cells' shared data (decentralized
    5x5 matrix games, EXP3, no validation split)."""
    from icarena.pretraining.data.games import Config, resolve

    return resolve(Config(out_dir=out_dir, seed=seed, setting="decentralized", H=1, S=1, A=5,
                          B=5, episodes=s["episodes"], n_games=s["n_games"],
                          trajectories_per_game=s["trajectories_per_game"], val_games=0,
                          algorithm="exp3", context_options=dict(s["context_options"])))


def icgp_references(s: dict[str, Any], seed: int) -> dict[str, float]:
    """EXP3's and uniform play's final averaged-policy Nash gap (means over the held-out games
    of seed ``seed``), the two references of an ICGP cell."""
    from icarena.evaluation.nash import record_gap_curves, uniform_gap
    from icarena.pretraining.game_lm import context_records, eval_games

    g = _icgp_games_config(s, seed)
    games = eval_games(g.H, g.S, g.A, g.B, s["eval_games"], s["eval_seed"] + seed)
    rec = context_records(games, "exp3", s["episodes"], 1, seed=seed,
                          algo_kwargs=dict(s["context_options"]))
    return {"context_gap": float(record_gap_curves(games, rec)["avg"][:, -1].mean()),
            "uniform_gap": float(np.mean(uniform_gap(games)))}


def _icgp(cell: dict[str, Any]):
    """(parts, metric_fn, min_lr_frac) of an ICGP cell (trajectories made by the parent).

    The cell dir is an ICGP run dir (``icgp.json`` + ``max/`` + ``min/``), so
    :class:`~icarena.pretraining.game_player.InContextGamePlayer` loads and plays it.
    """
    from icarena.evaluation.nash import record_gap_curves
    from icarena.pretraining.data.games import split_columns
    from icarena.pretraining.data.store import atomic_write_json
    from icarena.pretraining.game_lm import (
        META_FILE,
        STREAMS,
        GameModel,
        GamePolicyTask,
        eval_games,
        icgp_meta,
        icgp_model_config,
        load_games_dataset,
        policy_targets,
        step_tokens,
    )
    from icarena.pretraining.game_player import InContextGamePlayer

    s = cell["spec"]
    ds, settings = load_games_dataset(cell["data"])
    H, S, A, B = (int(settings[k]) for k in "HSAB")
    spec = GameModel(backbone=cell["backbone"], d_model=s["d_model"], n_layers=s["n_layers"],
                     n_heads=s["n_heads"], embedding="slot_prob")
    meta = icgp_meta(settings, spec, seed=cell["seed"])
    T = s["episodes"] * H
    rec = {k: np.array(v) for k, v in split_columns(ds, "train").items()}
    parts = []
    for stream in STREAMS["decentralized"]:
        mcfg = icgp_model_config(stream, (H, S, A, B), T, backbone=cell["backbone"],
                                 d_model=s["d_model"], n_layers=s["n_layers"],
                                 n_heads=s["n_heads"], backbone_cfg=dict(cell["options"]),
                                 embedding=spec.embedding)
        task = GamePolicyTask(step_tokens(rec, stream, H, S, A, B, spec.embedding),
                              policy_targets(rec, stream), labels="soft")
        parts.append(Part(stream, mcfg, task, {"name": "icgp", "stream": stream, "icgp": meta}))
    Path(cell["out_dir"]).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(cell["out_dir"]) / META_FILE, meta)

    def metric(models: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        player = InContextGamePlayer(models, meta)
        games = eval_games(H, S, A, B, s["eval_games"], s["eval_seed"] + cell["seed"])
        gaps = record_gap_curves(games, player.play(games, s["episodes"], seed=cell["seed"]))
        ref = icgp_references(s, cell["seed"])
        gap = float(gaps["avg"][:, -1].mean())
        return {"metric": gap / ref["context_gap"], "gap": gap,
                "gap_last": float(gaps["last"][:, -1].mean()),
                "uniform_ratio": ref["uniform_gap"] / ref["context_gap"], **ref,
                "curve": gaps["avg"].mean(0).tolist()}

    return parts, metric, 0.1


BUILDERS: dict[str, Callable[[dict[str, Any]], tuple]] = {
    "regression": _regression, "alpine": _alpine, "icgp": _icgp}


class _TrainOnly:
    """A task whose Trainer-side ``evaluate`` is empty: the cell scores the model itself once."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.tokens_per_sample = getattr(task, "tokens_per_sample", 0)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        return self.task.sample_batch(rng, batch_size)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.task.loss(model, batch)

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        return {}


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    import sys

    rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return rss if sys.platform == "darwin" else rss * 1024


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """Train and score one (task, backbone, seed) cell; JSON in, JSON-able dict out.

    ``cell``: ``task``, ``backbone``, ``options`` (backbone config), ``spec`` (the task's spec
    as a dict), ``lr``, ``data`` (shared dataset dir or None), ``out_dir``, ``seed``,
    ``threads``, ``device``, ``resume``, ``isolated`` (whether this process runs only this cell).
    A cell with several parts (ICGP: one model per player) trains them one after the other; its
    loss curve is their mean, its ms/step, parameters and time their sums.
    """
    from icarena.pretraining.data.games import derived_seed
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.search import SupernetTask
    from icarena.pretraining.train import seed_everything, train

    parts, metric_fn, min_lr_frac = BUILDERS[cell["task"]](cell)
    out = Path(cell["out_dir"])
    for name in ("torch.utils.tensorboard", "tqdm.auto"):  # the Trainer's imports, before
        importlib.import_module(name)  # the memory baseline
    if torch.cuda.is_available() and cell["device"] != "cpu":
        torch.cuda.reset_peak_memory_stats()
    base_rss = _peak_rss_bytes()
    models, results = {}, []
    for i, part in enumerate(parts):
        # one-model cells keep the plain seed; a player's model gets its own branch
        seed = cell["seed"] if len(parts) == 1 else derived_seed(cell["seed"], 20 + i)
        tcfg = _train_config(cell["spec"], cell, min_lr_frac, seed)
        seed_everything(seed)
        model = SequenceModel(part.model_config)
        train_task: Any = _TrainOnly(part.task)
        if cell["backbone"] == "supernet":
            net, task = model.backbone, part.task
            probe = task.sample_batch(np.random.default_rng([cell["seed"], 99, i]), 64)

            def fitness(m: torch.nn.Module, task=task, probe=probe) -> float:
                device = next(m.parameters()).device
                return float(task.loss(m, {k: v.to(device) for k, v in probe.items()}))

            train_task = SupernetTask(train_task, net, fitness)
        run_dir = out / part.name if part.name else out
        results.append(train(model, train_task, tcfg, run_dir,
                             resume=cell["resume"] and run_dir.exists(),
                             config={"experiment": "backbones",
                                     "model": dataclasses.asdict(part.model_config),
                                     "task": part.info}))
        if cell["backbone"] == "supernet":
            model.backbone.set_active(model.backbone.max_config())
        model.eval()
        models[part.name] = model
    t0 = time.perf_counter()
    with torch.no_grad():
        scored = metric_fn(models, out)
    eval_s = time.perf_counter() - t0
    on_cuda = next(models[parts[0].name].parameters()).device.type == "cuda"
    if on_cuda:
        peak = growth = float(max(r.peak_mem_bytes for r in results))
    elif cell["isolated"]:
        peak = float(_peak_rss_bytes())
        growth = peak - base_rss
    else:
        peak = growth = float("nan")
    steps = cell["spec"]["steps"]
    ms = 0.0
    for part, res in zip(parts, results, strict=True):
        tokens_per_step = part.task.tokens_per_sample * cell["spec"]["batch_size"]
        tps = res.tokens_per_s
        ms += 1000.0 * tokens_per_step / tps if tps and math.isfinite(tps) else float("nan")
    losses = np.mean([r.losses for r in results], axis=0).tolist()
    train_s = float(sum(r.seconds for r in results))
    tokens = sum(p.task.tokens_per_sample * cell["spec"]["batch_size"] * steps for p in parts)
    tail = max(1, steps // 10)
    return {
        "task": cell["task"], "backbone": cell["backbone"], "seed": cell["seed"],
        "lr": cell["lr"], **scored,
        "params": int(sum(m.num_params() for m in models.values())),
        "backbone_params": int(sum(m.backbone.num_params() for m in models.values())),
        "tokens_per_s": tokens / train_s if train_s > 0 else float("nan"), "ms_per_step": ms,
        "peak_mem_mb": peak / 2**20, "peak_growth_mb": growth / 2**20,
        "train_s": train_s, "eval_s": eval_s,
        "final_loss": float(np.mean(losses[-tail:])), "losses": losses,
        "device": next(models[parts[0].name].parameters()).device.type,
        "options": cell["options"],
    }


def _cell_main(cell_json: str, result_path: str) -> None:
    """Entry point of an isolated cell process: run the cell, write its result as JSON."""
    from icarena.pretraining.data.store import atomic_write_bytes

    result = run_cell(json.loads(cell_json))
    atomic_write_bytes(Path(result_path), json.dumps(result).encode())


def _run_isolated(cell: dict[str, Any]) -> dict[str, Any]:
    """``run_cell`` in a fresh Python process (its own peak RSS / CUDA peak).

    The cell goes in as JSON on the command line and comes back as a JSON file; a failure in
    the child raises IcarenaError with the end of its stderr.
    """
    import subprocess
    import sys
    import tempfile

    from icarena.errors import IcarenaError

    code = ("import sys; from icarena.lifecycle import die_with_parent; "
            "die_with_parent(int(sys.argv[3])); "
            "from icarena.experiments.backbones import _cell_main; "
            "_cell_main(sys.argv[1], sys.argv[2])")
    with tempfile.TemporaryDirectory(prefix="icarena-cell-") as tmp:
        result_path = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(cell), str(result_path),
                               str(os.getpid())],
                              stderr=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0 or not result_path.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise IcarenaError(f"cell {cell['task']}/{cell['backbone']}/seed{cell['seed']} "
                               f"failed in its subprocess (exit code {proc.returncode}):\n{tail}")
        return json.loads(result_path.read_text())


# ----------------------------------------------------------------------------- shared data
def prepare_alpine(spec: AlpineSpec, out: Path, seed: int) -> Path:
    """Generate (or, on a resume, reuse) the shared ALPINE dataset at ``out``."""
    from icarena.experiments.path_planning import prepare_dataset
    from icarena.pretraining.data import alpine as alpine_data

    gen = alpine_data.Config(out_dir=str(out), seed=seed, nodes=spec.nodes, p=spec.p,
                             paths_per_pair=spec.paths_per_pair)
    return Path(prepare_dataset(gen, alpine_data.generate))


def prepare_icgp(spec: IcgpSpec, out: Path, seed: int) -> Path:
    """Generate (or, on a resume, reuse) the shared EXP3 pretraining data at ``out``: a
    ``games`` dataset (``icarena generate games --setting decentralized``, no validation split;
    the trajectories ``icarena pretrain icgp`` trains on), tokenized by each cell."""
    from icarena.experiments.icgp_decentralized import prepare_games

    return Path(prepare_games(_icgp_games_config(dataclasses.asdict(spec), seed, str(out))))


def references(cfg: Config, tasks: list[str], seed: int) -> list[dict[str, Any]]:
    """Classical reference rows on the same held-out data as the cells of ``seed``."""
    rows: list[dict[str, Any]] = []
    if "regression" in tasks:
        from icarena.envs.regression import make_family
        from icarena.evaluation.regression import baseline_errors
        from icarena.pretraining.data.regression import RegressionTask

        s = cfg.regression
        fam = make_family("linear", s.d)
        p = RegressionTask(fam, s.k, n_eval=s.n_eval, eval_seed=s.eval_seed + seed).eval_prompts
        err = baseline_errors(p.x, p.y, fam.normaliser,
                              {"least squares": ("least_squares", {})})["least squares"]
        rows.append({"task": "regression", "backbone": "least squares (reference)",
                     "seed": seed, "metric": float(err.mean(0)[2 * s.d])})
    if "icgp" in tasks:
        ref = icgp_references(dataclasses.asdict(cfg.icgp), seed)
        rows.append({"task": "icgp", "backbone": "EXP3 (context algorithm)", "seed": seed,
                     "metric": 1.0, "gap": ref["context_gap"]})
        rows.append({"task": "icgp", "backbone": "uniform play", "seed": seed,
                     "metric": ref["uniform_gap"] / ref["context_gap"],
                     "gap": ref["uniform_gap"]})
    return rows


# ---------------------------------------------------------------------------------- statistics
def meets(task: str, cell: dict[str, Any]) -> bool:
    """Whether ``cell`` meets its task's learning threshold (:data:`THRESHOLDS`)."""
    op, bar = THRESHOLDS[task]
    v = float(cell["metric"])
    ok = v <= bar if op == "<=" else v >= bar
    if task == "icgp":
        ok = ok and v <= (1.0 + float(cell["uniform_ratio"])) / 2.0
    return bool(ok and math.isfinite(v))


def summarize(cells: list[dict[str, Any]], tasks: list[str], names: list[str]
              ) -> list[dict[str, Any]]:
    """One row per (task, backbone): mean and 95% interval over seeds, seeds meeting the task's
    threshold, and the paired comparison with GPT (same seeds)."""
    rows = []
    for task in tasks:
        by_seed = {b: {c["seed"]: c for c in cells if c["task"] == task and c["backbone"] == b}
                   for b in names}
        for b in names:
            got = by_seed[b]
            if not got:
                continue
            vals = [float(got[s]["metric"]) for s in sorted(got)]
            mean, lo, hi = t_interval(vals)
            row = {"task": task, "backbone": b, "metric": METRICS[task][0], "mean": mean,
                   "low": lo, "high": hi, "n_seeds": len(vals),
                   "meets": sum(meets(task, got[s]) for s in got),
                   "lr": got[min(got)]["lr"],
                   "ms_per_step": float(np.mean([got[s]["ms_per_step"] for s in got])),
                   "params": got[min(got)]["params"]}
            gpt = by_seed.get("gpt", {})
            common = sorted(set(got) & set(gpt))
            if b != "gpt" and len(common) >= 2:
                diff = [float(got[s]["metric"]) - float(gpt[s]["metric"]) for s in common]
                d_mean, d_lo, d_hi = t_interval(diff)
                row.update(diff_vs_gpt=d_mean, diff_low=d_lo, diff_high=d_hi,
                           distinguishable=bool(d_lo > 0 or d_hi < 0))
            rows.append(row)
    return rows


def verdict(row: dict[str, Any]) -> str:
    """'better than GPT' / 'worse than GPT' / 'not distinguishable' / '-' of a summary row."""
    if "distinguishable" not in row:
        return "-"
    if not row["distinguishable"]:
        return "not distinguishable"
    lower_better = THRESHOLDS[row["task"]][0] == "<="
    better = (row["diff_vs_gpt"] < 0) == lower_better
    return "better than GPT" if better else "worse than GPT"


# ---------------------------------------------------------------------------------- report
def ema(values: np.ndarray | list[float], alpha: float) -> np.ndarray:
    """Bias-corrected exponential moving average: m_t = α m_{t-1} + (1-α) v_t, / (1 - α^t)."""
    v = np.asarray(values, dtype=np.float64)
    if alpha == 0.0 or v.size == 0:
        return v.copy()
    out = np.empty_like(v)
    m = 0.0
    for t, x in enumerate(v):
        m = alpha * m + (1.0 - alpha) * x
        out[t] = m / (1.0 - alpha ** (t + 1))
    return out


def pivot(summary: list[dict[str, Any]], tasks: list[str], names: list[str]) -> str:
    """Markdown: backbone x task, 'mean [low, high] (k/n)' with k the seeds meeting the bar."""
    from icarena.evaluation.report import markdown_table

    by = {(r["task"], r["backbone"]): r for r in summary}

    def cell(t: str, b: str) -> str:
        r = by.get((t, b))
        if r is None:
            return "-"
        return f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ({r['meets']}/{r['n_seeds']})"

    headers = ["backbone"] + [f"{t}: {METRICS[t][0]}" for t in tasks]
    return markdown_table(headers, [[b] + [cell(t, b) for t in tasks] for b in names])


def cell_threads(cfg: Config) -> int:
    """torch threads of each cell (``--train.threads``; 0: 1 when several cells run at once,
    else 0 = torch's default)."""
    return cfg.train.threads or (1 if cfg.train.workers > 1 else 0)


def _cells_to_run(cfg: Config, names: list[str], tasks: list[str],
                  options: dict[str, dict[str, Any]], data: dict[tuple[str, int], str | None]
                  ) -> list[dict[str, Any]]:
    out = Path(cfg.out_dir)
    rates = list(cfg.train.lr_sweep)
    threads = cell_threads(cfg)
    cells = []
    for seed in cfg.seeds:
        for task in tasks:
            for b in names:
                for lr in rates or [learning_rate(cfg, task, b)]:
                    where = out / "cells" / task / b / f"seed{seed}"
                    if rates:
                        where = where / f"lr{lr:g}"
                    cells.append({
                        "task": task, "backbone": b, "options": options[b],
                        "spec": dataclasses.asdict(cfg.spec(task)), "lr": float(lr),
                        "data": data[task, seed], "out_dir": str(where), "seed": seed,
                        "threads": threads, "device": cfg.train.device,
                        "resume": cfg.resume and where.exists(), "isolated": cfg.train.isolate})
    return cells


def _run_all(cfg: Config, todo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the cells ``todo`` (``workers`` at once), each result saved as soon as it ends."""
    from icarena.pretraining.data.store import atomic_write_json

    def one(cell: dict[str, Any]) -> dict[str, Any]:
        done = Path(cell["out_dir"]) / "cell.json"
        if cfg.resume and done.is_file():  # finished before the run was stopped
            return json.loads(done.read_text())
        label = f"{cell['task']} / {cell['backbone']} / seed {cell['seed']} / lr {cell['lr']:g}"
        print(f"[backbones] {label} ...", flush=True)
        res = _run_isolated(cell) if cfg.train.isolate else run_cell(cell)
        atomic_write_json(done, res)
        print(f"[backbones] {label}: {METRICS[cell['task']][0]} = {res['metric']:.4f}, "
              f"{res['ms_per_step']:.1f} ms/step, {res['train_s']:.1f} s", flush=True)
        return res

    if cfg.train.workers == 1:
        return [one(c) for c in todo]
    with ThreadPoolExecutor(cfg.train.workers) as pool:
        return list(pool.map(one, todo))


def sweep_choice(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sweep's winner per (task, backbone): the rate with the best mean metric over the
    sweep's seeds (non-finite values lose)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    groups: dict[tuple[str, str, float], list[float]] = {}
    for c in cells:
        groups.setdefault((c["task"], c["backbone"], c["lr"]), []).append(float(c["metric"]))
    for (task, b, lr), vals in groups.items():
        v = float(np.mean(vals))
        score = v if THRESHOLDS[task][0] == "<=" else -v
        score = score if math.isfinite(score) else math.inf
        cur = best.get((task, b))
        if cur is None or score < cur["score"]:
            best[task, b] = {"task": task, "backbone": b, "lr": lr, "metric": v, "score": score}
    return [{k: v for k, v in r.items() if k != "score"} for r in best.values()]


def _loss_plots(out: Path, cells: list[dict[str, Any]], tasks: list[str], names: list[str],
                alpha: float) -> list[str]:
    """``loss_<task>.png``: every backbone's EMA-smoothed training loss, mean over seeds."""
    from icarena.evaluation.report import line_plot

    files = []
    for task in tasks:
        curves = {}
        for b in names:
            runs = [c["losses"] for c in cells if c["task"] == task and c["backbone"] == b]
            if runs and len({len(r) for r in runs}) == 1:
                curves[b] = np.mean([ema(r, alpha) for r in runs], axis=0)
        if not curves:
            continue
        steps = np.arange(1, len(next(iter(curves.values()))) + 1)
        line_plot(out / f"loss_{task}.png", steps, curves, xlabel="training step",
                  ylabel=f"training loss (EMA {alpha}, mean over seeds)",
                  title=f"{task}: every backbone", logy=True)
        files.append(f"loss_{task}.png")
    return files


def sympformer_vs_gpt(out: Path, cfg: Config, cells: list[dict[str, Any]]) -> str:
    """The SympFormer-vs-GPT item: both backbones' regression loss curves (mean over seeds,
    EMA-smoothed) in ``sympformer_vs_gpt.png``, with their parameter counts (SympFormer's
    momentum coefficients and norms add parameters); returns the report section's text."""
    from icarena.evaluation.report import line_plot, markdown_table

    reg = {b: [c for c in cells if c["task"] == "regression" and c["backbone"] == b]
           for b in ("gpt", "sympformer")}
    if not all(reg.values()):
        return "Needs both `gpt` and `sympformer` on the `regression` task in this run."
    a = cfg.eval.smoothing
    curves = {f"{b} ({runs[0]['params']:,} params)": np.mean([ema(c["losses"], a)
                                                              for c in runs], axis=0)
              for b, runs in reg.items()}
    steps = np.arange(1, len(next(iter(curves.values()))) + 1)
    line_plot(out / "sympformer_vs_gpt.png", steps, curves, xlabel="training step",
              ylabel=f"training MSE (EMA {a}, mean over seeds)",
              title="SympFormer vs GPT, in-context linear regression", logy=True)
    s = cfg.regression
    rows = []
    for b, runs in reg.items():
        mean, lo, hi = t_interval([c["metric"] for c in runs])
        rows.append([b, runs[0]["params"], runs[0]["backbone_params"],
                     float(np.mean([c["final_loss"] for c in runs])),
                     f"{mean:.4f} [{lo:.4f}, {hi:.4f}]",
                     float(np.mean([c["ms_per_step"] for c in runs]))])
    return (f"Both trained on `regression` with the same budget: {s.n_layers} layers, width "
            f"{s.d_model}, {s.n_heads} heads, {s.steps} steps of batch {s.batch_size}, same "
            "seeds and batches (each at its own swept rate).\n\n" + markdown_table(
                ["backbone", "params (model)", "params (backbone)", "final loss (last 10%)",
                 f"{METRICS['regression'][0]} [95% interval]", "ms/step"], rows, digits=4)
            + "\n\n![SympFormer vs GPT](sympformer_vs_gpt.png)")


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Train every (seed, task, backbone) cell, write metrics.json, report.md and the plots."""
    from icarena.evaluation.report import (
        markdown_table,
        summary_metrics,
        write_metrics,
        write_report,
    )
    from icarena.pretraining.data.store import atomic_write_json

    names, tasks, options = resolve(cfg)
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    t_start = time.perf_counter()
    data: dict[tuple[str, int], str | None] = {}
    for seed in cfg.seeds:
        data["regression", seed] = None
        if "alpine" in tasks:
            data["alpine", seed] = str(prepare_alpine(
                cfg.alpine, out / "data" / "alpine" / f"seed{seed}", seed))
        if "icgp" in tasks:
            data["icgp", seed] = str(prepare_icgp(
                cfg.icgp, out / "data" / "icgp" / f"seed{seed}", seed))
    refs = [r for seed in cfg.seeds for r in references(cfg, tasks, seed)]
    cells = _run_all(cfg, _cells_to_run(cfg, names, tasks, options, data))
    total_s = time.perf_counter() - t_start
    threads = cell_threads(cfg) or torch.get_num_threads()
    head = (f"{len(names)} backbones x {len(tasks)} tasks x {cfg.n_seeds} seed(s) "
            f"({', '.join(map(str, cfg.seeds))}), device {cfg.train.device}, {cfg.train.workers} "
            f"cell(s) at once with {threads} torch thread(s) each; total {total_s:.0f} s. Every "
            "backbone is built causal (BiXT: mode "
            f"{options.get('bixt', {}).get('mode', 'auto')}; supernet: uniform single-path "
            "training, scored at its max sub-network).")
    budget_lines = "\n".join(
        f"- **{t}** ({METRICS[t][1]}): " + ", ".join(
            f"{k} {v}" for k, v in dataclasses.asdict(cfg.spec(t)).items() if k != "lr")
        + "; lr " + ", ".join(f"{b} {learning_rate(cfg, t, b):g}" for b in names)
        for t in tasks)

    if cfg.train.lr_sweep:  # the sweep's report: every rate, then each backbone's winner
        chosen = sweep_choice(cells)
        grid = {(c["task"], c["backbone"], c["lr"]): c["metric"] for c in cells}
        rates = list(cfg.train.lr_sweep)
        table = markdown_table(
            ["task", "backbone"] + [f"lr {r:g}" for r in rates] + ["best"],
            [[t, b] + [grid.get((t, b, r), float("nan")) for r in rates]
             + [next(f"{c['lr']:g}" for c in chosen if c["task"] == t and c["backbone"] == b)]
             for t in tasks for b in names], digits=4)
        report = write_report(out, "Backbone comparison: learning-rate sweep", [
            head, "## Budget (lr: the swept rates)\n\n" + "\n".join(
                line.split("; lr ")[0] for line in budget_lines.splitlines()),
            "## Each task's metric by rate (mean over the seeds)\n\n" + table])
        rows = [{"task": c["task"], "backbone": c["backbone"], "best lr": c["lr"],
                 "metric": METRICS[c["task"]][0], "value": round(c["metric"], 4)}
                for c in chosen]
        write_metrics(out, {"cells": cells, "sweep": chosen, "total_s": total_s,
                            "backbones": names, "tasks": tasks, **summary_metrics(rows)})
        return {"report": str(report), "rows": rows}

    summary = summarize(cells, tasks, names)
    plots = _loss_plots(out, cells, tasks, names, cfg.eval.smoothing)
    symp_text = sympformer_vs_gpt(out, cfg, cells)
    acceptance: dict[str, Any] = {}
    lines = []
    for t in tasks:
        gpt = [c for c in cells if c["task"] == t and c["backbone"] == "gpt"]
        if gpt:
            ok = [meets(t, c) for c in gpt]
            acceptance[f"gpt_learns_{t}"] = all(ok)
            op, bar = THRESHOLDS[t]
            extra = " and <= (1 + uniform's ratio) / 2" if t == "icgp" else ""
            lines.append(f"- **{t}**: GPT {METRICS[t][0]} {op} {bar}{extra} at "
                         f"{sum(ok)}/{len(ok)} seeds: "
                         + ", ".join(f"{c['metric']:.3f}" for c in gpt)
                         + (" -- **met**" if all(ok) else " -- **not met**"))
        by_verdict: dict[str, list[str]] = {}
        for r in summary:
            if r["task"] == t and r["backbone"] != "gpt":
                by_verdict.setdefault(verdict(r), []).append(r["backbone"])
        if by_verdict:
            lines.append("  - vs GPT (paired 95% t-interval over seeds): " + "; ".join(
                f"{v}: {', '.join(bs)}" for v, bs in sorted(by_verdict.items())))
        learns_not = [r["backbone"] for r in summary if r["task"] == t and r["meets"] == 0]
        if learns_not:
            lines.append(f"  - does not learn {t} at any seed (see its loss curve): "
                         f"{', '.join(learns_not)}")
    ref_rows = []
    for name in dict.fromkeys((r["task"], r["backbone"]) for r in refs):
        vals = [r["metric"] for r in refs if (r["task"], r["backbone"]) == name]
        mean, lo, hi = t_interval(vals)
        ref_rows.append([name[0], name[1], f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"])
    rw = [c["random_walk"] for c in cells if c["task"] == "alpine" and c["backbone"] == names[0]]
    if rw:
        mean, lo, hi = t_interval(rw)
        ref_rows.append(["alpine", "random-walk planner", f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"])
    headers = ["task", "backbone", "seed", "lr", "metric", "params", "tokens/s", "ms/step",
               "peak mem (MB)", "peak growth (MB)", "train s", "eval s"]
    table_rows = [[c["task"], c["backbone"], c["seed"], f"{c['lr']:g}", c["metric"], c["params"],
                   c["tokens_per_s"], c["ms_per_step"], c["peak_mem_mb"], c["peak_growth_mb"],
                   c["train_s"], c["eval_s"]] for c in cells]
    mem_note = ("Peak memory: each cell ran in its own process; `peak mem` is its max RSS "
                "(CPU) or max CUDA allocation, `peak growth` the rise of the peak during "
                "training + evaluation." if cfg.train.isolate else
                "Peak memory: not measured (isolate=False: the cells shared one process, whose "
                "max RSS never decreases).")
    sections = [
        head,
        "## Budget (same for every backbone of a task)\n\n" + budget_lines,
        "## Task metric by backbone\n\nMean over seeds [95% t-interval] (seeds meeting the "
        "task's bar).\n\n" + pivot(summary, tasks, names),
        "## Does GPT learn each task, and who differs from it\n\n" + "\n".join(lines),
        "## References (same held-out data)\n\n"
        + markdown_table(["task", "reference", "metric, mean [95% interval]"], ref_rows),
        "## Cost\n\n" + markdown_table(
            ["task", "backbone", "params", "ms/step (mean over seeds)"],
            [[r["task"], r["backbone"], r["params"], f"{r['ms_per_step']:.0f}"]
             for r in summary]),
        "## Loss curves\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots),
        "## SympFormer vs GPT (equal depth and width)\n\n" + symp_text,
        "## All cells\n\n" + markdown_table(headers, table_rows, digits=4) + "\n\n" + mem_note
        + " tokens/s and ms/step cover the training steps only (no evaluation).",
    ]
    report = write_report(out, "Backbone comparison across in-context tasks", sections)
    rows = [{"task": r["task"], "backbone": r["backbone"], "metric": r["metric"],
             "mean": round(r["mean"], 4), "low": round(r["low"], 4), "high": round(r["high"], 4),
             "seeds meeting bar": f"{r['meets']}/{r['n_seeds']}", "lr": r["lr"],
             "vs gpt": verdict(r), "params": r["params"],
             "ms/step": round(r["ms_per_step"], 1)} for r in summary]
    write_metrics(out, {"cells": cells, "summary": summary,
                        "references": refs, "acceptance": acceptance, "total_s": total_s,
                        "backbones": names, "tasks": tasks, "seeds": cfg.seeds,
                        **summary_metrics(rows)})
    return {"report": str(report), "rows": rows, "acceptance": acceptance}


__all__ = ["Config", "RegressionSpec", "AlpineSpec", "IcgpSpec", "quick_config", "run",
           "run_cell", "resolve", "ema", "pivot", "references", "summarize", "t_interval",
           "meets", "verdict", "sweep_choice", "learning_rate", "icgp_references", "TASKS",
           "METRICS", "THRESHOLDS", "LR_GRID", "TUNED_LR", "DEFAULT_OPTIONS"]

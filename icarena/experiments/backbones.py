"""``icarena run backbones``: every registered backbone on every task, with one budget per task.

The same read-in -> backbone -> read-out model is trained with each registered backbone
(:func:`icarena.pretraining.backbones.available`) on up to three in-context tasks, with the
**same** steps, batch, learning-rate schedule, width, depth and heads for every backbone of
a task, and scored by that task's own metric:

=================  ===========================================  =============================
task               setting                                      metric (lower/higher better)
=================  ===========================================  =============================
``regression``     Garg et al. 2022 linear regression, d = 5,   squared error / d at
                   k = 11 fresh prompts every step (causal)     k = 2d in-context examples (↓)
``alpine``         ALPINE (Wang et al. 2024) random DAG,        path validity of sampled
                   n = 100, p = 0.1, next-token LM              completions on test pairs (↑)
``icgp``           ICGP centralized (Shi et al. 2024): imitate  final Nash gap of the
                   VI-ULCB on H=2, S=4, A=B=5 Markov games      state-wise averaged policy (↓)
=================  ===========================================  =============================

(Garg et al. 2022, arXiv 2208.01066; Wang et al. 2024, arXiv 2405.09220; Shi et al. 2024, arXiv
2410.09701.) Beside the metric every cell reports the model's parameters (read-in + backbone +
read-out; the backbone alone in its own column), training throughput (tokens/s and ms/step over the
training steps only, evaluation excluded) and peak memory. Reference rows (least squares for
regression, the random-walk planner for ALPINE, VI-ULCB itself and uniform play for ICGP) are
computed on the same held-out prompts / pairs / games.

The report also holds the SympFormer-vs-GPT acceptance item: both backbones' training-loss
curves on ``regression`` (same budget, same depth and width, EMA-smoothed) in one PNG, with
their parameter counts (SympFormer's learned momentum coefficients and momentum norms add
parameters, so the counts are always reported).

Choices the spec leaves open (documented here):

* **Causality.** All three tasks are next-token / every-prefix tasks, so every backbone is built
  with ``causal=True``. Backbones without a native causal mode use what they offer: BiXT runs its
  exact ``prefix_reencode`` mode (every prefix encoded on its own), which costs O(T^2) per
  sequence instead of O(T) -- it gets the same step budget and its ms/step column shows the
  price; ``--model.exclude bixt`` skips it. ``local_global`` (bidirectional by default) is masked.
* **Supernet.** ``supernet`` trained like a plain network would always run its max
  sub-network, i.e. exactly ``gpt`` (same parameter names, same init). It is therefore trained
  the S3/AutoFormer way, uniform single-path (a random sub-network each step,
  :class:`icarena.pretraining.search.SupernetTask`), and **scored at its max sub-network**; the
  row measures what weight sharing costs the largest sub-network at an equal step budget.
* **Peak memory.** On CPU the only portable peak is the process's max RSS, which never goes
  down, so with ``isolate=True`` (default) each (task, backbone) cell runs in a fresh
  ``spawn`` subprocess and reports its own peak RSS and the growth of the peak during the cell
  (``peak_mem_mb`` - RSS after imports and data loading). On CUDA it is
  ``torch.cuda.max_memory_allocated`` of that process. With ``isolate=False`` (tests, quick
  runs) the cells share a process and the memory columns are NaN.
* **Data.** The ALPINE dataset and the VI-ULCB trajectories are generated once per run into
  ``out_dir/data`` (reused when the config matches) and shared by all backbones, so every
  backbone sees the same batches (the Trainer draws step i from ``[seed, rank, i]``).

Outputs in ``out_dir``: ``config.json``, ``metrics.json`` (every cell incl. its loss curve),
``report.md`` (one table of all cells plus a metric-by-backbone pivot), ``sympformer_vs_gpt.png``,
``cells/<task>/<backbone>/`` (a normal run dir per cell: config.json, model.safetensors,
ckpt.pt, TensorBoard events, and ``cell.json``, the cell's result, written as soon as the cell
ends).

Cost and budget: BiXT's exact prefix re-encoding costs many times GPT's step, and ``linear`` on
ALPINE (one head of width 120) materialises its (B, T, 120, 120) running key-value sums, which
also makes its sampling evaluation slow; ``--model.exclude bixt`` removes most of the time. The
default budget is a *cost* comparison more than a converged one: at its steps no backbone leaves the
in-context-regression plateau and ALPINE's path validity stays near zero; ``regression-linear``'s
budget is what GPT needs to pass its bar. Measured ms/step per task and backbone, and what the
budget reaches: ``docs/results/backbones.md``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icarena.errors import check
from icarena.lifecycle import writes_run
from icarena.pretraining.model import Options

TASKS: tuple[str, ...] = ("regression", "alpine", "icgp")
"""Tasks of the comparison, in report order."""

METRICS: dict[str, tuple[str, str]] = {
    "regression": ("err@2d", "squared error / d at k = 2d in-context examples (lower is better)"),
    "alpine": ("path_valid", "fraction of valid sampled paths on test pairs (higher is better)"),
    "icgp": ("nash_gap_avg", "final-episode Nash gap of the averaged policy (lower is better)"),
}


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
    lr: float = 1e-3
    """Peak AdamW learning rate (warm-up, then cosine decay)."""
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

    d: int = 5
    """Input dimension."""
    k: int = 11
    """Points per prompt (must exceed 2d: the metric reads k = 2d)."""


@dataclass
class AlpineData:
    """ALPINE random DAG (written once to out_dir/data/alpine)."""

    nodes: int = 100
    """Graph nodes n."""
    p: float = 0.1
    """Edge probability of the random DAG."""
    paths_per_pair: int = 20
    """Random-walk training lines per train pair."""


@dataclass
class IcgpData:
    """Centralized ICGP: VI-ULCB trajectories on H=2, S=4, A=B=5 games (out_dir/data/icgp)."""

    episodes: int = 20
    """K episodes per trajectory (T = K·H tokens)."""
    n_games: int = 20
    """Pretraining games."""
    trajectories_per_game: int = 2
    """VI-ULCB runs per pretraining game."""
    context_options: Options = field(default_factory=lambda: {"mwu_iters": 50})
    """VI-ULCB options, e.g. --data.icgp.context-options mwu_iters 50 c 0.02."""


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
    """Backbones to leave out, e.g. 'bixt' (its exact causal mode costs O(T^2) per sequence)."""
    options: Options = field(default_factory=dict)
    """Extra options of one backbone as BACKBONE.OPTION VALUE pairs, e.g.
    --model.options bixt.n_latents 16 sympformer.momentum 0.5."""
    regression: Size = field(default_factory=lambda: Size(64, 3, 2))
    """regression model size."""
    alpine: Size = field(default_factory=lambda: Size(120, 1, 1))
    """alpine model size (ALPINE's analysed model: width 120, 1 layer, 1 head)."""
    icgp: Size = field(default_factory=lambda: Size(32, 2, 4))
    """icgp model size."""


@dataclass
class Train:
    """Each task's budget, and where the cells run."""

    regression: Budget = field(default_factory=lambda: Budget(500, 32, 1e-3, 50))
    """regression budget (cosine to 0)."""
    alpine: Budget = field(default_factory=lambda: Budget(300, 64, 1e-3, 30))
    """alpine budget (cosine to lr / 10)."""
    icgp: Budget = field(default_factory=lambda: Budget(200, 16, 2e-3, 20))
    """icgp budget (cosine to lr / 10)."""
    isolate: bool = True
    """Run each cell in a fresh subprocess (honest per-cell peak memory; costs the process start
    and imports of each cell)."""
    threads: int = 0
    """torch CPU threads per cell (0: torch's default)."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto'."""


@dataclass
class RegressionEval:
    """Held-out regression prompts."""

    n_eval: int = 640
    """Held-out prompts."""
    eval_seed: int = 1234
    """Seed of the held-out prompts."""


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
    """Seed of the held-out games."""


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
    """Train every backbone on every task with one budget per task; one comparison table."""

    out_dir: str = "runs/backbones"
    """Run directory (report, metrics, plots, data/, cells/<task>/<backbone>/)."""
    seed: int = 0
    """Seed of the datasets, inits, batches and sampling (same for every backbone)."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir: finished cells are kept, the others resume or start."""
    data: Data = field(default_factory=Data)
    """Tasks and their data."""
    model: Model = field(default_factory=Model)
    """Backbones and each task's model size."""
    train: Train = field(default_factory=Train)
    """Each task's budget and the cells' device."""
    eval: Eval = field(default_factory=Eval)
    """Each task's held-out data."""

    def spec(self, task: str) -> RegressionSpec | AlpineSpec | IcgpSpec:
        """The flat settings of ``task``'s cells, gathered from the four groups."""
        parts = {}
        for group in (self.data, self.model, self.train, self.eval):
            parts.update(dataclasses.asdict(getattr(group, task)))
        return SPECS[task](**parts)

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
    """A tiny comparison (every backbone, every task, a few steps)."""
    return Config(
        out_dir=out_dir,
        data=Data(regression=RegressionData(d=2, k=5),
                  alpine=AlpineData(nodes=12, p=0.3, paths_per_pair=2),
                  icgp=IcgpData(episodes=3, n_games=2, trajectories_per_game=1,
                                context_options={"mwu_iters": 5})),
        model=Model(regression=Size(16, 1, 2), alpine=Size(16, 1, 1), icgp=Size(16, 1, 2)),
        train=Train(regression=Budget(8, 8, 1e-3, 2), alpine=Budget(6, 8, 1e-3, 2),
                    icgp=Budget(6, 4, 2e-3, 2), isolate=False),
        eval=Eval(regression=RegressionEval(n_eval=32),
                  alpine=AlpineEval(n_prompts=10, samples_per_prompt=1),
                  icgp=IcgpEval(eval_games=2)),
    )


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
    """Validate ``cfg``; return (backbones, tasks, per-backbone extra options)."""
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
        check(budget.lr > 0, f"train.{name}.lr must be > 0, got {budget.lr}")
        check(budget.warmup_steps >= 0, f"train.{name}.warmup_steps must be >= 0")
    d, k = cfg.data.regression.d, cfg.data.regression.k
    check(k > 2 * d, f"data.regression.k ({k}) must exceed 2d = {2 * d}: the metric is the "
          "error at k = 2d in-context examples")
    check(0.0 <= cfg.eval.smoothing < 1.0,
          f"eval.smoothing must be in [0, 1), got {cfg.eval.smoothing}")
    check(cfg.train.device in ("auto", "cpu", "cuda"), f"train.device must be auto, cpu or "
          f"cuda, got {cfg.train.device!r}")
    return chosen, tasks, {b: extra.get(b, {}) for b in chosen}


# ------------------------------------------------------------------------------ task builders
def _train_config(spec: Any, cell: dict[str, Any], min_lr_frac: float):
    from icarena.pretraining.train import TrainConfig

    return TrainConfig(
        steps=spec["steps"], batch_size=spec["batch_size"], lr=spec["lr"],
        min_lr=spec["lr"] * min_lr_frac, warmup_steps=min(spec["warmup_steps"], spec["steps"]),
        eval_every=0, ckpt_every=max(1, spec["steps"] // 4),
        log_every=max(1, spec["steps"] // 100),
        seed=cell["seed"], threads=cell["threads"], device=cell["device"], progress=False)


def _regression(cell: dict[str, Any]):
    """(model config, task, metric_fn) of a regression cell."""
    from icarena.envs.regression import make_family
    from icarena.experiments.regression_linear import model_config
    from icarena.pretraining.data.regression import RegressionTask
    from icarena.pretraining.model import ModelConfig

    s = cell["spec"]
    family = make_family("linear", s["d"])
    mcfg = model_config(cell["backbone"], s["d"], s["k"], s["n_layers"], s["d_model"],
                        s["n_heads"])
    mcfg["backbone_cfg"].update(cell["options"])
    task = RegressionTask(family, s["k"], n_eval=s["n_eval"], eval_seed=s["eval_seed"])

    def metric(model, out_dir: Path) -> dict[str, Any]:
        ev = task.evaluate(model)
        return {"metric": ev[f"err_k{2 * s['d']}"], "err_mean": ev["err_mean"],
                "curve": [ev[f"err_k{i}"] for i in range(s["k"])]}

    return ModelConfig(**mcfg), task, metric, {"family": family.to_dict(), "k": s["k"]}, 0.0


def _alpine(cell: dict[str, Any]):
    """(model config, task, metric_fn) of an ALPINE cell (dataset made by the parent)."""
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

    def metric(model, out_dir: Path) -> dict[str, Any]:
        ev = evaluate_path_model(model, data, opts, cell["seed"], out_dir)
        val = task.evaluate(model)
        return {"metric": ev["transformer"]["path_valid"], "val_loss": val.get("val_loss"),
                "random_walk": ev["random_walk"]["path_valid"],
                "per_degree": {d: v["accuracy"] for d, v in
                               ev["transformer"]["per_degree"].items()}}

    return mcfg, task, metric, {"data": cell["data"]}, 0.1


def _icgp_games_config(s: dict[str, Any], seed: int, out_dir: str = ""):
    """The ``icarena generate games`` config of the icgp cells' shared data (centralized
    H=2, S=4, A=B=5 games, VI-ULCB, no validation split)."""
    from icarena.pretraining.data.games import Config, resolve

    return resolve(Config(out_dir=out_dir, seed=seed, setting="centralized", H=2, S=4, A=5, B=5,
                          episodes=s["episodes"], n_games=s["n_games"],
                          trajectories_per_game=s["trajectories_per_game"], val_games=0,
                          algorithm="viulcb",
                          context_options=dict(s["context_options"])))


def _icgp(cell: dict[str, Any]):
    """(model config, task, metric_fn) of an ICGP cell (trajectories made by the parent).

    The cell dir is an ICGP run dir (``icgp.json`` + ``joint/``), so
    :class:`~icarena.pretraining.game_player.InContextGamePlayer` loads and plays it.
    """
    from icarena.evaluation.nash import record_gap_curves
    from icarena.pretraining.data.games import split_columns
    from icarena.pretraining.data.store import atomic_write_json, dataset_identity
    from icarena.pretraining.game_lm import (
        META_FILE,
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
                     n_heads=s["n_heads"])
    meta = icgp_meta(settings, spec, seed=cell["seed"])
    T = s["episodes"] * H
    mcfg = icgp_model_config("joint", (H, S, A, B), T, backbone=cell["backbone"],
                             d_model=s["d_model"], n_layers=s["n_layers"], n_heads=s["n_heads"],
                             backbone_cfg=dict(cell["options"]))
    rec = {k: np.array(v) for k, v in split_columns(ds, "train").items()}
    task = GamePolicyTask(step_tokens(rec, "joint", H, S, A, B, spec.embedding),
                          policy_targets(rec, "joint"), labels="soft")
    Path(cell["out_dir"]).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(cell["out_dir"]) / META_FILE, meta)

    def metric(model, out_dir: Path) -> dict[str, Any]:
        player = InContextGamePlayer.load(out_dir)
        games = eval_games(H, S, A, B, s["eval_games"], s["eval_seed"])
        gaps = record_gap_curves(games, player.play(games, s["episodes"], seed=cell["seed"]))
        return {"metric": float(gaps["avg"][:, -1].mean()),
                "gap_last": float(gaps["last"][:, -1].mean()),
                "curve": gaps["avg"].mean(0).tolist()}

    return mcfg, task, metric, {"icgp": meta, "dataset": {**dataset_identity(ds),
                                                           "path": str(cell["data"])}}, 0.1


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
    """Train and score one (task, backbone) cell; JSON in, JSON-able dict out.

    ``cell``: ``task``, ``backbone``, ``options`` (extra backbone config), ``spec`` (the task's
    spec as a dict), ``data`` (shared dataset dir or None), ``out_dir``, ``seed``, ``threads``,
    ``device``, ``resume``, ``isolated`` (whether this process runs only this cell).
    """
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.search import SupernetTask
    from icarena.pretraining.train import seed_everything, train

    mcfg, task, metric_fn, task_info, min_lr_frac = BUILDERS[cell["task"]](cell)
    tcfg = _train_config(cell["spec"], cell, min_lr_frac)
    out = Path(cell["out_dir"])
    if cell["task"] == "icgp":
        run_dir = out / "joint"
    else:
        run_dir = out
    seed_everything(cell["seed"])
    model = SequenceModel(mcfg)
    train_task: Any = _TrainOnly(task)
    if cell["backbone"] == "supernet":
        net = model.backbone
        probe = task.sample_batch(np.random.default_rng([cell["seed"], 99]), 64)

        def fitness(m: torch.nn.Module) -> float:
            device = next(m.parameters()).device
            return float(task.loss(m, {k: v.to(device) for k, v in probe.items()}))

        train_task = SupernetTask(train_task, net, fitness)
    if torch.cuda.is_available() and tcfg.device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    for name in ("torch.utils.tensorboard", "tqdm.auto"):  # the Trainer's imports, before
        importlib.import_module(name)  # the memory baseline

    base_rss = _peak_rss_bytes()
    result = train(model, train_task, tcfg, run_dir, resume=cell["resume"],
                   config={"experiment": "backbones", "model": dataclasses.asdict(mcfg),
                           "task": {"name": cell["task"], **task_info}})
    if cell["backbone"] == "supernet":
        model.backbone.set_active(model.backbone.max_config())
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        scored = metric_fn(model, out)
    eval_s = time.perf_counter() - t0
    on_cuda = next(model.parameters()).device.type == "cuda"
    if on_cuda:
        peak, growth = float(result.peak_mem_bytes), float(result.peak_mem_bytes)
    elif cell["isolated"]:
        peak = float(_peak_rss_bytes())
        growth = peak - base_rss
    else:
        peak = growth = float("nan")
    steps = cell["spec"]["steps"]
    tps = result.tokens_per_s
    tokens_per_step = task.tokens_per_sample * cell["spec"]["batch_size"]
    ms = 1000.0 * tokens_per_step / tps if tps and math.isfinite(tps) else float("nan")
    tail = max(1, steps // 10)
    return {
        "task": cell["task"], "backbone": cell["backbone"], **scored,
        "params": int(model.num_params()), "backbone_params": int(model.backbone.num_params()),
        "tokens_per_s": float(tps), "ms_per_step": ms,
        "peak_mem_mb": peak / 2**20, "peak_growth_mb": growth / 2**20,
        "train_s": float(result.seconds), "eval_s": eval_s,
        "final_loss": float(np.mean(result.losses[-tail:])), "losses": result.losses,
        "device": next(model.parameters()).device.type, "options": cell["options"],
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
            raise IcarenaError(f"cell {cell['task']}/{cell['backbone']} failed in its subprocess "
                               f"(exit code {proc.returncode}):\n{tail}")
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
    """Generate (or, on a resume, reuse) the shared VI-ULCB pretraining data at ``out``: a
    ``games`` dataset (``icarena generate games --setting centralized``, no validation split;
    the trajectories ``icarena pretrain icgp`` trains on), tokenized by each cell."""
    from icarena.experiments.icgp_decentralized import prepare_games

    return Path(prepare_games(_icgp_games_config(dataclasses.asdict(spec), seed, str(out))))


def references(cfg: Config, tasks: list[str]) -> list[dict[str, Any]]:
    """Classical reference rows on the same held-out data as the cells."""
    rows: list[dict[str, Any]] = []
    if "regression" in tasks:
        from icarena.envs.regression import make_family
        from icarena.evaluation.regression import baseline_errors
        from icarena.pretraining.data.regression import RegressionTask

        s = cfg.regression
        fam = make_family("linear", s.d)
        p = RegressionTask(fam, s.k, n_eval=s.n_eval, eval_seed=s.eval_seed).eval_prompts
        err = baseline_errors(p.x, p.y, fam.normaliser,
                              {"least squares": ("least_squares", {})})["least squares"]
        rows.append({"task": "regression", "backbone": "least squares (reference)",
                     "metric": float(err.mean(0)[2 * s.d])})
    if "icgp" in tasks:
        from icarena.evaluation.nash import record_gap_curves, uniform_gap
        from icarena.pretraining.game_lm import context_records, eval_games

        s = cfg.icgp
        g = _icgp_games_config(dataclasses.asdict(s), cfg.seed)
        games = eval_games(g.H, g.S, g.A, g.B, s.eval_games, s.eval_seed)
        rec = context_records(games, "viulcb", s.episodes, 1, seed=cfg.seed,
                              algo_kwargs=dict(s.context_options))
        rows.append({"task": "icgp", "backbone": "VI-ULCB (context algorithm)",
                     "metric": float(record_gap_curves(games, rec)["avg"][:, -1].mean())})
        rows.append({"task": "icgp", "backbone": "uniform play",
                     "metric": float(np.mean(uniform_gap(games)))})
    return rows


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


def pivot(cells: list[dict[str, Any]], tasks: list[str], names: list[str]) -> str:
    """Markdown: backbone x task metric."""
    from icarena.evaluation.report import markdown_table

    by = {(c["task"], c["backbone"]): c["metric"] for c in cells}
    headers = ["backbone"] + [f"{t}: {METRICS[t][0]}" for t in tasks]
    rows = [[b] + [by.get((t, b), float("nan")) for t in tasks] for b in names]
    return markdown_table(headers, rows, digits=3)


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Train every (task, backbone) cell, write metrics.json, report.md and the loss-curve PNG."""
    from icarena.evaluation.report import (
        line_plot,
        markdown_table,
        summary_metrics,
        write_metrics,
        write_report,
    )
    from icarena.pretraining.data.store import atomic_write_json

    names, tasks, extra = resolve(cfg)
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    t_start = time.perf_counter()
    data: dict[str, str | None] = {"regression": None}
    if "alpine" in tasks:
        data["alpine"] = str(prepare_alpine(cfg.alpine, out / "data" / "alpine", cfg.seed))
    if "icgp" in tasks:
        data["icgp"] = str(prepare_icgp(cfg.icgp, out / "data" / "icgp", cfg.seed))
    refs = references(cfg, tasks)

    cells: list[dict[str, Any]] = []
    for task in tasks:
        for b in names:
            cell = {"task": task, "backbone": b, "options": extra[b],
                    "spec": dataclasses.asdict(cfg.spec(task)), "data": data[task],
                    "out_dir": str(out / "cells" / task / b), "seed": cfg.seed,
                    "threads": cfg.train.threads, "device": cfg.train.device,
                    "resume": cfg.resume and Path(out / "cells" / task / b).exists(),
                    "isolated": cfg.train.isolate}
            done = Path(cell["out_dir"]) / "cell.json"
            if cfg.resume and done.is_file():  # finished before the run was stopped
                cells.append(json.loads(done.read_text()))
                continue
            print(f"[backbones] {task} / {b} ...", flush=True)
            res = _run_isolated(cell) if cfg.train.isolate else run_cell(cell)
            atomic_write_json(Path(cell["out_dir"]) / "cell.json", res)  # partial results
            print(f"[backbones] {task} / {b}: {METRICS[task][0]} = {res['metric']:.4f}, "
                  f"{res['ms_per_step']:.1f} ms/step, {res['train_s']:.1f} s", flush=True)
            cells.append(res)
    total_s = time.perf_counter() - t_start

    # SympFormer vs GPT on regression (acceptance item): smoothed training-loss curves
    reg = {c["backbone"]: c for c in cells if c["task"] == "regression"}
    plots, symp_text = [], ("SympFormer vs GPT: needs both `gpt` and `sympformer` on the "
                            "`regression` task in this run.")
    if "gpt" in reg and "sympformer" in reg:
        steps = np.arange(1, len(reg["gpt"]["losses"]) + 1)
        line_plot(out / "sympformer_vs_gpt.png", steps,
                  {f"{b} ({reg[b]['params']:,} params)": ema(reg[b]["losses"], cfg.eval.smoothing)
                   for b in ("gpt", "sympformer")},
                  xlabel="training step", ylabel=f"training MSE (EMA {cfg.eval.smoothing})",
                  title="SympFormer vs GPT, in-context linear regression", logy=True)
        plots.append("sympformer_vs_gpt.png")
        s = cfg.regression
        symp_text = (
            f"Both trained on `regression` with the same budget: {s.n_layers} layers, width "
            f"{s.d_model}, {s.n_heads} heads, {s.steps} steps of batch {s.batch_size}, lr "
            f"{s.lr}, same seed and batches.\n\n" + markdown_table(
                ["backbone", "params (model)", "params (backbone)", "final loss (last 10%)",
                 METRICS["regression"][0], "ms/step"],
                [[b, reg[b]["params"], reg[b]["backbone_params"], reg[b]["final_loss"],
                  reg[b]["metric"], reg[b]["ms_per_step"]] for b in ("gpt", "sympformer")],
                digits=4) + "\n\n![SympFormer vs GPT](sympformer_vs_gpt.png)")
    if "regression" in tasks and len(reg) >= 2:
        steps = np.arange(1, len(next(iter(reg.values()))["losses"]) + 1)
        line_plot(out / "regression_loss_all.png", steps,
                  {b: ema(c["losses"], cfg.eval.smoothing) for b, c in reg.items()},
                  xlabel="training step", ylabel="training MSE (EMA)",
                  title="all backbones, regression", logy=True)
        plots.append("regression_loss_all.png")

    headers = ["task", "backbone", "metric", "params", "backbone params", "tokens/s",
               "ms/step", "peak mem (MB)", "peak growth (MB)", "train s", "eval s"]
    table_rows = [[c["task"], c["backbone"], c["metric"], c["params"], c["backbone_params"],
                   c["tokens_per_s"], c["ms_per_step"], c["peak_mem_mb"], c["peak_growth_mb"],
                   c["train_s"], c["eval_s"]] for c in cells]
    table_rows += [[r["task"], r["backbone"], r["metric"]] + ["-"] * 8 for r in refs]
    budget_lines = "\n".join(
        f"- **{t}** ({METRICS[t][1]}): " + ", ".join(
            f"{k} {v}" for k, v in dataclasses.asdict(cfg.spec(t)).items())
        for t in tasks)
    mem_note = ("Peak memory: each cell ran in its own process; `peak mem` is its max RSS "
                "(CPU) or max CUDA allocation, `peak growth` the rise of the peak during "
                "training + evaluation." if cfg.train.isolate else
                "Peak memory: not measured (isolate=False: the cells shared one process, whose "
                "max RSS never decreases).")
    threads = cfg.train.threads or torch.get_num_threads()
    sections = [
        f"{len(names)} backbones x {len(tasks)} tasks, seed {cfg.seed}, device {cfg.train.device}, "
        f"{threads} torch thread(s) per cell; total {total_s:.0f} s. Every backbone is built "
        "causal (BiXT: exact prefix re-encoding, O(T^2) per sequence; supernet: uniform "
        "single-path training, scored at its max sub-network).",
        "## Budget (same for every backbone of a task)\n\n" + budget_lines,
        "## Task metric by backbone\n\n" + pivot(cells, tasks, names),
        "## All cells\n\n" + markdown_table(headers, table_rows, digits=4) + "\n\n" + mem_note
        + " tokens/s and ms/step cover the training steps only (no evaluation).",
        "## SympFormer vs GPT (equal depth and width)\n\n" + symp_text,
    ]
    if "regression_loss_all.png" in plots:
        sections.append("![all backbones](regression_loss_all.png)")
    report = write_report(out, "Backbone comparison across in-context tasks", sections)
    rows = [{"task": c["task"], "backbone": c["backbone"], "metric": METRICS[c["task"]][0],
             "value": round(float(c["metric"]), 4), "params": c["params"],
             "tok/s": round(float(c["tokens_per_s"]), 1),
             "ms/step": round(float(c["ms_per_step"]), 1),
             "peak MB": round(float(c["peak_mem_mb"]), 1)} for c in cells]
    rows += [{"task": r["task"], "backbone": r["backbone"], "metric": METRICS[r["task"]][0],
              "value": round(r["metric"], 4)} for r in refs]
    write_metrics(out, {"cells": cells, "references": refs, "total_s": total_s,
                        "backbones": names, "tasks": tasks, **summary_metrics(rows)})
    return {"report": str(report), "rows": rows}


__all__ = ["Config", "RegressionSpec", "AlpineSpec", "IcgpSpec", "quick_config", "run",
           "run_cell", "resolve", "ema", "pivot", "references", "TASKS", "METRICS"]

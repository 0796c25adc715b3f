"""S3 / AutoFormer-style architecture search over the ``supernet`` backbone (``icarena search``).

Pipeline (Chen et al., AutoFormer ICCV 2021 and S3 NeurIPS 2021, arXiv 2111.14725; AutoFormer arXiv
2107.00651), on in-context regression (:class:`~icarena.pretraining.data.regression.
RegressionTask`, Garg et al. prompts):

1. **Supernet training** (uniform single-path): the Trainer runs a :class:`SupernetTask`, a task
   wrapper whose ``sample_batch(rng, B)`` first draws a sub-network from the step's rng
   (``supernet.sample_config``) and makes it active (``set_active``), then draws the batch; the
   step's forward/backward therefore runs only through that sub-network's slices. Because the
   Trainer's rng is a pure function of (seed, rank, step), a resumed run samples the same
   sub-networks. The run dir ``<out_dir>/supernet`` is a normal run dir (its model loads at the
   max configuration).
2. **Evolutionary search** with inherited weights. Genome (depth, embed, heads[1..depth],
   mlp_ratio[1..depth]). Population ``population`` of legal random configs; each generation keeps
   the ``top_k`` best (unique) configs and adds ``n_mutations`` mutants of random top-k parents
   (depth resampled with ``p_depth`` -- truncate or extend with random layers --, embed with
   ``p_embed``, every per-layer gene with ``p_layer``) and ``n_crossovers`` children of two
   random top-k parents (depth and embed from one parent each at random, every per-layer gene
   from a random parent that has that layer: gene-wise uniform crossover, which for equal
   depths is AutoFormer's rule). Legal = in the space and ``param_min <= params <= param_max``
   (backbone sub-network parameters, read-in/out excluded); illegal offspring are redrawn.
3. **Fitness** = validation loss (the task's MSE) of the sub-network with inherited weights on a
   validation prompt set drawn from its own seed stream; the task's held-out **test** prompts
   (``RegressionTask.evaluate``) are used only to report the two winners after the search.
4. **Random search** on the same budget (the number of distinct configs evolution evaluated), as
   the control.
5. The winner is **extracted** as a standalone dense model (backbone
   ``SuperTransformer.extract``, read-in rows and read-out columns sliced to its embed); its
   outputs are checked to equal the supernet's, and it is written as a run dir
   ``<out_dir>/winner`` (loadable with :func:`icarena.pretraining.model.load_model`), after an
   optional retraining of ``retrain_steps`` steps from the inherited weights.
6. **Comparison** (:class:`Comparison`, S3 step 5: the searched architecture is retrained from
   scratch): the evolution winner, the random-search winner and a hand-set GPT (the ``gpt``
   backbone at a fixed shape, under the same parameter cap) are each trained from a fresh
   initialisation for the same steps, on the same batches (same seed), and scored on the test
   prompts. This is S3's claim ("a searched sub-network beats a hand-set one at the same size")
   in a form that separates the architecture from the weight sharing.

Not implemented: the S3 search-space evolution (E-T error, range shifts) outer loop.

Writes ``config.json``, ``search.json`` (all results) and ``report.md`` into ``out_dir`` (and
the comparison's run dirs ``scratch-evolution``, ``scratch-random``, ``handset-gpt``);
returns ``{"report": path, "rows": [...], **results}``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from icarena.envs.regression.families import make_family, sample_prompts
from icarena.errors import ConfigError, check
from icarena.lifecycle import (
    atomic_write_bytes,
    atomic_write_json,
    recorded_config,
    writes_run,
)
from icarena.pretraining.backbones import build
from icarena.pretraining.backbones.supernet import SubnetConfig, SuperTransformer
from icarena.pretraining.data.regression import RegressionTask, tokenize
from icarena.pretraining.model import ModelConfig, SequenceModel
from icarena.pretraining.train import TrainConfig, save_weights, seed_everything, train

_VAL_STREAM = 0x5EA4C4  # seed-sequence word of the validation prompts (distinct from test)


@dataclass
class SearchData:
    """The in-context regression task the sub-networks are searched on (Garg et al. prompts)."""

    family: str = "linear"
    """Regression function family (linear, sparse_linear, relu_2nn, decision_tree, holder, ...)."""
    d: int = 3
    """Input dimension."""
    k: int = 7
    """Points per prompt (the last one is read at k = 2d examples at the defaults)."""


@dataclass
class SearchModel:
    """The supernet: its maxima and its space (empty choices = the toy space scaled to the
    maxima)."""

    d_model: int = 64
    """Max embed width."""
    n_layers: int = 6
    """Max depth."""
    n_heads: int = 4
    """Max heads per layer."""
    head_dim: int = 16
    """Fixed head width."""
    mlp_ratio: float = 4.0
    """Max MLP ratio."""
    depth_choices: tuple[int, ...] = ()
    """Depth choices (empty: {2,3,4,6} at the defaults)."""
    embed_choices: tuple[int, ...] = ()
    """Embed choices (empty: {32,48,64} at the defaults)."""
    head_choices: tuple[int, ...] = ()
    """Per-layer head choices (empty: {1,2,4} at the defaults)."""
    mlp_ratio_choices: tuple[float, ...] = ()
    """Per-layer MLP ratio choices (empty: {2,3,4} at the defaults)."""
    causal: bool = True
    """Causal supernet (the regression prompts are read causally at x-token positions)."""


@dataclass
class SearchTrain:
    """Supernet training (one sampled sub-network per step) and the winner's retraining."""

    steps: int = 6000
    """Supernet training steps."""
    batch_size: int = 64
    """Prompts per step."""
    lr: float = 1e-3
    """Peak learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    retrain_steps: int = 0
    """Steps to retrain the extracted winner from its inherited weights (0: none)."""


@dataclass
class SearchEval:
    """The prompts sub-networks are scored on."""

    n_val: int = 512
    """Validation prompts (the search's fitness)."""
    n_test: int = 1280
    """Held-out test prompts (reported for the winners only)."""
    test_seed: int = 1234
    """Seed of the test prompts."""


@dataclass
class Evolution:
    """The evolutionary search over sub-networks (and the random-search control)."""

    population: int = 16
    """Population size."""
    top_k: int = 4
    """Parents kept per generation."""
    n_mutations: int = 6
    """Mutants per generation."""
    n_crossovers: int = 6
    """Crossover children per generation."""
    generations: int = 5
    """Generations."""
    p_depth: float = 0.4
    """Mutation probability of the depth."""
    p_embed: float = 0.4
    """Mutation probability of the embed width."""
    p_layer: float = 0.2
    """Mutation probability of each per-layer gene (heads, MLP ratio)."""
    param_min: int = 0
    """Smallest legal backbone sub-network (parameters)."""
    param_max: int = 151_000
    """Largest legal backbone sub-network (parameters): the cap (at the defaults just above the
    comparison's hand-set GPT, 150,976)."""


@dataclass
class Comparison:
    """S3 step 5 and its controls: the searched winners retrained from scratch next to a
    hand-set GPT under the same parameter cap (same steps, batch, learning rate and batches)."""

    steps: int = 4000
    """Training steps of each from-scratch model (0: no comparison)."""
    gpt_layers: int = 3
    """Depth of the hand-set GPT."""
    gpt_width: int = 64
    """Width (d_model) of the hand-set GPT."""
    gpt_heads: int = 2
    """Attention heads of the hand-set GPT."""
    gpt_mlp_ratio: float = 4.0
    """MLP ratio of the hand-set GPT."""


@dataclass
class SearchConfig:
    """S3-style search: train a weight-sharing supernet, evolve sub-networks, extract the best."""

    out_dir: str = "runs/search"
    """Output directory (supernet run dir, winner run dir, search.json, report.md)."""
    seed: int = 0
    """Seed of everything (init, training batches, sub-network sampling, evolution)."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the search in out_dir (killed or finished): the supernet (and the winner's
    retraining) from their checkpoints; the search itself is deterministic and runs again."""
    data: SearchData = field(default_factory=SearchData)
    """The regression task."""
    model: SearchModel = field(default_factory=SearchModel)
    """The supernet and its search space."""
    train: SearchTrain = field(default_factory=SearchTrain)
    """Supernet training."""
    eval: SearchEval = field(default_factory=SearchEval)
    """Validation (fitness) and test prompts."""
    search: Evolution = field(default_factory=Evolution)
    """The evolutionary search."""
    compare: Comparison = field(default_factory=Comparison)
    """The winners retrained from scratch against a hand-set GPT under the same cap."""

    def validate(self) -> None:
        groups = {"data": ("d", "k"), "eval": ("n_val", "n_test"),
                  "train": ("steps", "batch_size"),
                  "search": ("population", "top_k", "generations")}
        for group, names in groups.items():
            for name in names:
                v = getattr(getattr(self, group), name)
                check(v >= 1, f"{group}.{name} must be >= 1, got {v}")
        for group, name in (("search", "n_mutations"), ("search", "n_crossovers"),
                            ("train", "retrain_steps"), ("search", "param_min"),
                            ("train", "warmup_steps"), ("compare", "steps")):
            v = getattr(getattr(self, group), name)
            check(v >= 0, f"{group}.{name} must be >= 0, got {v}")
        ev = self.search
        check(ev.top_k <= ev.population,
              f"search.top_k ({ev.top_k}) must be <= search.population ({ev.population})")
        for name in ("p_depth", "p_embed", "p_layer"):
            v = getattr(ev, name)
            check(0.0 <= v <= 1.0, f"search.{name} must be in [0, 1], got {v}")
        check(ev.param_min <= ev.param_max,
              f"search.param_min ({ev.param_min}) must be <= search.param_max ({ev.param_max})")
        c = self.compare
        if c.steps > 0:
            for name in ("gpt_layers", "gpt_width", "gpt_heads"):
                v = getattr(c, name)
                check(v >= 1, f"compare.{name} must be >= 1, got {v}")
            check(c.gpt_width % c.gpt_heads == 0, f"compare.gpt_width ({c.gpt_width}) must be "
                  f"a multiple of compare.gpt_heads ({c.gpt_heads})")
            n = handset_params(self)
            check(ev.param_min <= n <= ev.param_max,
                  f"the hand-set GPT ({c.gpt_layers} layers, width {c.gpt_width}) has {n} "
                  f"backbone parameters, outside the search's range [{ev.param_min}, "
                  f"{ev.param_max}]: the comparison needs both under the same cap; change "
                  "--compare.gpt-layers / --compare.gpt-width or --search.param-max")

    def backbone_cfg(self) -> dict[str, Any]:
        m = self.model
        return {"d_model": m.d_model, "n_layers": m.n_layers, "n_heads": m.n_heads,
                "head_dim": m.head_dim, "mlp_ratio": m.mlp_ratio,
                "depth_choices": list(m.depth_choices),
                "embed_choices": list(m.embed_choices),
                "head_choices": list(m.head_choices),
                "mlp_ratio_choices": list(m.mlp_ratio_choices),
                "causal": m.causal, "max_len": 2 * self.data.k}

    def handset_model_cfg(self) -> ModelConfig:
        """The hand-set GPT of the comparison, as a regression task model."""
        c = self.compare
        return ModelConfig(backbone="gpt", backbone_cfg={
            "d_model": c.gpt_width, "n_layers": c.gpt_layers, "n_heads": c.gpt_heads,
            "mlp_ratio": c.gpt_mlp_ratio, "causal": self.model.causal,
            "max_len": 2 * self.data.k}, input_kind="vectors", input_dim=self.data.d,
            output_dim=1)


def handset_params(cfg: SearchConfig) -> int:
    """Backbone parameters of the comparison's hand-set GPT (the search's cap counts the same)."""
    return build("gpt", **cfg.handset_model_cfg().backbone_cfg).num_params()


def quick_config(out_dir: str) -> SearchConfig:
    """A tiny search that finishes in seconds (for quickstart and tests)."""
    return SearchConfig(
        out_dir=out_dir, data=SearchData(d=3, k=6),
        model=SearchModel(d_model=16, n_layers=3, n_heads=2, head_dim=8),
        train=SearchTrain(steps=30, batch_size=16, warmup_steps=5, threads=1),
        eval=SearchEval(n_val=64, n_test=64),
        search=Evolution(population=6, top_k=2, n_mutations=2, n_crossovers=2, generations=2,
                         param_max=20_000),
        compare=Comparison(steps=10, gpt_layers=2, gpt_width=16))


# ---------------------------------------------------------------------------------------------
# Supernet training: a task wrapper that activates a sampled sub-network every step
# ---------------------------------------------------------------------------------------------


def supernet_of(model: nn.Module) -> SuperTransformer:
    """The SuperTransformer inside a SequenceModel (or the model itself)."""
    net = getattr(model, "backbone", model)
    check(isinstance(net, SuperTransformer),
          f"expected a model with a 'supernet' backbone, got {type(net).__name__}")
    return net


class SupernetTask:
    """Uniform single-path supernet training on top of any Trainer task.

    ``sample_batch`` draws the step's sub-network from the step rng and activates it, then draws
    the batch from the same rng; ``loss`` is the inner task's. ``evaluate`` reports the
    validation loss of the max and min sub-networks (``fitness``), not the test metrics.
    """

    def __init__(self, task: Any, supernet: SuperTransformer,
                 fitness: Callable[[nn.Module], float]):
        self.task, self.supernet, self.fitness = task, supernet, fitness
        self.tokens_per_sample = getattr(task, "tokens_per_sample", 0)
        self.sampled: list[SubnetConfig] = []

    def to(self, device: torch.device | str) -> None:
        """Put the wrapped task's dataset on ``device`` when it can (Trainer hook)."""
        if hasattr(self.task, "to"):
            self.task.to(device)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        sub = self.supernet.sample_config(rng)
        self.supernet.set_active(sub)
        self.sampled.append(sub)
        return self.task.sample_batch(rng, batch_size)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.task.loss(model, batch)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        keep = self.supernet.active
        out = {}
        for name, sub in (("max", self.supernet.max_config()),
                          ("min", self.supernet.min_config())):
            self.supernet.set_active(sub)
            out[f"val_loss_{name}"] = self.fitness(model)
        self.supernet.set_active(keep)
        return out


# ---------------------------------------------------------------------------------------------
# Evolution (pure functions of the genome, the space and an rng)
# ---------------------------------------------------------------------------------------------


def is_legal(net: SuperTransformer, sub: SubnetConfig, param_min: int, param_max: int) -> bool:
    """In the search space and within the parameter range."""
    return net.in_space(sub) and param_min <= net.count_params(sub) <= param_max


def mutate(sub: SubnetConfig, space: dict[str, tuple], rng: np.random.Generator,
           p_depth: float, p_embed: float, p_layer: float) -> SubnetConfig:
    """AutoFormer mutation: depth (truncate / extend with random genes), embed, per-layer genes."""
    heads, ratios = list(sub.heads), list(sub.mlp_ratios)
    depth = sub.depth
    if rng.random() < p_depth:
        depth = int(rng.choice(space["depth"]))
        while len(heads) < depth:
            heads.append(int(rng.choice(space["heads"])))
            ratios.append(float(rng.choice(space["mlp_ratio"])))
        heads, ratios = heads[:depth], ratios[:depth]
    embed = int(rng.choice(space["embed"])) if rng.random() < p_embed else sub.embed
    for i in range(depth):
        if rng.random() < p_layer:
            heads[i] = int(rng.choice(space["heads"]))
        if rng.random() < p_layer:
            ratios[i] = float(rng.choice(space["mlp_ratio"]))
    return SubnetConfig(depth, embed, tuple(heads), tuple(ratios))


def crossover(a: SubnetConfig, b: SubnetConfig, rng: np.random.Generator) -> SubnetConfig:
    """Gene-wise uniform crossover; depth and embed each from a random parent."""
    depth = a.depth if rng.random() < 0.5 else b.depth
    embed = a.embed if rng.random() < 0.5 else b.embed
    heads, ratios = [], []
    for i in range(depth):
        owners = [p for p in (a, b) if p.depth > i]
        heads.append(owners[int(rng.integers(len(owners)))].heads[i])
        ratios.append(owners[int(rng.integers(len(owners)))].mlp_ratios[i])
    return SubnetConfig(depth, embed, tuple(heads), tuple(ratios))


def _draw_legal(draw: Callable[[], SubnetConfig], legal: Callable[[SubnetConfig], bool],
                what: str, tries: int = 1000) -> SubnetConfig:
    for _ in range(tries):
        sub = draw()
        if legal(sub):
            return sub
    raise ConfigError(
        f"no legal {what} in {tries} draws: the parameter range [param_min, param_max] leaves "
        "(almost) no sub-network of the space; widen it (see count_params of the min/max config)"
    )


def _offspring(top: list[SubnetConfig], space: dict[str, tuple],
               legal: Callable[[SubnetConfig], bool], cfg: SearchConfig,
               rng: np.random.Generator) -> list[SubnetConfig]:
    """``n_mutations`` legal mutants and ``n_crossovers`` legal children of random top-k parents."""

    def mutant() -> SubnetConfig:
        parent = top[int(rng.integers(len(top)))]
        ev = cfg.search
        return mutate(parent, space, rng, ev.p_depth, ev.p_embed, ev.p_layer)

    def child() -> SubnetConfig:
        i, j = rng.integers(len(top), size=2)
        return crossover(top[int(i)], top[int(j)], rng)

    return ([_draw_legal(mutant, legal, "mutant") for _ in range(cfg.search.n_mutations)]
            + [_draw_legal(child, legal, "crossover child")
               for _ in range(cfg.search.n_crossovers)])


def evolve(net: SuperTransformer, fitness: Callable[[SubnetConfig], float], cfg: SearchConfig,
           rng: np.random.Generator) -> dict[str, Any]:
    """Evolutionary search; returns best, its fitness, per-generation history, evaluated set."""
    space = net.config.space()

    def legal(s: SubnetConfig) -> bool:
        return is_legal(net, s, cfg.search.param_min, cfg.search.param_max)

    cache: dict[SubnetConfig, float] = {}

    def score(s: SubnetConfig) -> float:
        if s not in cache:
            cache[s] = float(fitness(s))
        return cache[s]

    population = [_draw_legal(lambda: net.sample_config(rng), legal, "initial sub-network")
                  for _ in range(cfg.search.population)]
    history = []
    top: list[SubnetConfig] = []
    for gen in range(cfg.search.generations):
        ranked = sorted(dict.fromkeys(population), key=lambda s: (score(s), str(s)))
        top = ranked[: cfg.search.top_k]
        history.append({"generation": gen, "best_val_loss": score(top[0]),
                        "top_k_mean_val_loss": float(np.mean([score(s) for s in top])),
                        "evaluated": len(cache)})
        if gen == cfg.search.generations - 1:
            break
        population = top + _offspring(top, space, legal, cfg, rng)
    return {"best": top[0], "best_val_loss": score(top[0]), "history": history,
            "evaluated": list(cache)}


def random_search(net: SuperTransformer, fitness: Callable[[SubnetConfig], float], budget: int,
                  cfg: SearchConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Best of ``budget`` distinct legal uniform samples (or all legal ones if fewer exist)."""
    seen: dict[SubnetConfig, float] = {}
    misses = 0
    while len(seen) < budget and misses < 1000:
        s = _draw_legal(lambda: net.sample_config(rng),
                        lambda c: is_legal(net, c, cfg.search.param_min, cfg.search.param_max),
                        "random sub-network")
        if s in seen:
            misses += 1
            continue
        seen[s] = float(fitness(s))
    best = min(seen, key=lambda s: (seen[s], str(s)))
    return {"best": best, "best_val_loss": seen[best], "evaluated": len(seen)}


# ---------------------------------------------------------------------------------------------
# Extraction of a standalone task model
# ---------------------------------------------------------------------------------------------


def extract_model(model: SequenceModel, sub: SubnetConfig) -> SequenceModel:
    """A dense SequenceModel of width ``sub.embed`` whose outputs equal ``model`` at ``sub``.

    Backbone: ``SuperTransformer.extract``; read-in rows and read-out columns sliced to the embed
    (AutoFormer's embedding / head slicing).
    """
    net = supernet_of(model)
    dense = net.extract(sub)
    mcfg = dataclasses.replace(model.cfg, backbone="supernet",
                               backbone_cfg=json.loads(json.dumps(
                                   dataclasses.asdict(dense.config))))
    out = SequenceModel(mcfg)
    e = sub.embed
    with torch.no_grad():
        out.backbone.load_state_dict(dense.state_dict())
        if isinstance(out.read_in, nn.Embedding):
            out.read_in.weight.copy_(model.read_in.weight[:, :e])
        else:
            out.read_in.weight.copy_(model.read_in.weight[:e])
            out.read_in.bias.copy_(model.read_in.bias[:e])
        if not mcfg.tie_weights:
            out.read_out.weight.copy_(model.read_out.weight[:, :e])
            if out.read_out.bias is not None:
                out.read_out.bias.copy_(model.read_out.bias)
    return out.train(model.training)


def save_model_dir(model: SequenceModel, out: Path, extra: dict[str, Any]) -> None:
    """Write ``config.json`` + ``model.safetensors`` (a run dir that load_model reads)."""
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / "model.safetensors")
    atomic_write_json(out / "config.json", {"model": dataclasses.asdict(model.cfg), **extra})


# ---------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------


def _report(results: dict[str, Any]) -> str:
    lines = ["# S3-style search", "",
             "| method | val loss | test err (mean over k) | test err (last k) | params | config |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in results["rows"]:
        lines.append(f"| {row['method']} | {row['val_loss']:.4f} | {row['test_err']:.4f} | "
                     f"{row['err_last']:.4f} | {row['params']} | {row['config']} |")
    lines += ["", f"Distinct sub-networks evaluated (budget of both methods): "
              f"{results['n_evaluations']}; parameter cap {results['param_range']}.", "",
              "| generation | best val loss | top-k mean val loss |", "| --- | --- | --- |"]
    for h in results["history"]:
        lines.append(f"| {h['generation']} | {h['best_val_loss']:.4f} | "
                     f"{h['top_k_mean_val_loss']:.4f} |")
    lines += ["", f"Extracted winner == supernet at that config: max |diff| = "
              f"{results['extract_max_abs_diff']:.2e}; winner run dir: {results['winner_dir']}"]
    return "\n".join(lines) + "\n"


def _short(sub: SubnetConfig) -> str:
    heads = "".join(str(h) for h in sub.heads)
    ratios = "".join(f"{r:g}" for r in sub.mlp_ratios)
    return f"L{sub.depth} E{sub.embed} H[{heads}] R[{ratios}]"


@dataclass
class SupernetConfig:
    """Train the weight-sharing supernet alone (``icarena pretrain supernet``); search it later
    with ``icarena evaluate search --run-dir RUN``."""

    out_dir: str = "runs/supernet"
    """Run dir of the supernet (config.json, model.safetensors at the max sub-network, ckpt.pt)."""
    seed: int = 0
    """Seed of the init, the batches, the sampled sub-networks and the validation prompts."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished) with the same settings."""
    data: SearchData = field(default_factory=SearchData)
    """The regression task."""
    model: SearchModel = field(default_factory=SearchModel)
    """The supernet and its search space."""
    train: SearchTrain = field(default_factory=SearchTrain)
    """Supernet training (retrain_steps is not used here)."""
    eval: SearchEval = field(default_factory=SearchEval)
    """Validation prompts (logged for the max / min sub-networks) and test prompts."""

    def validate(self) -> None:
        SearchConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                     compare=Comparison(steps=0)).validate()

    backbone_cfg = SearchConfig.backbone_cfg


class SupernetProblem:
    """A supernet task model with its task and validation prompts, as ``cfg`` defines them."""

    def __init__(self, cfg: SearchConfig | SupernetConfig, model: SequenceModel | None = None):
        family = make_family(cfg.data.family, cfg.data.d)
        self.task = RegressionTask(family, cfg.data.k, n_eval=cfg.eval.n_test,
                                   eval_seed=cfg.eval.test_seed)
        val = sample_prompts(family, np.random.default_rng([cfg.seed, _VAL_STREAM]),
                             cfg.eval.n_val, cfg.data.k)
        self.val_tokens = tokenize(val.x, val.y)
        self.val_y = torch.as_tensor(val.y, dtype=torch.float32)
        if model is None:
            seed_everything(cfg.seed)
            model = SequenceModel(ModelConfig(backbone="supernet",
                                              backbone_cfg=cfg.backbone_cfg(),
                                              input_kind="vectors", input_dim=cfg.data.d,
                                              output_dim=1))
        self.model = model
        self.net = supernet_of(model)

    @torch.no_grad()
    def val_loss(self, m: nn.Module) -> float:
        was = m.training
        m.eval()
        loss = float(self.task.loss(m, {"tokens": self.val_tokens, "y": self.val_y}))
        m.train(was)
        return loss

    def fitness(self, sub: SubnetConfig) -> float:
        self.net.set_active(sub)
        return self.val_loss(self.model)


def _train_config(cfg: SearchConfig | SupernetConfig, steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=cfg.train.batch_size, lr=cfg.train.lr,
                       warmup_steps=min(cfg.train.warmup_steps, steps), seed=cfg.seed,
                       threads=cfg.train.threads, device="cpu", ckpt_every=max(1, steps // 4),
                       log_every=max(1, steps // 100), progress=False)


def train_supernet(cfg: SearchConfig | SupernetConfig, out_dir: str | Path,
                   config: dict[str, Any],
                   sn: SupernetProblem | None = None) -> tuple[SupernetProblem, Any]:
    """S3 step 1: uniform single-path training of the supernet ``sn`` (default: a fresh one
    from ``cfg``) into the run dir ``out_dir`` (``config`` is recorded in its config.json beside
    the model); returns (supernet, result)."""
    sn = sn or SupernetProblem(cfg)
    config = {"model": dataclasses.asdict(sn.model.cfg), **config}
    trained = train(sn.model, SupernetTask(sn.task, sn.net, sn.val_loss),
                    _train_config(cfg, cfg.train.steps), out_dir, config=config,
                    resume=cfg.resume)
    sn.model.eval()
    return sn, trained


@writes_run
def pretrain_supernet(cfg: SupernetConfig) -> dict[str, Any]:
    """``icarena pretrain supernet``: train the supernet into ``cfg.out_dir``."""
    cfg.validate()
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    _, trained = train_supernet(cfg, cfg.out_dir, {"pretrain": recorded_config(cfg)})
    return {"run_dir": cfg.out_dir, "rows": [{"final_loss": trained.losses[-1],
                                              **trained.final_eval}]}


def search_trained(sn: SupernetProblem, cfg: SearchConfig, out: Path,
                   supernet_dir: str | Path) -> dict[str, Any]:
    """S3 steps 2-5 on a trained supernet: evolution and the random-search control with
    inherited weights, extraction (and optional retraining) of the winner into ``out/winner``;
    writes ``out/search.json`` and ``out/report.md`` and returns the results."""
    t0 = time.perf_counter()
    net, model = sn.net, sn.model
    lo, hi = net.count_params(net.min_config()), net.count_params(net.max_config())
    check(cfg.search.param_max >= lo and cfg.search.param_min <= hi,
          f"the parameter range [{cfg.search.param_min}, {cfg.search.param_max}] misses the "
          f"space, whose sub-networks have {lo} to {hi} backbone parameters; change "
          "--search.param-min / --search.param-max")
    evo = evolve(net, sn.fitness, cfg, np.random.default_rng([cfg.seed, 1]))
    rnd = random_search(net, sn.fitness, len(evo["evaluated"]), cfg, np.random.default_rng(
        [cfg.seed, 2]))

    # the winner, standalone; its outputs must equal the supernet's at that config
    best: SubnetConfig = evo["best"]
    winner = extract_model(model, best).eval()
    net.set_active(best)
    with torch.no_grad():
        diff = float((winner(sn.val_tokens[:64]) - model(sn.val_tokens[:64])).abs().max())
    if diff > 1e-5:  # an internal invariant (tested), not a user error
        raise RuntimeError(f"extracted winner differs from the supernet by {diff}")
    winner_dir = out / "winner"
    extra = {"search": dataclasses.asdict(cfg), "subnet": best.to_dict()}
    retrain = cfg.train.retrain_steps
    if retrain > 0:
        train(winner.train(), sn.task, _train_config(cfg, retrain), winner_dir,
              resume=cfg.resume, config={"model": dataclasses.asdict(winner.cfg), **extra})
        winner.eval()
    else:
        save_model_dir(winner, winner_dir, extra)

    # test metrics: only now, only for the two winners
    test_err, test_curve = {}, {}
    for name, sub in (("evolution", best), ("random", rnd["best"])):
        net.set_active(sub)
        test_curve[name] = sn.task.evaluate(model)
        test_err[name] = test_curve[name]["err_mean"]
    if retrain > 0:
        test_err["evolution (retrained)"] = sn.task.evaluate(winner)["err_mean"]
    net.set_active(net.max_config())

    rows = [
        {"method": "evolution", "val_loss": evo["best_val_loss"], "test_err":
         test_err["evolution"], "err_last": _err_last(test_curve["evolution"], cfg.data.k),
         "params": net.count_params(best), "config": _short(best)},
        {"method": "random search", "val_loss": rnd["best_val_loss"], "test_err":
         test_err["random"], "err_last": _err_last(test_curve["random"], cfg.data.k),
         "params": net.count_params(rnd["best"]), "config": _short(rnd["best"])},
    ]
    compare = compare_from_scratch(sn, cfg, out, {"evolution": best, "random search":
                                                  rnd["best"]}, winner.cfg)
    rows += compare
    results: dict[str, Any] = {
        "best": best.to_dict(), "best_val_loss": evo["best_val_loss"],
        "best_params": net.count_params(best),
        "random_best": rnd["best"].to_dict(), "random_val_loss": rnd["best_val_loss"],
        "random_params": net.count_params(rnd["best"]),
        "n_evaluations": len(evo["evaluated"]), "history": evo["history"],
        "test_err": test_err, "param_range": [cfg.search.param_min, cfg.search.param_max],
        "extract_max_abs_diff": diff, "supernet_dir": str(supernet_dir),
        "compare": compare, "test_curves": test_curve,
        "winner_dir": str(winner_dir), "search_seconds": time.perf_counter() - t0,
        "rows": rows,
        "columns": list(rows[0]),  # the table order for `icarena report` (keys are sorted on disk)
    }
    atomic_write_json(out / "search.json", results)
    report = out / "report.md"
    atomic_write_bytes(report, _report(results).encode())
    results["report"] = str(report)
    return results


def _err_last(curve: dict[str, float], k: int) -> float:
    """The test error at the last point of a k-point prompt (k - 1 examples in context)."""
    return curve[f"err_k{k - 1}"]


def compare_from_scratch(sn: SupernetProblem, cfg: SearchConfig, out: Path,
                         winners: dict[str, SubnetConfig],
                         like: ModelConfig) -> list[dict[str, Any]]:
    """S3 step 5 with its controls: each winner's architecture and the hand-set GPT, trained
    from a fresh initialisation for ``cfg.compare.steps`` steps on the same batches (same
    seed), into ``out/scratch-evolution``, ``out/scratch-random`` and ``out/handset-gpt``;
    returns one result row per model (none when ``compare.steps`` is 0).

    ``like`` is the extracted winner's task-model config (read-in / read-out as the search's);
    a random-search winner equal to the evolution winner is not trained twice.
    """
    if cfg.compare.steps == 0:
        return []
    models: list[tuple[str, str, ModelConfig, str]] = []
    for (name, sub), dirname in zip(winners.items(), ("scratch-evolution", "scratch-random"),
                                    strict=True):
        dense = sn.net.extract(sub).config
        mcfg = dataclasses.replace(like, backbone_cfg=json.loads(json.dumps(
            dataclasses.asdict(dense))))
        models.append((f"{name}, retrained from scratch", dirname, mcfg, _short(sub)))
    c = cfg.compare
    models.append(("hand-set GPT", "handset-gpt", cfg.handset_model_cfg(),
                   f"GPT L{c.gpt_layers} E{c.gpt_width} H{c.gpt_heads} R{c.gpt_mlp_ratio:g}"))
    rows: list[dict[str, Any]] = []
    done: dict[str, dict[str, Any]] = {}
    for method, dirname, mcfg, short in models:
        if short in done:  # the same architecture: the same run
            rows.append({**done[short], "method": method})
            continue
        seed_everything(cfg.seed)
        model = SequenceModel(mcfg)
        trained = train(model, sn.task, _train_config(cfg, c.steps), out / dirname,
                        resume=cfg.resume, config={"model": dataclasses.asdict(mcfg),
                                                   "search": dataclasses.asdict(cfg)})
        model.eval()
        curve = trained.final_eval
        done[short] = {"method": method, "val_loss": sn.val_loss(model),
                       "test_err": curve["err_mean"], "err_last": _err_last(curve, cfg.data.k),
                       "params": model.backbone.num_params(), "config": short}
        rows.append(done[short])
    return rows


@writes_run
def search(cfg: SearchConfig) -> dict[str, Any]:
    """Run the whole pipeline (see the module docstring) and write its outputs."""
    cfg.validate()
    out = Path(cfg.out_dir)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    t0 = time.perf_counter()
    sn = SupernetProblem(cfg)
    lo, hi = sn.net.count_params(sn.net.min_config()), sn.net.count_params(sn.net.max_config())
    check(cfg.search.param_max >= lo and cfg.search.param_min <= hi,  # before any training
          f"the parameter range [{cfg.search.param_min}, {cfg.search.param_max}] misses the "
          f"space, whose sub-networks have {lo} to {hi} backbone parameters; change "
          "--search.param-min / --search.param-max")
    config = {"search": dataclasses.asdict(cfg)}
    sn, trained = train_supernet(cfg, out / "supernet", config, sn)
    results = search_trained(sn, cfg, out, out / "supernet")
    results.update(supernet_final_loss=trained.losses[-1], supernet_eval=trained.final_eval,
                   seconds=time.perf_counter() - t0)
    atomic_write_json(out / "config.json", {"model": dataclasses.asdict(sn.model.cfg),
                                            **config})
    atomic_write_json(out / "search.json", {k: v for k, v in results.items() if k != "report"})
    return results


# the names `icarena pretrain supernet` looks up (icarena.pretraining.pretrain)
PretrainConfig = SupernetConfig
pretrain = pretrain_supernet

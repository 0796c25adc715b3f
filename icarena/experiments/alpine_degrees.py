"""``icarena run alpine-degrees``: ALPINE's transitivity finding over graphs, with intervals.

ALPINE (Wang et al. 2024, arXiv 2405.09220) and its multi-token follow-up report that a path
model fails where a test pair needs reachability it never observed: accuracy falls with the
*degree* of the pair (0: observed as a training pair; 1: one concatenation of observed
reachability; 2: two; 3: more). One graph and one seed leave that undecided, because a 50% split
of a 100-node DAG has only a handful of degree-2 test pairs.

This experiment runs the ``alpine`` experiment once per (graph seed, train fraction) cell, each
a normal run dir under ``cells/f<fraction>/seed<s>/`` (its own graph, initialisation, batches and
sampled prompts), and pools the sampled completions per degree over the graphs. The interval of
each per-degree accuracy and of the gap ``accuracy(degree 1) - accuracy(degree 2)`` is a
two-level bootstrap (:func:`icarena.evaluation.intervals.two_level_bootstrap`): graphs resampled
with replacement, then the distinct test pairs within each drawn graph (with all their sampled
completions). The finding "degree 2 is at least 20 points below degree 1" *holds* when the gap's
whole interval is at or above 0.20, *does not hold* when it is entirely below, and is
*undecided* otherwise.

Cells run ``--workers`` at a time, each in its own process; ``--resume`` keeps finished cells
and resumes the others. Every ``alpine`` flag (``--data.*``, ``--model.*``, ``--train.*``,
``--eval.*``) sets the cells (``--data.nodes 200`` for the larger graph; ``--data.train-fraction``
is replaced by ``--train-fractions``). Measured numbers: ``docs/results/alpine-degrees.md``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import check
from icarena.evaluation.intervals import percentile_interval, two_level_bootstrap
from icarena.evaluation.path_eval import PathEval, load_trials
from icarena.evaluation.report import (
    markdown_table,
    save_figure,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.experiments import alpine
from icarena.lifecycle import writes_run
from icarena.pretraining.data import alpine as alpine_data
from icarena.pretraining.data.store import atomic_write_json
from icarena.pretraining.model import ModelSpec
from icarena.pretraining.path_lm import alpine_model
from icarena.pretraining.train import TrainConfig

DEGREE_NAMES = ("0", "1", "2", ">=3")
GAP_CLAIM = 0.20
"""ALPINE's transitivity finding as tested here: accuracy(degree 1) - accuracy(degree 2) >= 0.20."""


@dataclass
class Config:
    """ALPINE's per-degree accuracy over several graphs and both splits, with bootstrap intervals.

    Cost: one ``icarena run alpine`` per cell (graphs x train fractions), ``workers`` at once;
    the defaults (10 cells at n = 100, 2 workers) take about 35 min on a 2-core CPU
    (``docs/results/runtimes.metrics.json``).
    """

    out_dir: str = "runs/alpine-degrees"
    """Run directory (report, metrics, plot; cells/f<fraction>/seed<s>/ the alpine runs)."""
    seed: int = 0
    """First graph seed: the cells use seeds seed, seed + 1, ..., seed + graphs - 1."""
    graphs: int = 5
    """Graphs (seeds) per train fraction."""
    train_fractions: tuple[float, ...] = (0.5, 0.1)
    """Train fractions of the reachable pairs (ALPINE's 50% and 10% splits); cells for each."""
    workers: int = 2
    """Cells run at once, each in its own process (1: one after the other in this process)."""
    bootstrap: int = 10_000
    """Bootstrap replicates of the two-level resample."""
    compare_to: str = ""
    """A finished alpine-degrees run dir on the same graphs (e.g. without --data.chain-lines):
    adds each degree's accuracy difference, this run minus that one, with a paired bootstrap
    interval over the graphs and test pairs both runs share ('' = no comparison)."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir: finished cells are kept, the others resume or start."""
    data: alpine_data.Spec = field(default_factory=alpine_data.Spec)
    """Each cell's dataset (its train_fraction is set per cell from train_fractions)."""
    model: ModelSpec = field(default_factory=alpine_model)
    """Each cell's model (ALPINE: 1 layer, 1 head, width 120)."""
    train: TrainConfig = field(default_factory=lambda: alpine.default_train().replace(threads=0))
    """Each cell's optimisation, as alpine's; threads per cell (0: 1 when several cells run at
    once, else 2 as alpine)."""
    eval: PathEval = field(default_factory=PathEval)
    """Each cell's evaluation protocol."""

    def validate(self) -> None:
        check(isinstance(self.graphs, int) and self.graphs >= 1,
              f"graphs must be an int >= 1, got {self.graphs!r}")
        check(len(self.train_fractions) >= 1 and all(0 < f < 1 for f in self.train_fractions),
              f"train_fractions must be values in (0, 1), got {list(self.train_fractions)}")
        check(len(set(self.train_fractions)) == len(self.train_fractions),
              f"train_fractions lists a value twice: {list(self.train_fractions)}")
        check(self.data.train_fraction == alpine_data.Spec.train_fraction,
              "alpine-degrees sets each cell's train fraction from --train-fractions; pass "
              f"--train-fractions {self.data.train_fraction:g} instead of --data.train-fraction")
        check(isinstance(self.workers, int) and self.workers >= 1,
              f"workers must be an int >= 1, got {self.workers!r}")
        check(isinstance(self.bootstrap, int) and self.bootstrap >= 100,
              f"bootstrap must be an int >= 100 replicates, got {self.bootstrap!r}")
        self.eval.validate()
        if self.compare_to:
            other = Path(self.compare_to)
            check((other / "config.json").is_file() and (other / "cells").is_dir(),
                  f"--compare-to {self.compare_to} is not an alpine-degrees run dir (no "
                  "config.json and cells/ there); pass the --out-dir of a finished run")


def cell_dir(out: Path, fraction: float, seed: int) -> Path:
    return out / "cells" / f"f{fraction:g}" / f"seed{seed}"


def cell_configs(cfg: Config) -> list[alpine.Config]:
    """One ``alpine`` config per (train fraction, graph seed), fractions outermost."""
    threads = cfg.train.threads or (1 if cfg.workers > 1 else 2)
    cells = []
    for f in cfg.train_fractions:
        for s in range(cfg.seed, cfg.seed + cfg.graphs):
            where = cell_dir(Path(cfg.out_dir), f, s)
            cells.append(alpine.Config(
                out_dir=str(where), seed=s, resume=cfg.resume and where.exists(),
                data=dataclasses.replace(cfg.data, train_fraction=float(f)),
                model=dataclasses.replace(cfg.model),
                train=dataclasses.replace(cfg.train, threads=threads),
                eval=dataclasses.replace(cfg.eval)))
    return cells


def finished(cell: alpine.Config) -> bool:
    """Whether a cell's run ended (the alpine run writes metrics.json and trials.npz last)."""
    where = Path(cell.out_dir)
    return (where / "metrics.json").is_file() and (where / "trials.npz").is_file()


def _run_cell(cell: alpine.Config) -> str:
    t0 = time.perf_counter()
    alpine.run(cell)
    return f"{time.perf_counter() - t0:.0f} s"


def run_cells(cfg: Config, cells: list[alpine.Config]) -> None:
    """Run the unfinished ``cells``, ``workers`` at once (each in a fresh spawned process that
    exits with this one), printing each as it ends."""
    import multiprocessing

    from icarena.lifecycle import die_with_parent

    todo = [c for c in cells if not (cfg.resume and finished(c))]
    for c in todo:
        print(f"[alpine-degrees] cell {c.out_dir} ...", flush=True)
    if cfg.workers == 1:
        for c in todo:
            print(f"[alpine-degrees] {c.out_dir}: done in {_run_cell(c)}", flush=True)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        for c, took in zip(todo, pool.map(_run_cell, todo), strict=True):
            print(f"[alpine-degrees] {c.out_dir}: done in {took}", flush=True)


def alpine_degrees_of(cell: Path, trials: dict[str, np.ndarray]) -> np.ndarray:
    """The trials' degrees under ALPINE's own training lines: the recorded ones, except for a
    dataset with chained lines (``--data.chain-lines``), whose degrees are recomputed from its
    lines without the chained ones (the last rows), so the same test pair keeps the same label
    with and without chains."""
    from icarena.evaluation.planning import degrees, load_path_dataset, observed_matrices

    data = load_path_dataset(cell / "data")
    chained = int(data.config.get("chain_lines", 0))
    if chained == 0:
        return trials["degree"]
    base = data.train_tokens[: len(data.train_tokens) - chained]
    pairs = np.stack([trials["source"], trials["target"]], axis=1)
    return degrees(*observed_matrices(base, data.n), pairs)


def cell_trials(cell: Path) -> dict[str, np.ndarray]:
    """A finished cell's trials with ALPINE degrees (:func:`alpine_degrees_of`) under
    ``degree`` and the degrees under the cell's own lines under ``own_degree``."""
    trials = load_trials(cell / "trials.npz")
    return dict(trials, degree=alpine_degrees_of(cell, trials), own_degree=trials["degree"])


def pooled(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed valid completions and completions per degree over ``groups`` (:func:`pair_table`
    triples; (k,), or (k, m) for m paired columns) and the distinct pairs per degree (k,)."""
    eye = np.eye(k)
    succ = sum(eye[d].T @ v for d, v, _ in groups)
    tot = sum(eye[d].T @ n for d, _, n in groups)
    pairs = sum(np.bincount(d, minlength=k) for d, _, _ in groups)
    return succ, tot, pairs


def _paired_differences(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int,
                        n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Per category of the paired ``groups`` (column 0 minus column 1): the pooled difference,
    its 95% paired two-level bootstrap interval and the number of distinct pairs."""
    succ, tot, pairs = pooled(groups, k)
    b_s, b_t = two_level_bootstrap(groups, k, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = succ[:, 0] / tot[:, 0] - succ[:, 1] / tot[:, 1]
        b_diff = b_s[..., 0] / b_t[..., 0] - b_s[..., 1] / b_t[..., 1]
    return [{"difference": float(diff[i]), "ci95": list(percentile_interval(b_diff[:, i])),
             "pairs": int(pairs[i])} for i in range(k)]


def compare_runs(this: dict[tuple[float, int], dict[str, np.ndarray]], other_dir: Path,
                 n_boot: int, seed: int) -> dict[str, Any]:
    """Per train fraction and degree: accuracy of ``this`` run's cells (keyed (fraction, graph
    seed)) minus the other run's on the same graphs, with a paired two-level bootstrap interval
    (graphs, then pairs, each pair's completions of both runs drawn together); and the same
    restricted to the pairs whose degree this run's chained lines lowered (``observed``)."""
    k = len(DEGREE_NAMES)
    out: dict[str, Any] = {}
    for f in sorted({f for f, _ in this}, reverse=True):
        groups, split = [], []
        for (g_f, s), mine in sorted(this.items()):
            where = cell_dir(other_dir, g_f, s)
            if g_f != f or not (where / "trials.npz").is_file():
                continue
            theirs = cell_trials(where)
            same = all(np.array_equal(mine[key], theirs[key])
                       for key in ("source", "target", "degree"))
            check(same, f"{where} drew other prompts or degree labels than this run's cell "
                        f"f{f:g}/seed{s}; compare runs with the same seeds, --data.nodes, "
                        "--data.p, --data.paths-per-pair and --eval settings")
            moved = (mine["own_degree"] < mine["degree"]).astype(np.int64)
            for target, trials in ((groups, mine), (split, dict(mine, degree=mine["degree"]
                                                                  + k * moved))):
                d, v, n = pair_table(trials)
                _, v2, n2 = pair_table(dict(theirs, degree=trials["degree"]))
                target.append((d, np.stack([v, v2], 1), np.stack([n, n2], 1)))
        if not groups:
            continue
        every = _paired_differences(groups, k, n_boot, seed)
        observed = _paired_differences(split, 2 * k, n_boot, seed)[k:]
        out[f"{f:g}"] = {"graphs": len(groups),
                         "per_degree": dict(zip(DEGREE_NAMES, every, strict=True)),
                         "observed_by_chains": dict(zip(DEGREE_NAMES, observed, strict=True))}
    check(bool(out), f"--compare-to {other_dir} has no finished cell on this run's graphs and "
                     "train fractions")
    return out


def pair_table(trials: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cell's trials grouped by distinct test pair: (degree, valid completions, completions),
    each (P,) over the P distinct pairs (a pair drawn twice pools its completions)."""
    key = trials["source"] * (int(trials["target"].max()) + 1) + trials["target"]
    _, inverse = np.unique(key, return_inverse=True)
    valid = np.bincount(inverse, weights=trials["valid"].astype(float))
    count = np.bincount(inverse).astype(float)
    degree = np.zeros(len(count), dtype=np.int64)
    degree[inverse] = trials["degree"]
    return degree, valid, count


def degree_statistics(tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_boot: int,
                      seed: int) -> dict[str, Any]:
    """Pooled accuracy per degree over the graphs' ``tables`` (:func:`pair_table`) with 95%
    two-level bootstrap intervals, and the degree 1 - degree 2 gap with its interval and the
    finding's verdict."""
    k = len(DEGREE_NAMES)
    succ, tot, pairs = pooled(tables, k)
    b_succ, b_tot = two_level_bootstrap(tables, k, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(tot > 0, succ / np.maximum(tot, 1), np.nan)
        b_acc = b_succ / b_tot
    per_degree = {}
    for i, name in enumerate(DEGREE_NAMES):
        lo, hi = percentile_interval(b_acc[:, i])
        per_degree[name] = {"accuracy": float(acc[i]), "ci95": [lo, hi],
                            "pairs": int(pairs[i]), "completions": int(tot[i])}
    gap = float(acc[1] - acc[2])
    lo, hi = percentile_interval(b_acc[:, 1] - b_acc[:, 2])
    if lo >= GAP_CLAIM:
        verdict = "holds"
    elif hi < GAP_CLAIM:
        verdict = "does not hold"
    else:
        verdict = "undecided"
    return {"per_degree": per_degree, "gap_1_2": {"value": gap, "ci95": [lo, hi]},
            "finding": verdict, "graphs": len(tables)}


def _interval(v: float, ci: list[float]) -> str:
    """``value [low, high]`` to 3 decimals; an em dash where no pair has the degree."""
    if not np.isfinite(v):
        return "—"
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def degree_plot(out: Path, stats: dict[str, dict[str, Any]]) -> None:
    """``degree_accuracy.png``: accuracy per degree with its interval, one line per fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.arange(len(DEGREE_NAMES))
    for j, (label, st) in enumerate(stats.items()):
        rows = [st["per_degree"][d] for d in DEGREE_NAMES]
        acc = np.array([r["accuracy"] for r in rows], dtype=float)
        lo = np.array([r["ci95"][0] for r in rows], dtype=float)
        hi = np.array([r["ci95"][1] for r in rows], dtype=float)
        shift = x + 0.08 * (j - (len(stats) - 1) / 2)
        ax.errorbar(shift, acc, yerr=[acc - lo, hi - acc], marker="o", capsize=3, label=label)
    ax.set_xticks(x, [f"degree {d}" for d in DEGREE_NAMES])
    ax.set_ylabel("path validity (sampled completions)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("accuracy by degree, 95% two-level bootstrap", fontsize=9)
    save_figure(fig, out / "degree_accuracy.png")


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    cfg.validate()
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    cells = cell_configs(cfg)
    run_cells(cfg, cells)
    stats: dict[str, dict[str, Any]] = {}
    per_graph, rows, table = [], [], []
    lowered: list[tuple[int, int]] = []  # (trials whose degree chains lowered, of degree > 0)
    by_cell: dict[tuple[float, int], dict[str, np.ndarray]] = {}
    for f in cfg.train_fractions:
        tables = []
        for c in cells:
            if c.data.train_fraction != f:
                continue
            trials = cell_trials(Path(c.out_dir))
            by_cell[f, c.seed] = trials
            moved = trials["own_degree"] < trials["degree"]  # the chained lines observed them
            lowered.append((int(moved.sum()), int((trials["degree"] > 0).sum())))
            t = pair_table(trials)
            tables.append(t)
            g_succ, g_tot, g_pairs = pooled([t], len(DEGREE_NAMES))
            per_graph.append({"train fraction": f, "graph seed": c.seed,
                              **{f"deg {k}": round(float(g_succ[i] / g_tot[i]), 3)
                                 if g_tot[i] else "—" for i, k in enumerate(DEGREE_NAMES)},
                              **{f"deg {k} pairs": int(g_pairs[i])
                                 for i, k in enumerate(DEGREE_NAMES)}})
        st = degree_statistics(tables, cfg.bootstrap, seed=cfg.seed)
        stats[f"train fraction {f:g}"] = st
        pd, gap = st["per_degree"], st["gap_1_2"]
        rows.append({"train fraction": f, "graphs": st["graphs"],
                     **{f"deg {k}": _interval(pd[k]["accuracy"], pd[k]["ci95"])
                        for k in DEGREE_NAMES},
                     **{f"deg {k} pairs": pd[k]["pairs"] for k in ("2", ">=3")},
                     "gap 1-2": _interval(gap["value"], gap["ci95"]),
                     "finding": st["finding"]})
        table.append([f"{f:g}", st["graphs"]]
                     + [f"{_interval(pd[k]['accuracy'], pd[k]['ci95'])} ({pd[k]['pairs']})"
                        for k in DEGREE_NAMES]
                     + [_interval(gap["value"], gap["ci95"]), st["finding"]])
    degree_plot(out, stats)
    chains = cfg.data.chain_lines
    if chains:
        moved, hard = map(sum, zip(*lowered, strict=True))
        sections_chain = [
            f"Each cell adds {chains} chained training lines (`--data.chain-lines`, not in "
            "ALPINE). Degrees are those under ALPINE's lines without the chained ones, so each "
            f"test pair keeps its label; the chained lines lower the degree of {moved} of the "
            f"{hard} completions of degree >= 1 pairs."]
    else:
        sections_chain = []
    comparison = (compare_runs(by_cell, Path(cfg.compare_to), cfg.bootstrap, cfg.seed)
                  if cfg.compare_to else None)
    sections_compare = []
    if comparison:
        def cells(c: dict[str, Any]) -> list[str]:
            return [f"{_interval(c[d]['difference'], c[d]['ci95'])} ({c[d]['pairs']})"
                    for d in DEGREE_NAMES]

        sections_compare = [
            f"## Difference from {cfg.compare_to}\n\nAccuracy of this run minus that run's on "
            "the same graphs and drawn prompts, per degree (ALPINE's labels), with 95% paired "
            "two-level bootstrap intervals (distinct pairs); second line of a split: only the "
            "pairs whose degree this run's chained lines lowered.",
            markdown_table(["train fraction", "pairs", "graphs"]
                           + [f"degree {d}" for d in DEGREE_NAMES],
                           [row for f, c in comparison.items() for row in (
                               [f, "all", c["graphs"], *cells(c["per_degree"])],
                               [f, "observed by chains", c["graphs"],
                                *cells(c["observed_by_chains"])])])]
    headers = (["train fraction", "graphs"] + [f"degree {d} (pairs)" for d in DEGREE_NAMES]
               + ["degree 1 - degree 2", f"gap >= {GAP_CLAIM:.2f}?"])
    graph_headers = list(per_graph[0])
    sections = [
        f"{cfg.graphs} random DAGs (n = {cfg.data.nodes}, p = {cfg.data.p}, seeds {cfg.seed}.."
        f"{cfg.seed + cfg.graphs - 1}), one alpine run each per train fraction; accuracy pooled "
        f"over the graphs' sampled completions, 95% intervals from {cfg.bootstrap} two-level "
        "bootstrap replicates (graphs, then distinct test pairs within each graph); pairs = "
        "distinct test pairs drawn at that degree, summed over graphs.",
        markdown_table(headers, table),
        *sections_chain,
        f"ALPINE's transitivity finding (degree 2 at least {GAP_CLAIM:.2f} below degree 1): "
        + "; ".join(f"train fraction {f:g}: **{stats[f'train fraction {f:g}']['finding']}**"
                    for f in cfg.train_fractions) + ".",
        *sections_compare,
        "## Per graph\n\n" + markdown_table(graph_headers, [list(r.values()) for r in per_graph],
                                             digits=3),
        "![accuracy by degree](degree_accuracy.png)",
    ]
    report = write_report(out, "ALPINE: accuracy by degree over graphs", sections)
    write_metrics(out, {"conditions": {f"{f:g}": stats[f"train fraction {f:g}"]
                                       for f in cfg.train_fractions},
                        "per_graph": per_graph, "gap_claim": GAP_CLAIM,
                        "chain_lines": chains, "comparison": comparison,
                        "chain_lowered_degree": ([int(sum(m for m, _ in lowered)),
                                                  int(sum(h for _, h in lowered))]
                                                 if chains else None),
                        "seconds": time.perf_counter() - t0, **summary_metrics(rows)})
    headline = "; ".join(f"split {r['train fraction']:g}: gap 1-2 {r['gap 1-2']} ({r['finding']})"
                         for r in rows)
    return {"report": str(report), "rows": rows, "headline": headline}


def quick_config(out_dir: str) -> Config:
    """Two small graphs per split (n = 20, 150 steps a cell) for quickstart and tests."""
    q = alpine.quick_config(out_dir)
    return Config(out_dir=out_dir, graphs=2, workers=1, bootstrap=1000,
                  data=dataclasses.replace(q.data, nodes=20, p=0.2),
                  model=dataclasses.replace(q.model, d_model=32),
                  train=dataclasses.replace(q.train, steps=150, eval_every=75, ckpt_every=150,
                                            warmup_steps=15),
                  eval=PathEval(n_prompts=50, samples_per_prompt=2))

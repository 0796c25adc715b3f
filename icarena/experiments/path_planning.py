"""Shared pipeline of the ALPINE experiments (``alpine``, ``blocksworld``).

dataset (generate) -> next-token pretraining (Trainer, probes logged over training) ->
sampling ``s t`` prompts -> path validity overall and per degree, next to BFS and random-walk
planners scored by the same rule on the same pairs -> failures file, probe summary, plots, report.

Reference: Wang et al., "ALPINE: Unveiling the Planning Capability of Autoregressive Learning in
Language Models", NeurIPS 2024 (arXiv 2405.09220), Secs. 3-5 and App. F.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icarena.envs.planning.dag import reachability
from icarena.errors import check
from icarena.evaluation import planning_probes as probes
from icarena.evaluation.path_eval import (
    DEGREES,
    degree_table,
    evaluate_path_model,
)
from icarena.evaluation.planning import PathDataset
from icarena.evaluation.report import (
    finite_or_null,
    line_plot,
    markdown_table,
    save_figure,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.lifecycle import recorded_config
from icarena.pretraining.data.store import atomic_write_json, load_dataset
from icarena.pretraining.model import ModelSpec, SequenceModel
from icarena.pretraining.path_lm import fit_path_model
from icarena.pretraining.train import TrainConfig, TrainResult


@dataclass
class ProbeState:
    """Ground truth the probes compare against."""

    n: int
    adjacency: np.ndarray
    reach: np.ndarray
    observed_reach: np.ndarray
    test_rows: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        if not probes.probes_supported(model):
            return {}
        W_M = probes.adjacency_probe(model, self.n)
        W_V = probes.reachability_probe(model, self.n)
        means = probes.reachability_means(W_V, self.reach, self.observed_reach)
        return {
            "probe/edge_gap": probes.edge_weight_gap(W_M, self.adjacency),
            "probe/reach_obs": means["obs"],
            "probe/reach_real_not_obs": means["real_not_obs"],
            "probe/reach_non": means["non"],
            "probe/target_attention": probes.target_attention(model, self.test_rows),
        }


def build_probe_state(data: PathDataset) -> ProbeState:
    A_obs, R_obs = data.observed()
    return ProbeState(n=data.n, adjacency=data.adjacency, reach=reachability(data.graph),
                      observed_reach=R_obs, test_rows=np.asarray(data.test_tokens)[:, :-1])


def train_path_model(
    data: PathDataset, model_spec: ModelSpec, train_cfg: TrainConfig, out_dir: Path,
    config: dict[str, Any], probe_state: ProbeState | None, *, resume: bool = False,
) -> tuple[SequenceModel, TrainResult]:
    """Train a path model on ``data.train_tokens`` into run dir ``out_dir`` (the recipe of
    :func:`icarena.pretraining.train_planner`: :func:`fit_path_model`)."""
    from icarena.pretraining.planner import graph_record

    return fit_path_model(
        np.asarray(data.train_tokens), data.n, data.block_size, model=model_spec,
        train=train_cfg, seed=train_cfg.seed, out_dir=out_dir,
        val_tokens=np.asarray(data.test_tokens), evaluate_fn=probe_state, resume=resume,
        config={**config, "dataset": data.identity, "graph": graph_record(data.graph)})


def probe_history(result: TrainResult) -> dict[str, list[float]]:
    """Probe metrics over training steps from the Trainer's eval history."""
    hist: dict[str, list[float]] = {"step": []}
    for step, metrics in result.eval_history:
        if "probe/edge_gap" not in metrics:
            continue
        hist["step"].append(step)
        for k, v in metrics.items():
            if k.startswith("probe/"):
                hist.setdefault(k.removeprefix("probe/"), []).append(v)
    return hist


def probe_plots(out_dir: Path, hist: dict[str, list[float]], prefix: str = "") -> list[str]:
    """PNG plots of the probe curves; returns the file names."""
    if len(hist["step"]) < 1:
        return []
    names = []
    line_plot(out_dir / f"{prefix}probe_edge_gap.png", hist["step"],
              {"edge - non-edge (W_M')": np.asarray(hist["edge_gap"])},
              xlabel="training step", ylabel="mean weight gap", title="adjacency probe")
    names.append(f"{prefix}probe_edge_gap.png")
    line_plot(out_dir / f"{prefix}probe_reachability.png", hist["step"],
              {k: np.asarray(hist[f"reach_{k}"]) for k in ("obs", "real_not_obs", "non")},
              xlabel="training step", ylabel="mean W_V' weight", title="reachability probe")
    names.append(f"{prefix}probe_reachability.png")
    return names


def probe_heatmaps(path: Path, model: SequenceModel, state: ProbeState) -> bool:
    """Heatmap PNG: W_M' next to the true adjacency, W_V' next to observed reachability."""
    if not probes.probes_supported(model):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W_M = probes.adjacency_probe(model, state.n)
    W_V = probes.reachability_probe(model, state.n)
    fig, axes = plt.subplots(2, 2, figsize=(9, 8), dpi=100)
    panels = [(W_M, "W_M' (adjacency probe)"), (state.adjacency, "true adjacency A[i, k]"),
              (W_V, "W_V' (reachability probe)"),
              (state.observed_reach, "observed reachability R_obs[t, k]")]
    for ax, (mat, title) in zip(axes.ravel(), panels, strict=True):
        im = ax.imshow(np.asarray(mat, dtype=float), cmap="viridis", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)
    return True


def prepare_dataset(gen_cfg, generate) -> Path:
    """Generate the dataset ``gen_cfg`` describes at ``gen_cfg.out_dir``, or reuse the one
    already there (an experiment's resume) when it was made with the same settings."""
    out = Path(gen_cfg.out_dir)
    if not out.exists():
        return generate(gen_cfg)
    existing = load_dataset(out)
    differ = sorted(k for k, v in recorded_config(gen_cfg).items() if existing.config.get(k) != v)
    check(not differ, f"{out} holds a dataset made with other settings ({', '.join(differ)}); "
                      "resume with the same settings, or pass --overwrite to start again")
    return out


def run_path_experiment(out: Path, data, cfg, model_spec: ModelSpec,
                        train_cfg: TrainConfig, *, title: str, setting: str, t0: float,
                        check_degrees: bool = True) -> dict:
    """Train one model on ``data`` into ``out`` and write metrics, plots and the report."""
    state = build_probe_state(data)
    model, result = train_path_model(data, model_spec, train_cfg, out,
                                        {"experiment": dataclasses.asdict(cfg)}, state,
                                        resume=cfg.resume)
    ev = evaluate_path_model(model, data, cfg.eval, cfg.seed, out)
    hist = probe_history(result)
    plots = probe_plots(out, hist)
    if probe_heatmaps(out / "probe_heatmaps.png", model, state):
        plots.append("probe_heatmaps.png")
    tr = ev["transformer"]
    acc = {d: tr["per_degree"][d]["accuracy"] for d in DEGREES}
    final = result.final_eval
    metrics = {
        "evaluation": ev, "probes_over_training": hist, "final_probes": final,
        "train": {"final_loss": float(np.mean(result.losses[-50:])),
                  "tokens_per_s": result.tokens_per_s, "seconds": result.seconds},
        "seconds_total": time.perf_counter() - t0,
    }
    checks = []
    if check_degrees:
        checks = [
            ("overall accuracy >= 0.90", tr["path_valid"] >= 0.90),
            ("degree 0 and 1 >= 0.85", acc["0"] >= 0.85 and acc["1"] >= 0.85),
            ("degree 2 at least 20 points below degree 1",
             not np.isnan(acc["2"]) and acc["1"] - acc["2"] >= 0.20),
        ]
    gaps = hist.get("edge_gap", [])
    probe_rows = [
        ["edge - non-edge gap of W_M' (first -> last eval)",
         f"{gaps[0]:.3f} -> {gaps[-1]:.3f}" if gaps else "n/a"],
        ["W_V' mean: observed reachable", final.get("probe/reach_obs", float("nan"))],
        ["W_V' mean: reachable, not observed", final.get("probe/reach_real_not_obs", float("nan"))],
        ["W_V' mean: unreachable", final.get("probe/reach_non", float("nan"))],
        ["mean attention on the target token", final.get("probe/target_attention", float("nan"))],
    ]
    sections = [
        f"Setting: {setting}. Model: {model_spec.backbone}, {model_spec.n_layers} layer(s), "
        f"{model_spec.n_heads} head(s), width {model_spec.d_model}. Training: "
        f"{train_cfg.steps} steps x batch {train_cfg.batch_size}, lr {train_cfg.lr}. "
        f"Evaluation: {cfg.eval.n_prompts} test pairs x {cfg.eval.samples_per_prompt} "
        f"samples, {'greedy' if cfg.eval.greedy else f'T = {cfg.eval.temperature}'}.",
        "## Path validity (fraction of valid completions)\n\n"
        + degree_table({k: ev[k] for k in ("transformer", "bfs", "random_walk")}),
        "Degree = how many concatenations of observed reachability a pair needs (ALPINE, "
        "arXiv 2405.09220); BFS is always valid on reachable pairs, the random walk is the naive "
        "(reachability-unaware) walk.",
    ]
    if checks:
        sections.append("## Checks\n\n" + markdown_table(
            ["claim", "holds"], [[c, "yes" if ok else "no"] for c, ok in checks]))
    sections.append("## Probes (ALPINE Sec. 5)\n\n" + markdown_table(["probe", "value"],
                                                                     probe_rows))
    sections.append("\n".join(f"![{p}]({p})" for p in plots))
    sections.append(f"Failed completions with their first invalid step: `failures.jsonl` "
                    f"({int((1 - tr['path_valid']) * ev['n_trials'])} rows).")
    report = write_report(out, title, sections)
    rows = [{"planner": r["planner"], "overall": round(r["path_valid"], 3),
             **{f"deg {d}": round(r["per_degree"][d]["accuracy"], 3) for d in DEGREES}}
            for r in (ev["transformer"], ev["bfs"], ev["random_walk"])]
    metrics.update(summary_metrics(rows))
    write_metrics(out, metrics)
    atomic_write_json(out / "summary.json", finite_or_null(rows))
    return {"report": str(report), "rows": rows,
            "headline": f"path validity {tr['path_valid']:.3f} (deg0 {acc['0']:.2f}, "
                        f"deg1 {acc['1']:.2f}, deg2 {acc['2']:.2f})"}

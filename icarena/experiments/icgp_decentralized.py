"""``icarena run icgp-decentralized``: in-context EXP3 players on 5×5 matrix games (ICGP §5).

Shi et al. 2024, "Transformers as Game Players", decentralized experiment: one transformer per
player, each pretrained on its own stream (s, own action, own reward) of the context algorithm
(EXP3 = V-learning with H = 1; icarena's default is fixed-η EXP3, the practical baseline of the
games digest §6.1/§8; ``--context vlearning`` gives the theory schedule with the certified output),
for N = 10, 20 and a larger N pretraining games; then, on 10 held-out games, the Nash gap of the
transformers' per-episode and averaged policies vs episodes next to the context algorithm run on
the same games with the same seeds, and uniform play.

CPU default vs paper: the paper uses K = 3000 episodes (T = 3000 tokens) and 100 epochs on a GPU.
The default here is **K = 300** (T = 300), a 2-layer width-32 GPT (4 heads), soft labels, the
"slot" token embedding, 5 EXP3 trajectories per pretraining game, N ∈ (10, 20, 100) and 300
AdamW steps of batch 16 per model, so that all three N values (six models), data generation and
evaluation finish in under 30 minutes on 2 CPU cores (measured: ~30 min wall with 1 thread on a
2-core machine shared with several other jobs). The paper's K is one flag away:
``--episodes 3000`` (expect ~10× the time per step; use a GPU, ``--train.device cuda``).
``--n-values`` sets the N values.

Measured at these defaults (seed 0, 10 held-out games, eval seed 1000): final averaged-policy gap
0.286 / 0.267 / 0.268 (N = 10 / 20 / 100) vs EXP3 0.175 and uniform 0.308, i.e. ratios 1.64 /
1.52 / 1.53: the 1.1 × bar is **not** met within the CPU budget (the models imitate EXP3 on
teacher-forced held-out trajectories -- validation KL falls from 0.22 to 0.085 with N -- but not
yet well enough in closed-loop play). More steps and data help (N = 500, 600 steps of batch 8:
0.248); the paper trains 100 epochs on a GPU.

Why the gap stays high (measured): in closed loop the models concentrate as much as EXP3 does
but on the wrong actions. On EXP3's own trajectories an action's past frequency tracks its
current probability, and the model learned that shortcut: given 60% of its past plays on one
action and equal rewards, the N = 20 model puts 0.66 on it, whereas EXP3's update on the same
history puts 0 on it. In play the shortcut feeds itself. Neither off-policy pretraining
histories nor DAgger-style relabelling of the model's own histories (both tried) closed the gap
within a CPU budget; 5x the optimisation steps did not either.

The pipeline chains the stages: :func:`icarena.pretraining.game_lm.pretrain` into
``out_dir/N<n>/`` (one run dir per N, each with ``max/`` and ``min/`` Trainer runs),
:func:`icarena.evaluation.icgp.evaluate_players` on the held-out games, then ``metrics.json``,
``report.md``, ``gap_last.png``, ``gap_avg.png`` and TensorBoard scalars (``tb_icgp/``).

Acceptance (issue 6), checked and written to ``metrics.json["acceptance"]``: the averaged-policy
gap of the transformer at the final episode is at most 1.1 × the context algorithm's (means over
the 10 games) -- required of the largest-N model, reported for every N -- and the largest-N model
is no worse than the N = 10 model.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icarena.errors import CheckpointError, check
from icarena.evaluation.icgp import evaluate_players, summarize, table_markdown, write_outputs
from icarena.evaluation.report import write_metrics, write_report
from icarena.pretraining.data.store import atomic_write_json
from icarena.pretraining.game_lm import PretrainConfig, pretrain
from icarena.pretraining.train import TrainConfig

RATIO_BAR = 1.1


def _train_cfg() -> TrainConfig:
    return TrainConfig(steps=300, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=30,
                       weight_decay=1e-4, eval_every=0, ckpt_every=150, log_every=25,
                       progress=False)


@dataclass
class Config:
    """ICGP decentralized experiment (5×5 matrix games, EXP3 / V-learning context)."""

    out_dir: str = "runs/icgp-decentralized"
    """Output directory (one sub-dir per N, plus report.md, metrics.json, PNGs)."""
    seed: int = 0
    """Seed of pretraining games, trajectories, inits and batches."""
    backbone: str = "gpt"
    """Registered backbone (see `icarena list`)."""
    episodes: int = 300
    """K episodes per trajectory (paper: 3000; CPU default 300)."""
    n_values: tuple[int, ...] = (10, 20, 100)
    """Numbers N of pretraining games, one model (pair) each; the first is the N = 10 reference."""
    trajectories_per_game: int = 5
    """Context-algorithm runs per pretraining game (different random draws)."""
    context: str = "exp3"
    """Context algorithm: 'exp3' (fixed η, practical) or 'vlearning' (theory schedule)."""
    context_cfg: str = ""
    """Context-algorithm options as JSON, e.g. '{"eta": 0.05}'."""
    labels: str = "soft"
    """Pretraining loss: 'soft' (policy cross-entropy) or 'sampled' (the paper's sampled action)."""
    embedding: str = "slot"
    """Step token: 'slot' (reward in the taken action's slot) or 'concat' (digest §4 layout)."""
    d_model: int = 32
    """Model width."""
    n_layers: int = 2
    """Backbone blocks."""
    n_heads: int = 4
    """Attention heads."""
    backbone_cfg: str = ""
    """Extra backbone options as JSON."""
    A: int = 5
    """Max-player actions."""
    B: int = 5
    """Min-player actions."""
    eval_games: int = 10
    """Held-out evaluation games."""
    eval_seed: int = 1000
    """Seed of the held-out games (never used for pretraining)."""
    overwrite: bool = False
    """Replace an earlier run in out_dir."""
    train: TrainConfig = field(default_factory=_train_cfg)
    """Optimisation settings of every model (--train.steps, --train.threads, ...)."""


SETTING = "decentralized"
DIMS = {"H": 1, "S": 1}


def quick_config(out_dir: str) -> Config:
    """A tiny run (a few seconds per model; not expected to meet the acceptance bar)."""
    return Config(out_dir=out_dir, episodes=20, n_values=(2, 4), trajectories_per_game=1,
                  d_model=16, n_layers=1, n_heads=2, eval_games=3,
                  train=TrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=2,
                                    ckpt_every=20, log_every=5, progress=False))


def run(cfg: Config) -> dict[str, Any]:
    """Pretrain one model (pair) per N, evaluate all on the held-out games, write the report."""
    return run_icgp(cfg, SETTING, DIMS, title="ICGP decentralized: in-context players of "
                    "matrix games")


def run_icgp(cfg: Any, setting: str, dims: dict[str, int], *, title: str) -> dict[str, Any]:
    """Shared driver of both ICGP experiments (``cfg`` is either experiment's Config)."""
    check(len(cfg.n_values) >= 1 and all(n >= 1 for n in cfg.n_values),
          f"n_values must be one or more ints >= 1, got {cfg.n_values}")
    check(cfg.eval_games >= 1, f"eval_games must be >= 1, got {cfg.eval_games}")
    out = Path(cfg.out_dir)
    if (out / "metrics.json").exists() and not cfg.overwrite and not cfg.train.resume:
        raise CheckpointError(f"{out} already holds a finished run; pass --overwrite to replace "
                              "it or choose another --out-dir")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    run_dirs, train_rows, timings = {}, [], {}
    for n in cfg.n_values:
        tcfg = dataclasses.replace(cfg.train, overwrite=cfg.overwrite or cfg.train.overwrite)
        pcfg = PretrainConfig(
            out_dir=str(out / f"N{n}"), seed=cfg.seed, setting=setting, A=cfg.A, B=cfg.B,
            episodes=cfg.episodes, n_games=n, trajectories_per_game=cfg.trajectories_per_game,
            context=cfg.context, context_cfg=cfg.context_cfg, labels=cfg.labels,
            embedding=cfg.embedding,
            backbone=cfg.backbone, d_model=cfg.d_model, n_layers=cfg.n_layers,
            n_heads=cfg.n_heads, backbone_cfg=cfg.backbone_cfg, train=tcfg, **dims)
        t1 = time.perf_counter()
        res = pretrain(pcfg)
        timings[f"pretrain_N{n}_s"] = time.perf_counter() - t1
        run_dirs[f"TF N={n}"] = res["run_dir"]
        train_rows += [{"N": n, **r} for r in res["rows"]]
    t1 = time.perf_counter()
    result = evaluate_players(run_dirs, n_games=cfg.eval_games, eval_seed=cfg.eval_seed,
                              episodes=cfg.episodes, seed=cfg.seed)
    timings["evaluate_s"] = time.perf_counter() - t1
    summary = summarize(result)
    write_outputs(out, result, summary)
    acceptance = acceptance_checks(summary, [f"TF N={n}" for n in cfg.n_values])
    timings["total_s"] = time.perf_counter() - t0
    metrics = {k: v for k, v in summary.items() if k != "curves"}
    metrics.update(acceptance=acceptance, training=train_rows, timings=timings,
                   setting=setting, backbone=cfg.backbone)
    write_metrics(out, metrics)
    report = write_report(out, title, [
        f"Setting **{setting}**, games H={dims['H']}, S={dims['S']}, A={cfg.A}, B={cfg.B}; "
        f"K = {cfg.episodes} episodes; context algorithm **{summary['context']}**; backbone "
        f"**{cfg.backbone}** (d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads); "
        f"labels {cfg.labels}, embedding {cfg.embedding}; N ∈ {list(cfg.n_values)} "
        "pretraining games × "
        f"{cfg.trajectories_per_game} trajectories; {cfg.train.steps} steps of batch "
        f"{cfg.train.batch_size} per model.",
        f"## Final-episode Nash gap on {cfg.eval_games} held-out games (mean)\n\n"
        "gap = duality gap (NashConv); `avg` = state-wise running-average policy, `last` = "
        "per-episode policy; ratio = avg gap / context algorithm's avg gap.\n\n"
        + table_markdown(summary["rows"]),
        "## Acceptance\n\n" + "\n".join(f"- {k}: {v}" for k, v in acceptance.items()),
        "## Curves\n\n![per-episode policy](gap_last.png)\n\n![averaged policy](gap_avg.png)\n\n"
        "TensorBoard: `tensorboard --logdir " + str(out) + "`",
        "## Timings (s)\n\n" + "\n".join(f"- {k}: {v:.1f}" for k, v in timings.items()),
    ])
    rows = [{"method": r["method"], "gap_avg": r["gap_avg"], "gap_last": r["gap_last"],
             "ratio": r["ratio_avg_to_context"]} for r in summary["rows"]]
    return {"report": str(report), "rows": rows, "acceptance": acceptance}


def acceptance_checks(summary: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Issue-6 bars: ratio ≤ 1.1 (largest N; every N reported) and largest N ≤ N=10 model."""
    by = {r["method"]: r for r in summary["rows"]}
    ratios = {lab: float(by[lab]["ratio_avg_to_context"]) for lab in labels}
    first, last = labels[0], labels[-1]
    return {
        "ratios": ratios,
        "largest_N_ratio_ok": bool(ratios[last] <= RATIO_BAR),
        "every_N_ratio_ok": bool(all(r <= RATIO_BAR for r in ratios.values())),
        "largest_N_not_worse_than_first": bool(by[last]["gap_avg"] <= by[first]["gap_avg"]),
    }


__all__ = ["Config", "acceptance_checks", "quick_config", "run", "run_icgp"]

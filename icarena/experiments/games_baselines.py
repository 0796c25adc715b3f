"""``icarena run games-baselines``: Nash gap vs episode of the classical game-playing baselines.

On ``n_games`` held-out games drawn from the ICGP prior with ``game_seed`` (Shi et al. 2024,
arXiv 2410.09701, §5):

* decentralized, 5×5 matrix games, K = 3000: fixed-η EXP3 (the practical baseline) and V-learning
  with H = 1 and the theory schedule (the faithful ICGP context algorithm), each scored with its
  last iterate, the uniform average of its iterates and (V-learning) the certified output;
* centralized, H=2, S=4, A=B=5 Markov games (Dirichlet(1) transitions, s_1 = 0), K = 300:
  VI-ULCB with an MWU-CCE per state, scored with the per-episode policy and the state-wise
  running average (marginals of the correlated policy);
* uniform play by both players on the same games.

The gap is the duality gap V^{†,ν}(s_1) − V^{μ,†}(s_1) (= OpenSpiel NashConv), computed exactly
(:mod:`icarena.evaluation.nash`); the Markov table also reports gap/H. Writes ``config.json``,
``metrics.json`` (full mean/std/interval curves), ``report.md`` (tables at a few K) and
``matrix_games.png`` / ``markov_games.png`` (mean ± 90% bootstrap interval over games).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena import limits
from icarena.agents.games import (
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    run_exp3,
    run_viulcb,
    run_vlearning,
)
from icarena.envs.games.game import TabularGame
from icarena.errors import check
from icarena.evaluation.nash import curve_summary, record_gap_curves, uniform_gap
from icarena.evaluation.report import (
    line_plot,
    markdown_table,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.lifecycle import atomic_write_json, writes_run

CHECKPOINTS = (1, 10, 30, 100, 300, 1000, 3000, 10000)


@dataclass
class BaselinesData:
    """The games (``--data.*``)."""

    A: int = 5
    """Max-player actions (both settings)."""
    B: int = 5
    """Min-player actions (both settings)."""
    H: int = 2
    """Horizon of the Markov games."""
    S: int = 4
    """States of the Markov games."""


@dataclass
class BaselinesModel:
    """The players: the classical algorithms' settings (``--model.*``)."""

    exp3_eta: float | None = None
    """EXP3 learning rate (None: √(2 ln A / (A K)))."""
    exp3_gamma: float = 0.0
    """EXP3 implicit exploration γ (0: plain EXP3)."""
    vlearning_schedule: str = "jin2021"
    """V-learning schedule ('jin2021' or 'bai2020'; identical for H = 1)."""
    viulcb_c: float = 0.02
    """VI-ULCB bonus constant c."""
    viulcb_eq: str = "mwu"
    """VI-ULCB per-state equilibrium: 'mwu' or 'lp'."""
    mwu_iters: int = 200
    """VI-ULCB MWU rounds."""


@dataclass
class BaselinesEval:
    """The held-out games and how long the algorithms play them (``--eval.*``)."""

    n_games: int = 10
    """Number of held-out games per setting."""
    seed: int = 2024_1010
    """Seed of the held-out games (distinct from the generator's default seed 0)."""
    matrix_episodes: int = 3000
    """Episodes K for the matrix games (EXP3, V-learning)."""
    markov_episodes: int = 300
    """Episodes K for the Markov games (VI-ULCB)."""


@dataclass
class Config:
    """Nash gap vs episode of EXP3, V-learning and VI-ULCB on held-out zero-sum games.

    The ``data``, ``model`` (here: the classical players' settings) and ``eval`` groups of the
    experiments' shape: this experiment trains nothing, so it has no ``train`` group and no
    ``resume`` (a rerun recomputes everything; ``--overwrite`` replaces an earlier run).
    """

    out_dir: str = "runs/games-baselines"
    """Output run directory."""
    seed: int = 0
    """Seed of the algorithms' random draws."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    data: BaselinesData = field(default_factory=BaselinesData)
    """The games."""
    model: BaselinesModel = field(default_factory=BaselinesModel)
    """The algorithms' settings."""
    eval: BaselinesEval = field(default_factory=BaselinesEval)
    """Held-out games and episodes of play."""


def quick_config(out_dir: str) -> Config:
    """A tiny version (3 games, K = 300 / 30, 50 MWU rounds): a few seconds."""
    return Config(out_dir=out_dir, model=BaselinesModel(mwu_iters=50),
                  eval=BaselinesEval(n_games=3, matrix_episodes=300, markov_episodes=30))


def _checkpoints(K: int) -> list[int]:
    return sorted({c for c in CHECKPOINTS if c <= K} | {K})


def _table(name: str, curves: dict[str, np.ndarray], K: int,
           scale: float = 1.0) -> tuple[str, list]:
    cps = _checkpoints(K)
    headers = ["policy"] + [f"K={c}" for c in cps]
    rows, out_rows = [], []
    for label, g in curves.items():
        m, sd = g.mean(0) / scale, g.std(0) / scale
        rows.append([label] + [f"{m[c - 1]:.3f} ± {sd[c - 1]:.3f}" for c in cps])
        out_rows.append({"setting": name, "policy": label,
                         **{f"K={c}": round(float(m[c - 1]), 4) for c in cps}})
    return markdown_table(headers, rows), out_rows


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Run the baselines and write the report; returns ``{"report": path, "rows": [...]}``."""
    d, m, ev = cfg.data, cfg.model, cfg.eval
    for group, name in (("eval", "n_games"), ("data", "A"), ("data", "B"),
                        ("eval", "matrix_episodes"), ("eval", "markov_episodes"), ("data", "H"),
                        ("data", "S"), ("model", "mwu_iters")):
        v = getattr(getattr(cfg, group), name)
        check(isinstance(v, int) and v >= 1, f"{group}.{name} must be an int >= 1, got {v!r}")
    # EXP3 / V-learning: A x B per episode; VI-ULCB: an MWU solve of A x B per (h, s) plus the
    # S-wide backups, every episode; for every held-out game
    limits.require_work(
        ev.n_games * (2 * ev.matrix_episodes * d.A * d.B
                      + ev.markov_episodes * d.H * d.S * d.A * d.B * (d.S + cfg.model.mwu_iters)),
        f"playing {ev.n_games} games for {ev.matrix_episodes} / {ev.markov_episodes} episodes",
        "--eval.n-games, --eval.matrix-episodes, --eval.markov-episodes or --model.mwu-iters")
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    ss_games = np.random.SeedSequence(ev.seed).spawn(2)
    ss_algo = np.random.SeedSequence(cfg.seed).spawn(3)
    timings = {}

    # ---- decentralized: matrix games
    K1 = ev.matrix_episodes
    mg = TabularGame.random(1, 1, d.A, d.B, seed=ss_games[0], n_games=ev.n_games)
    t0 = time.perf_counter()
    exp3 = record_gap_curves(mg, run_exp3(mg, K1, cfg=EXP3Config(m.exp3_eta, m.exp3_gamma),
                                          seed=ss_algo[0]))
    timings["exp3_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vl = record_gap_curves(mg, run_vlearning(mg, K1, cfg=VLearningConfig(
        schedule=m.vlearning_schedule), seed=ss_algo[1]))
    timings["vlearning_s"] = time.perf_counter() - t0
    uni_m = np.repeat(uniform_gap(mg)[:, None], K1, axis=1)
    matrix_curves = {
        "EXP3 (avg)": exp3["avg"], "EXP3 (last)": exp3["last"],
        "V-learning (avg)": vl["avg"], "V-learning (certified)": vl["cert"],
        "V-learning (last)": vl["last"], "uniform": uni_m,
    }

    # ---- centralized: Markov games
    K2 = ev.markov_episodes
    kg = TabularGame.random(d.H, d.S, d.A, d.B, seed=ss_games[1], n_games=ev.n_games)
    t0 = time.perf_counter()
    vi = record_gap_curves(kg, run_viulcb(kg, K2, cfg=VIULCBConfig(
        c=m.viulcb_c, eq=m.viulcb_eq, mwu_iters=m.mwu_iters), seed=ss_algo[2]))
    timings["viulcb_s"] = time.perf_counter() - t0
    uni_k = np.repeat(uniform_gap(kg)[:, None], K2, axis=1)
    markov_curves = {"VI-ULCB (avg)": vi["avg"], "VI-ULCB (last)": vi["last"], "uniform": uni_k}

    # ---- outputs
    metrics: dict[str, Any] = {"timings": timings, "curves": {}}
    for setting, curves in (("matrix", matrix_curves), ("markov", markov_curves)):
        metrics["curves"][setting] = {k: curve_summary(v) for k, v in curves.items()}
    for setting, K, fname, title in (
        ("matrix", K1, "matrix_games.png",
         f"{d.A}x{d.B} matrix games ({ev.n_games} held-out)"),
        ("markov", K2, "markov_games.png",
         f"Markov games H={d.H}, S={d.S}, A={d.A}, B={d.B} ({ev.n_games} held-out)"),
    ):
        summ = metrics["curves"][setting]
        line_plot(out / fname, np.arange(1, K + 1), {k: v["mean"] for k, v in summ.items()},
                  bands={k: (v["ci_low"], v["ci_high"]) for k, v in summ.items()},
                  xlabel="episode", ylabel="Nash gap (duality gap)", title=title, logx=True)
    t_matrix, rows_m = _table("matrix", matrix_curves, K1)
    t_markov, rows_k = _table("markov", markov_curves, K2)
    t_markov_h, _ = _table("markov", markov_curves, K2, scale=d.H)
    metrics["final"] = {r["setting"] + "/" + r["policy"]: r for r in rows_m + rows_k}
    metrics.update(summary_metrics(rows_m + rows_k))
    write_metrics(out, metrics)
    report = write_report(out, "Games baselines: Nash gap vs episode", [
        "Nash gap = duality gap V^{†,ν}(s1) − V^{μ,†}(s1) (= OpenSpiel NashConv = 2 × "
        f"exploitability), mean ± std over {ev.n_games} held-out games (game_seed "
        f"{ev.seed}). 'last' = the policy used in episode K; 'avg' = state-wise uniform "
        "average of the policies of episodes 1..K; 'certified' = V-learning's certified output.",
        f"## Decentralized: {d.A}x{d.B} truncated-normal matrix games\n\n{t_matrix}\n\n"
        "![matrix](matrix_games.png)",
        f"## Centralized: Markov games (H={d.H}, S={d.S}), VI-ULCB with MWU-CCE "
        f"(c={m.viulcb_c}, M={m.mwu_iters})\n\nRaw gap:\n\n{t_markov}\n\n"
        f"gap / H:\n\n{t_markov_h}\n\n![markov](markov_games.png)",
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
    ])
    return {"report": str(report), "rows": rows_m + rows_k}

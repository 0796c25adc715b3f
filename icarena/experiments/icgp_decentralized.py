"""``icarena run icgp-decentralized``: in-context EXP3 players on 5×5 matrix games (ICGP §5).

Shi et al. 2024, "Transformers as Game Players" (arXiv 2410.09701), decentralized experiment: one
transformer per player, each pretrained on its own stream (s, own action, own reward) of the context
algorithm (EXP3 = V-learning with H = 1; icarena's default is fixed-η EXP3, the practical baseline
of ICGP's experiments; ``--data.context vlearning`` gives the theory schedule with the certified
output), for N = 10, 20 and a larger N pretraining games; then, on 10 held-out games, the Nash gap
of the transformers' per-episode and averaged policies vs episodes next to the context algorithm run
on the same games with the same seeds, and uniform play.

CPU default vs paper: the paper uses K = 3000 episodes (T = 3000 tokens) and 100 epochs on a GPU.
The default here is **K = 300** (T = 300), a 3-layer width-32 GPT (4 heads), soft labels, the
``slot_prob`` token (the player's own probability of the action it took rides along with the
action and reward; :mod:`icarena.pretraining.game_lm`), the action-symmetric ``cells`` read-out
(:class:`icarena.pretraining.readouts.CellReadOut`), 5 EXP3 trajectories per pretraining
game, N ∈ (10, 20, 100) and 1,500 AdamW steps of batch 16 per model, the max and min models
trained side by side (``--train.stream-workers 2``, one core each), a budget sized for 2 CPU cores.
``--preset paper`` is the paper's scale (K = 3000, N = 10 and 20, batch 32, lr 5e-4, 100 epochs;
settings given explicitly win); its cost: ``docs/results/icgp-decentralized.md``.

Why the own-probability feature: with the plain ``slot`` token the models concentrated in closed
loop as much as EXP3, but on the wrong actions. On EXP3's own trajectories an action's past
frequency tracks its current probability, and the model learned that shortcut, whereas EXP3's
update puts little weight on an action played more often than its probability (importance-weighted
losses grow with that excess). In play the shortcut feeds itself. More steps, off-policy
pretraining histories and DAgger-style relabelling of the model's own histories did not fix it;
giving the model the probabilities that EXP3's update divides by did.

Why the cells read-out: with a linear read-out the N = 100 models imitated EXP3 on held-out
trajectories equally well at every seed, yet in closed-loop play some seeds drifted well past
EXP3's gap. EXP3 treats its actions alike (relabelling them permutes its policy the same way); a
linear read-out can learn label-specific habits of its pretraining games, which in play feed
themselves. The cells read-out computes per action the visit share and the mean reward and maps
them to the action's logit by one network shared by all actions, so the learned rule is the same
for every action.

Measured gaps and ratios at the defaults (five seeds), those of the former linear read-out, the
variants that chose the defaults and the probe of the shortcut, with commands and machines:
``docs/results/icgp-decentralized.md``.

The pipeline chains the stages, per N: ``icarena generate games`` into ``out_dir/data/N<n>/``
(:func:`icarena.pretraining.data.games.generate`; reused by ``--resume``), then
:func:`icarena.pretraining.game_lm.pretrain` on that dataset into ``out_dir/N<n>/`` (one run dir
per N, each with ``max/`` and ``min/`` Trainer runs),
:func:`icarena.evaluation.icgp.evaluate_players` on the held-out games, then ``metrics.json``,
``report.md``, ``gap_last.png``, ``gap_avg.png`` and TensorBoard scalars (``tb_icgp/``).

Acceptance, checked and written to ``metrics.json["acceptance"]``: the averaged-policy
gap of the transformer at the final episode is at most 1.1 × the context algorithm's (means over
the 10 games) -- required of the largest-N model, reported for every N -- and the largest-N model
is no worse than the N = 10 model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from icarena.errors import CheckpointError, check
from icarena.evaluation.icgp import (
    GamesEval,
    evaluate_players,
    summarize,
    table_markdown,
    write_outputs,
)
from icarena.evaluation.report import summary_metrics, write_metrics, write_report
from icarena.lifecycle import atomic_write_json, writes_run
from icarena.pretraining.data import games as games_data
from icarena.pretraining.data.store import load_dataset
from icarena.pretraining.game_lm import (
    PAPER_EPOCHS,
    PAPER_TRAIN,
    GameData,
    GameModel,
    GameTrainConfig,
    PretrainConfig,
    pretrain,
)
from icarena.pretraining.train import resolve_device

RATIO_BAR = 1.1
PRESET_NAMES = ("cpu", "paper")
# The paper's N (Shi et al. 2024, arXiv 2410.09701, §5: N = 10 and 20 pretraining games).
PAPER_N_VALUES = (10, 20)


@dataclass
class IcgpData(GameData):
    """The pretraining data of an ICGP experiment (``--data.*``): games from the ICGP prior, the
    context algorithm's trajectories on them, and the numbers N of pretraining games (one model
    (pair) per N, the games of N on seed branch [seed, 1])."""

    n_values: tuple[int, ...] = (10, 20, 100)
    """Numbers N of pretraining games, one model (pair) each; the first is the N = 10 reference."""


def _data() -> IcgpData:
    return IcgpData(H=1, S=1, A=5, B=5, episodes=300, trajectories_per_game=5, context="exp3")


def _model() -> GameModel:
    return GameModel(backbone="gpt", d_model=32, n_layers=3, n_heads=4, embedding="slot_prob",
                     read_out="cells")


def _train_cfg() -> GameTrainConfig:
    return GameTrainConfig(steps=1500, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                           weight_decay=1e-4, eval_every=0, ckpt_every=500, log_every=25,
                           progress=False, labels="soft", stream_workers=2)


@dataclass
class Config:
    """ICGP decentralized experiment (5×5 matrix games, EXP3 / V-learning context)."""

    out_dir: str = "runs/icgp-decentralized"
    """Output directory (one sub-dir per N, plus report.md, metrics.json, PNGs)."""
    seed: int = 0
    """Seed of pretraining games, trajectories, inits, batches and the random draws of play."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished): every model from its checkpoint."""
    preset: Literal["cpu", "paper"] = "cpu"
    """'cpu' (the defaults below) or 'paper' (Shi et al. 2024's scale: K = 3000 episodes
    decentralized / 300 centralized, N = 10 and 20, batch 32, lr 5e-4, 100 epochs of the largest
    N's trajectories); fills the settings left at their CPU defaults (explicit flags win)."""
    data: IcgpData = field(default_factory=_data)
    """Games (5×5 matrix games), context algorithm ('exp3': fixed η, practical; 'vlearning':
    theory schedule), K, trajectories per game and the values of N."""
    model: GameModel = field(default_factory=_model)
    """The model of each player (own stream, 'slot_prob' token)."""
    train: GameTrainConfig = field(default_factory=_train_cfg)
    """Optimisation of every model (--train.steps, --train.threads, ...), the loss and the
    stream workers (2: the max and min models side by side; 1: one after the other)."""
    eval: GamesEval = field(default_factory=GamesEval)
    """Held-out games (never used for pretraining) and how the players are run on them."""


SETTING = "decentralized"


def quick_config(out_dir: str) -> Config:
    """A tiny run (a few seconds per model; not expected to meet the acceptance bar)."""
    return Config(out_dir=out_dir,
                  data=dataclasses.replace(_data(), episodes=20, n_values=(2, 4),
                                           trajectories_per_game=1),
                  model=dataclasses.replace(_model(), d_model=16, n_layers=1, n_heads=2),
                  train=GameTrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=2,
                                        ckpt_every=20, log_every=5, progress=False,
                                        stream_workers=1),
                  eval=GamesEval(n_games=3))


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Pretrain one model (pair) per N, evaluate all on the held-out games, write the report."""
    cfg = apply_preset(cfg, Config(), games_data.PAPER_EPISODES[SETTING])
    return run_icgp(cfg, SETTING, title="ICGP decentralized: in-context players of matrix games")


def apply_preset(cfg: Any, cpu: Any, paper_episodes: int) -> Any:
    """``cfg`` with the settings of its ``preset`` filled in: 'paper' sets K =
    ``paper_episodes``, N = 10 and 20, batch 32, lr 5e-4 (min_lr 5e-5) and 100 epochs of the
    largest N's trajectories (steps = ⌈100 · N · trajectories per game / batch⌉) wherever ``cfg``
    still holds the value of ``cpu`` (the experiment's CPU default config): a setting given
    explicitly wins (one given with the CPU default's own value counts as unset)."""
    check(cfg.preset in PRESET_NAMES,
              f"preset must be one of {PRESET_NAMES}, got {cfg.preset!r}")
    if cfg.preset == "cpu":
        return cfg
    data, train = cfg.data, cfg.train
    dchanges: dict[str, Any] = {}
    if data.episodes == cpu.data.episodes:
        dchanges["episodes"] = paper_episodes
    if tuple(data.n_values) == tuple(cpu.data.n_values):
        dchanges["n_values"] = PAPER_N_VALUES
    data = dataclasses.replace(data, **dchanges)
    tchanges: dict[str, Any] = {k: v for k, v in PAPER_TRAIN.items()
                                if getattr(train, k) == getattr(cpu.train, k)}
    if train.steps == cpu.train.steps:
        batch = tchanges.get("batch_size", train.batch_size)
        rows = max(data.n_values) * data.trajectories_per_game
        tchanges["steps"] = max(1, -(-PAPER_EPOCHS * rows // batch))
    return dataclasses.replace(cfg, data=data, train=dataclasses.replace(train, **tchanges))


def prepare_games(gen: games_data.Config) -> Path:
    """Generate the games dataset ``gen`` describes, or reuse the one already at
    ``gen.out_dir`` (an experiment's resume) when it was made with the same settings."""
    out = Path(gen.out_dir)
    if not out.exists():
        return games_data.generate(gen)
    existing = load_dataset(out, generator=games_data.GENERATOR, verify=False)
    want = games_data.manifest_config(gen)
    differ = sorted(k for k, v in want.items() if existing.config.get(k) != v)
    check(not differ and existing.seed == gen.seed,
          f"{out} holds a dataset made with other settings ({', '.join(differ) or 'seed'}); "
          "resume with the same settings, or pass --overwrite to start again", CheckpointError)
    return out


def run_icgp(cfg: Any, setting: str, *, title: str) -> dict[str, Any]:
    """Shared driver of both ICGP experiments (``cfg`` is either experiment's Config, its preset
    already applied): per N, ``icarena generate games`` into ``out_dir/data/N<n>``, then
    ``icarena pretrain icgp --data`` it into ``out_dir/N<n>``; then evaluate every N."""
    data, spec, ev = cfg.data, cfg.model, cfg.eval
    check(len(data.n_values) >= 1 and all(n >= 1 for n in data.n_values),
          f"data.n_values must be one or more ints >= 1, got {data.n_values}")
    ev.validate()
    spec.validate()  # before any data is generated, so a bad --model.* flag costs nothing
    cfg.train.validate()
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    run_dirs, train_rows, timings = {}, [], {}
    for n in data.n_values:
        t1 = time.perf_counter()
        dpath = prepare_games(data.games_config(setting, n, cfg.seed, str(out / "data" / f"N{n}")))
        timings[f"data_N{n}_s"] = time.perf_counter() - t1
        pcfg = PretrainConfig(
            out_dir=str(out / f"N{n}"), seed=cfg.seed,
            resume=cfg.resume and (out / f"N{n}").exists(),
            data=str(dpath), model=spec, train=cfg.train)
        t1 = time.perf_counter()
        res = pretrain(pcfg)
        timings[f"pretrain_N{n}_s"] = time.perf_counter() - t1
        run_dirs[f"TF N={n}"] = res["run_dir"]
        train_rows += [{"N": n, **r} for r in res["rows"]]
    t1 = time.perf_counter()
    result = evaluate_players(run_dirs, n_games=ev.n_games, eval_seed=ev.seed,
                              episodes=ev.episodes or data.episodes,
                              seed=cfg.seed if ev.play_seed is None else ev.play_seed,
                              query=ev.query,
                              device=ev.device or str(resolve_device(cfg.train.device)),
                              plays=ev.plays)
    timings["evaluate_s"] = time.perf_counter() - t1
    summary = summarize(result)
    write_outputs(out, result, summary)
    acceptance = acceptance_checks(summary, [f"TF N={n}" for n in data.n_values])
    timings["total_s"] = time.perf_counter() - t0
    metrics = {k: v for k, v in summary.items() if k != "curves"}
    metrics.update(acceptance=acceptance, training=train_rows, timings=timings,
                   setting=setting, backbone=spec.backbone, **summary_metrics(summary["rows"]))
    write_metrics(out, metrics)
    read_out = spec.read_out + (" " + json.dumps(spec.read_out_options)
                                if spec.read_out != "linear" else "")
    report = write_report(out, title, [
        f"Setting **{setting}**, games H={data.H}, S={data.S}, A={data.A}, B={data.B}; "
        f"K = {data.episodes} episodes; context algorithm **{summary['context']}**; backbone "
        f"**{spec.backbone}** (d_model {spec.d_model}, {spec.n_layers} layers, "
        f"{spec.n_heads} heads); labels {cfg.train.labels}, embedding {spec.embedding}, "
        f"read-out {read_out}; N ∈ {list(data.n_values)} pretraining games × "
        f"{data.trajectories_per_game} trajectories; {cfg.train.steps} steps of batch "
        f"{cfg.train.batch_size} per model.",
        f"## Final-episode Nash gap on {ev.n_games} held-out games (mean"
        + (f"; each game's gaps averaged over {ev.plays} play draws" if ev.plays > 1 else "")
        + ")\n\n"
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
    """Acceptance bars: ratio ≤ 1.1 (largest N; every N reported) and largest N ≤ N=10 model."""
    by = {r["method"]: r for r in summary["rows"]}
    ratios = {lab: float(by[lab]["ratio_avg_to_context"]) for lab in labels}
    first, last = labels[0], labels[-1]
    return {
        "ratios": ratios,
        "largest_N_ratio_ok": bool(ratios[last] <= RATIO_BAR),
        "every_N_ratio_ok": bool(all(r <= RATIO_BAR for r in ratios.values())),
        "largest_N_not_worse_than_first": bool(by[last]["gap_avg"] <= by[first]["gap_avg"]),
    }


__all__ = ["Config", "IcgpData", "acceptance_checks", "apply_preset", "prepare_games",
           "quick_config", "run", "run_icgp"]

"""Evaluation of in-context game players (ICGP): Nash gap vs episode on held-out games.

Shi et al. 2024 (arXiv 2410.09701), §5. On ``n_games`` held-out games (seed branch
``[eval_seed, 3]``, never used for pretraining; :func:`icarena.pretraining.game_lm.eval_games`)
every method plays K episodes with the **same** random-draw seed (the protocol of
:mod:`icarena.agents.games.rollout`):

* each pretrained transformer run (:class:`icarena.pretraining.game_player.InContextGamePlayer`),
* the context algorithm it imitates (EXP3 / V-learning / VI-ULCB, the run's own settings),
* uniform play by both players (a constant curve).

With ``plays`` > 1 (``--eval.plays``) every method plays each game that many times, with play
seeds ``seed, seed + 1, ...`` shared by every method, and each game's curves are the mean over its
draws: one draw of a few games leaves the randomness of play in every final gap and ratio.

Curves (G, K), from :func:`icarena.evaluation.nash.record_gap_curves` (games helper):

* ``last``: gap of the per-episode Markov pair -- for a transformer its read-out at every (h, s)
  at the start of episode k, for an algorithm its policy at the first step of episode k
  (for VI-ULCB: the marginals of the correlated policy);
* ``avg``: gap of the state-wise running average μ̄_k = mean_{i≤k} μ_i (and ν̄_k). For H = 1 it is
  exactly the mixture of the iterates (EXP3's output); for H > 1 it is the state-wise average;
* ``cert`` (V-learning only): the certified output policy's state-wise marginal.

The gap is the duality gap (= OpenSpiel NashConv = 2 × exploitability), reported raw and /H.
The acceptance ratio is avg-gap(transformer, K) / avg-gap(context algorithm, K), means over games.

Outputs in ``out_dir``: ``icgp_eval.json`` (every mean curve + final values), ``gap_last.png``,
``gap_avg.png`` (mean ± 90 % bootstrap band over games) and TensorBoard scalars
``icgp/<method>/gap_last`` and ``icgp/<method>/gap_avg`` per episode (events in
``out_dir/tb_icgp``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import ConfigError, check
from icarena.evaluation.nash import curve_summary, record_gap_curves, uniform_gap
from icarena.evaluation.report import (
    line_plot,
    markdown_table,
    to_jsonable,
    write_metrics,
    write_report,
)
from icarena.lifecycle import atomic_write_json, check_run_target, claim_run, eval_out_dir
from icarena.pretraining.game_lm import (
    context_records,
    eval_games,
    load_games_dataset,
    read_meta,
    recorded_dataset,
)

CONTEXT_ALGORITHMS = ("exp3", "vlearning", "viulcb")


@dataclass
class GameCurves:
    """Nash gap vs episode of several players on the same games (:func:`evaluate_game_players`).

    ``gaps[name]``: ``{"last": (G, K), "avg": (G, K)[, "cert": (G, K)]}`` -- the duality gap of
    each game's per-episode policy pair and of the state-wise running average
    (:func:`icarena.evaluation.nash.record_gap_curves`); ``uniform``: (G,) the gap of uniform
    play; ``H``: the horizon (gap / H is per step).
    """

    gaps: dict[str, dict[str, np.ndarray]]
    uniform: np.ndarray
    H: int

    @property
    def names(self) -> list[str]:
        return list(self.gaps)

    def final(self, name: str, kind: str = "avg") -> float:
        """Mean over games of ``name``'s ``kind`` gap at the last episode."""
        return float(self.gaps[name][kind][:, -1].mean())

    def table(self, digits: int = 4) -> str:
        """Markdown table: final average / last-iterate gap per player (means over games), and
        the ratio of the average gap to the first player's."""
        ref = self.final(self.names[0])
        rows = [[n, self.final(n), self.final(n, "last"),
                 self.final(n) / ref if ref > 0 else float("nan")] for n in self.names]
        rows.append(["uniform", float(self.uniform.mean()), float(self.uniform.mean()),
                     float(self.uniform.mean()) / ref if ref > 0 else float("nan")])
        return markdown_table(["player", "gap avg", "gap last", f"ratio to {self.names[0]}"],
                              rows, digits=digits)


def evaluate_game_players(
    games: Any,
    players: Mapping[str, Any],
    *,
    episodes: int,
    seed: int = 0,
    query: str = "episode",
) -> GameCurves:
    """Play every player on the user's games for K episodes with the same random-draw seed and
    return the Nash-gap curves.

    Args:
        games: a :class:`~icarena.envs.games.TabularGame` batch (G,).
        players: name -> a trained :class:`icarena.pretraining.InContextGamePlayer`, a context
            algorithm by name ('exp3', 'vlearning', 'viulcb') or as a ``(name, options)`` pair
            (e.g. ``("viulcb", {"c": 0.02})``), or a policy source ``policy_fn(history)`` of
            :func:`icarena.agents.games.play` (returns ``(pi_max (G, H, S, A), pi_min (G, H, S,
            B))`` or a joint policy).
        episodes: K.
        seed: seed of the random draws during play (the same for every player).
        query: an in-context player's or policy source's query mode ('episode' or 'step').
    Returns:
        :class:`GameCurves` (``.gaps``, ``.final(name)``, ``.table()``).
    """
    from icarena.agents.games import play
    from icarena.envs.games import TabularGame
    from icarena.pretraining.game_player import InContextGamePlayer

    check(isinstance(games, TabularGame) and len(games.batch_shape) == 1,
          "games must be a TabularGame batch of shape (G,)", fields="games")
    check(isinstance(players, Mapping) and len(players) > 0,
          "players must be a non-empty dict name -> player", fields="players")
    check(isinstance(episodes, int) and episodes >= 1,
          f"episodes must be an int >= 1, got {episodes!r}", fields="episodes")
    gaps = {}
    for name, player in players.items():
        if isinstance(player, InContextGamePlayer):
            rec = player.play(games, episodes, seed=seed, query=query)
        elif isinstance(player, str) or (isinstance(player, tuple) and len(player) == 2
                                         and isinstance(player[0], str)):
            algo, options = (player, {}) if isinstance(player, str) else player
            check(algo in CONTEXT_ALGORITHMS, f"player {name!r}: unknown algorithm {algo!r}; "
                  f"choose one of {', '.join(CONTEXT_ALGORITHMS)}", fields="players")
            rec = context_records(games, algo, episodes, 1, seed=seed, algo_kwargs=dict(options))
        elif callable(player):
            rec = play(games, player, episodes, seed=seed, query=query)
        else:
            raise ConfigError(f"player {name!r} is a {type(player).__name__}: pass an "
                              "InContextGamePlayer, an algorithm name ('exp3', 'vlearning', "
                              "'viulcb'), a (name, options) pair or a policy_fn(history)",
                              fields="players")
        gaps[str(name)] = record_gap_curves(games, rec)
    return GameCurves(gaps=gaps, uniform=uniform_gap(games), H=int(games.dims[0]))


def evaluate_players(
    run_dirs: Mapping[str, str | os.PathLike],
    *,
    n_games: int = 10,
    eval_seed: int = 1000,
    episodes: int | None = None,
    seed: int = 0,
    query: str = "episode",
    device: str = "cpu",
    data: Mapping[str, str | os.PathLike] | None = None,
    plays: int = 1,
) -> dict[str, Any]:
    """Play every run and the context algorithm on the same held-out games; return the curves.

    Args:
        run_dirs: label -> ICGP run dir; all must share setting, dims, K and context algorithm.
        n_games: held-out games.
        eval_seed: seed of the held-out games (branch [eval_seed, 3]).
        episodes: K (default: the runs' pretraining K).
        seed: seed of the random draws during play (same for every method).
        query: the in-context player's query mode ("episode" or "step").
        device: torch device of the forward passes.
        data: label -> the dataset a run was trained on, where it is not the path the run
            recorded (its manifest hash is checked either way: :func:`check_run_dataset`).
        plays: play draws per game, with play seeds ``seed, seed + 1, ..., seed + plays - 1``;
            each game's curves are the mean over its draws, so a method's mean gap (and a ratio
            of two) averages out the randomness of play, which one draw of 10 games does not.
    Returns:
        ``{"meta", "K", "gaps": {method: {"last": (G, K), "avg": (G, K)[, "cert"]}},
        "uniform": (G,), "context": name, "plays": plays}``.
    """
    from icarena.pretraining.game_player import InContextGamePlayer

    check(len(run_dirs) >= 1, "give at least one run dir to evaluate")
    check(n_games >= 1, f"n_games must be >= 1, got {n_games}")
    check(isinstance(plays, int) and plays >= 1, f"plays must be an int >= 1, got {plays!r}",
          fields="plays")
    metas = {label: read_meta(d) for label, d in run_dirs.items()}
    for label, d in run_dirs.items():
        check_run_dataset(d, (data or {}).get(label))
    ref = next(iter(metas.values()))
    keys = ("setting", "H", "S", "A", "B", "context", "transition")
    for label, m in metas.items():
        diff = [k for k in keys if m.get(k) != ref.get(k)]
        check(not diff, f"run {label!r} differs from the others in {diff}; evaluate runs of one "
              "setting, game size and context algorithm together")
    check(ref.get("transition", "dirichlet") != "given",
          "these runs were trained on the user's own games, so there is no prior to draw "
          "held-out games from; score them on your games with "
          "icarena.evaluation.evaluate_game_players", fields="run_dirs")
    H, S, A, B = (int(ref[k]) for k in "HSAB")
    trained_K = sorted({int(m["episodes"]) for m in metas.values()})
    check(episodes is not None or len(trained_K) == 1,
          f"the runs were pretrained with different K {trained_K}; pass episodes (--eval.episodes)"
          f" <= {trained_K[0]} so that every run plays the same K", fields="episodes")
    K = trained_K[0] if episodes is None else int(episodes)
    check(K >= 1, f"episodes must be >= 1, got {K}")
    games = eval_games(H, S, A, B, n_games, eval_seed,
                       transition=ref.get("transition", "dirichlet"),
                       initial=ref.get("initial", "fixed"))
    ctx = ref["context"]
    players: dict[str, Any] = {label: InContextGamePlayer.load(d, device=device)
                               for label, d in run_dirs.items()}
    players[ctx] = (ctx, ref.get("context_cfg") or {})
    draws = [evaluate_game_players(games, players, episodes=K, seed=seed + r, query=query)
             for r in range(plays)]
    gaps = {name: {kind: np.mean([d.gaps[name][kind] for d in draws], axis=0) for kind in g}
            for name, g in draws[0].gaps.items()}
    return {"meta": ref, "K": K, "H": H, "gaps": gaps, "uniform": draws[0].uniform,
            "context": ctx, "n_games": n_games, "eval_seed": eval_seed, "seed": seed,
            "plays": plays}


def check_run_dataset(run_dir: str | os.PathLike,
                      data: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """Check that the games dataset ``run_dir`` recorded (or ``data``) is the one it was trained
    on: same manifest SHA-256, and settings that match the run's ``icgp.json``. Returns the
    dataset's settings (None for a run made before runs recorded their dataset and no ``data``).
    ConfigError naming the fix when the dataset is missing, replaced or another one."""
    recorded = recorded_dataset(run_dir)
    if recorded is None and not data:
        return None
    path = Path(data) if data else Path(str(recorded.get("path", "")))
    check(path.exists(), f"cannot find the dataset {run_dir} was trained on (looked at {path}); "
          "pass it with --data")
    ds, settings = load_games_dataset(path, verify=False)
    if recorded is not None:
        check(recorded.get("manifest_sha256") == ds.manifest_sha256,
              f"{run_dir} was trained on another dataset than {path} (manifest hashes differ: "
              "it was replaced or regenerated); pass --data with the dataset the run was "
              "trained on, or pretrain again")
    meta = read_meta(run_dir)
    diff = [k for k, m in (("setting", "setting"), ("H", "H"), ("S", "S"), ("A", "A"),
                           ("B", "B"), ("episodes", "episodes"), ("algorithm", "context"))
            if settings[k] != meta.get(m)]
    check(not diff, f"the dataset {path} does not fit the run {run_dir} (they differ in {diff});"
          " pass --data with the dataset the run was trained on")
    return settings


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Final-episode table rows, ratios to the context algorithm and mean curves (JSON-ready)."""
    gaps, ctx, H = result["gaps"], result["context"], result["H"]
    ctx_avg = float(gaps[ctx]["avg"][:, -1].mean())
    rows, curves = [], {}
    for method, c in gaps.items():
        row: dict[str, Any] = {"method": method}
        for kind, g in c.items():
            s = curve_summary(g)
            curves[f"{method}/{kind}"] = {k: v for k, v in s.items()}
            row[f"gap_{kind}"] = float(s["mean"][-1])
            row[f"gap_{kind}_ci"] = [float(s["ci_low"][-1]), float(s["ci_high"][-1])]
        row["gap_avg_over_H"] = row["gap_avg"] / H
        row["ratio_avg_to_context"] = row["gap_avg"] / ctx_avg if ctx_avg > 0 else float("nan")
        rows.append(row)
    u = float(np.mean(result["uniform"]))
    rows.append({"method": "uniform", "gap_last": u, "gap_avg": u, "gap_avg_over_H": u / H,
                 "ratio_avg_to_context": u / ctx_avg if ctx_avg > 0 else float("nan")})
    return {"rows": rows, "curves": curves, "context": ctx, "context_avg_gap": ctx_avg,
            "uniform_gap": u, "K": result["K"], "H": H, "n_games": result["n_games"],
            "eval_seed": result["eval_seed"], "seed": result["seed"],
            "plays": result.get("plays", 1)}


def write_outputs(out_dir: str | os.PathLike, result: dict[str, Any],
                  summary: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``icgp_eval.json``, ``gap_last.png``, ``gap_avg.png`` and TensorBoard scalars."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summary or summarize(result)
    K = result["K"]
    x = np.arange(1, K + 1)
    paths: dict[str, Path] = {}
    for kind, title in (("last", "per-episode policy"), ("avg", "averaged policy")):
        curves, bands = {}, {}
        for method, c in result["gaps"].items():
            if kind in c:
                s = summary["curves"][f"{method}/{kind}"]
                curves[method] = s["mean"]
                bands[method] = (s["ci_low"], s["ci_high"])
        curves["uniform"] = np.full(K, summary["uniform_gap"])
        paths[f"gap_{kind}"] = line_plot(
            out / f"gap_{kind}.png", x, curves, bands=bands, xlabel="episode",
            ylabel="Nash gap (NashConv)", logx=K > 20,
            title=f"{title}, mean over {summary['n_games']} held-out games")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb_icgp"))
    stride = max(1, K // 300)
    for method, c in result["gaps"].items():
        for kind, g in c.items():
            mean = g.mean(0)
            for k in range(0, K, stride):
                writer.add_scalar(f"icgp/{method}/gap_{kind}", float(mean[k]), k + 1)
            writer.add_scalar(f"icgp/{method}/gap_{kind}", float(mean[-1]), K)
    writer.close()
    paths["json"] = out / "icgp_eval.json"
    atomic_write_json(paths["json"], to_jsonable(
        {**{k: v for k, v in summary.items() if k != "curves"},
         "mean_curves": {k: v["mean"] for k, v in summary["curves"].items()}}))
    return paths


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the final-episode gaps."""
    headers = ["method", "gap_last", "gap_avg", "gap_avg_over_H", "ratio_avg_to_context"]
    return markdown_table(headers, [[r.get(h, "") for h in headers] for r in rows])


@dataclass
class GamesEval:
    """How in-context game players are evaluated (``--eval.*``; the same group in ``icarena
    evaluate icgp`` and the icgp-* experiments): Nash gap vs episode on held-out games."""

    n_games: int = 10
    """Held-out evaluation games."""
    seed: int = 1000
    """Seed of the held-out games (branch [seed, 3], disjoint from pretraining)."""
    episodes: int = 0
    """K episodes of play (0: the pretraining K)."""
    play_seed: int | None = None
    """Seed of the random draws during play, shared by every method (None: the run's seed)."""
    plays: int = 1
    """Play draws per held-out game (play seeds play_seed, play_seed + 1, ...); each game's
    curves are averaged over them, so the gaps and ratios do not hang on one draw."""
    query: str = "episode"
    """'episode' (read the policy once per episode) or 'step' (before every step)."""
    device: str = ""
    """torch device of the players' forward passes ('': the training device in `icarena run`,
    cpu in `icarena evaluate icgp`)."""

    def validate(self) -> None:
        check(self.n_games >= 1, f"eval.n_games must be >= 1, got {self.n_games}")
        check(self.episodes >= 0, f"eval.episodes must be >= 0, got {self.episodes}")
        check(isinstance(self.plays, int) and self.plays >= 1,
              f"--eval.plays must be an int >= 1 (play draws per game), got {self.plays!r}")
        check(self.query in ("episode", "step"),
              f"eval.query must be 'episode' or 'step', got {self.query!r}")
        check(self.seed >= 0 and (self.play_seed is None or self.play_seed >= 0),
              f"--eval.seed and --eval.play-seed must be >= 0, got {self.seed}, {self.play_seed}")
        check(not self.device.startswith("cuda") or _cuda_available(),
              f"--eval.device {self.device} was requested but this machine has no CUDA device; "
              "use --eval.device cpu")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass
class EvalConfig:
    """Nash gap of in-context game players on held-out games (``icarena evaluate icgp``)."""

    run_dir: str = ""
    """ICGP run dir (icgp.json + max/ min/ or joint/); several: comma-separated."""
    data: str = ""
    """The games dataset the run was trained on ('' = the one its config.json recorded; its
    manifest hash is checked either way). Only with one run dir."""
    out_dir: str = ""
    """Where to write metrics.json, report.md, PNGs and TensorBoard events ('' = run_dir/eval
    for one run dir; required for several). The runs' own files are never changed."""
    overwrite: bool = False
    """Replace an earlier evaluation in out_dir."""
    threads: int = 0
    """torch CPU threads of the players' forward passes (0: leave torch's default). Set 1 when
    several evaluations or a training share the machine's cores."""
    eval: GamesEval = field(default_factory=GamesEval)
    """Evaluation protocol."""


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """``icarena evaluate icgp``: evaluate, write outputs, return ``{"report", "rows"}``."""
    dirs = [d for d in cfg.run_dir.split(",") if d.strip()]
    if not dirs:
        raise ConfigError("--run-dir is required (an icgp run dir; several: comma-separated)")
    check(len({str(Path(d).resolve()) for d in dirs}) == len(dirs),
          f"--run-dir lists a run twice ({cfg.run_dir}); list each run once")
    names = [Path(d).name or d for d in dirs]
    run_dirs = dict(zip(names if len(set(names)) == len(names) else dirs, dirs, strict=True))
    if not cfg.out_dir and len(dirs) > 1:
        raise ConfigError("several run dirs need --out-dir for the evaluation's files")
    check(not cfg.data or len(dirs) == 1, "--data goes with one --run-dir (several runs are "
          "checked against the datasets they recorded)")
    ev = cfg.eval
    ev.validate()
    check(isinstance(cfg.threads, int) and cfg.threads >= 0,
          f"--threads must be an int >= 0 (0: torch's default), got {cfg.threads!r}")
    out = eval_out_dir(dirs[0], cfg.out_dir)
    check_run_target(out, overwrite=cfg.overwrite, resumable=False)  # refuse before the work
    # the runs' own seed by default; with several runs the smallest, so that the result does
    # not depend on the order they are listed in
    play_seed = ev.play_seed if ev.play_seed is not None else min(
        int(read_meta(d).get("seed", 0)) for d in dirs)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    res = evaluate_players(run_dirs, n_games=ev.n_games, eval_seed=ev.seed,
                           episodes=ev.episodes or None, seed=play_seed, query=ev.query,
                           device=ev.device or "cpu",
                           data={next(iter(run_dirs)): cfg.data} if cfg.data else None,
                           plays=ev.plays)
    summary = summarize(res)
    with claim_run(out, overwrite=cfg.overwrite, resumable=False):
        write_outputs(out, res, summary)
        write_metrics(out, {k: v for k, v in summary.items() if k != "curves"})
        report = write_report(out, "In-context game players: Nash gap on held-out games", [
            f"{summary['n_games']} held-out games (eval seed {summary['eval_seed']}), K = "
            f"{summary['K']}, context algorithm {summary['context']}; play seed "
            f"{summary['seed']}" + (f" and the next {summary['plays'] - 1} (each game's gaps "
                                    f"averaged over {summary['plays']} draws)"
                                    if summary["plays"] > 1 else "") + ".",
            table_markdown(summary["rows"]),
            "![per-episode](gap_last.png)\n\n![averaged](gap_avg.png)",
        ])
    return {"report": str(report), "rows": [{k: r[k] for k in ("method", "gap_last", "gap_avg",
                                                               "ratio_avg_to_context") if k in r}
                                            for r in summary["rows"]]}


__all__ = ["EvalConfig", "GamesEval", "check_run_dataset", "evaluate", "evaluate_players",
           "summarize",
           "table_markdown", "write_outputs"]

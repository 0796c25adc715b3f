"""Scoring a path model: sample ``s t`` prompts, score completions overall and per degree.

ALPINE's protocol (Wang et al. 2024, arXiv 2405.09220, Sec. 3): draw test pairs uniformly with
replacement, sample each several times at temperature 1, cut at the newline, and count a
completion valid iff it starts at s, follows edges and ends at t. BFS and random-walk planners are
scored by the same rule on the same pairs. Also the ``icarena evaluate path`` entry point.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena.agents.planning.planners import BFSPlanner, RandomWalkPlanner
from icarena.envs.planning.tokens import decode_row
from icarena.errors import check
from icarena.evaluation.planning import (
    LABELS,
    PathDataset,
    degrees,
    evaluate_planners,
    load_path_dataset,
)
from icarena.evaluation.report import markdown_table, write_metrics, write_report
from icarena.lifecycle import atomic_write_bytes, claim_run, eval_out_dir
from icarena.pretraining.model import SequenceModel, load_model

DEGREES = ("0", "1", "2", ">=3")


@dataclass
class PathEval:
    """How a path model is evaluated (ALPINE's protocol): drawn test pairs, sampled completions,
    scored by path validity. The sampling seed is the stage's ``seed``."""

    n_prompts: int = 1000
    """Test pairs drawn uniformly with replacement."""
    samples_per_prompt: int = 10
    """Completions per drawn pair (1,000 x 10 = 10,000 trials)."""
    temperature: float = 1.0
    """Sampling temperature (ALPINE: 1, plain multinomial)."""
    greedy: bool = False
    """Take the arg-max token instead of sampling."""

    def validate(self) -> None:
        check(self.n_prompts >= 1, f"eval.n_prompts must be >= 1, got {self.n_prompts}")
        check(self.samples_per_prompt >= 1,
              f"eval.samples_per_prompt must be >= 1, got {self.samples_per_prompt}")
        check(self.temperature > 0, f"eval.temperature must be > 0, got {self.temperature}")


def draw_prompts(data: PathDataset, opts: PathEval, seed: int) -> np.ndarray:
    """(n_prompts * samples_per_prompt, 2) test pairs, drawn with replacement, each repeated."""
    rng = np.random.default_rng([seed, 1])
    idx = rng.integers(0, len(data.test_pairs), size=opts.n_prompts)
    return np.repeat(data.test_pairs[idx], opts.samples_per_prompt, axis=0)


def failures_jsonl(
    data: PathDataset, pairs: np.ndarray, rows: np.ndarray, scores, limit: int = 10_000
) -> bytes:
    """One JSON object per failed completion: pair, decoded path, first invalid step, label."""
    lines = []
    for i in np.flatnonzero(~scores.path_valid)[:limit]:
        nodes, _ = decode_row(rows[i, 2:], data.n)
        lines.append(json.dumps({
            "source": int(pairs[i, 0]), "target": int(pairs[i, 1]),
            "tokens": [int(t) for t in rows[i]], "path": [int(v) for v in nodes],
            "first_invalid_step": int(scores.step[i]), "label": LABELS[int(scores.code[i])],
        }))
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def trials_npz(pairs: np.ndarray, degree: np.ndarray, valid: np.ndarray) -> bytes:
    """The model's trials as an ``.npz`` (no pickled objects): ``source``, ``target`` (int64, M),
    ``degree`` (int64, M; 3 means >= 3) and ``valid`` (bool, M), one entry per sampled
    completion. Read back with :func:`load_trials`."""
    buf = io.BytesIO()
    np.savez(buf, source=pairs[:, 0].astype(np.int64), target=pairs[:, 1].astype(np.int64),
             degree=np.asarray(degree, dtype=np.int64), valid=np.asarray(valid, dtype=bool))
    return buf.getvalue()


def load_trials(path: str | Path) -> dict[str, np.ndarray]:
    """A run's ``trials.npz`` as a dict of arrays (``source``, ``target``, ``degree``,
    ``valid``), loaded without pickle."""
    path = Path(path)
    check(path.is_file(), f"no trials file at {path}; it is written by `icarena run alpine` / "
                          "`icarena evaluate path` (runs scored before it existed: evaluate again)")
    with np.load(path, allow_pickle=False) as z:
        trials = {k: z[k] for k in ("source", "target", "degree", "valid")}
    return trials


def evaluate_path_model(
    model: SequenceModel, data: PathDataset, opts: PathEval, seed: int, out_dir: Path,
) -> dict[str, Any]:
    """Sample completions for drawn test pairs, score them and the baselines on the same pairs
    (through :func:`icarena.evaluation.evaluate_planners`, as a Python user would).

    Writes ``failures.jsonl`` (every failed model completion with its first invalid step) and
    ``trials.npz`` (:func:`trials_npz`: every model trial's pair, degree and validity, the input
    of the per-degree statistics over runs).
    """
    from icarena.pretraining.planner import PathPlanner

    opts.validate()
    pairs = draw_prompts(data, opts, seed)
    A_obs, R_obs = data.observed()
    degree = degrees(A_obs, R_obs, pairs)
    planners = {"transformer": PathPlanner(model, data.graph),
                "BFS": BFSPlanner(data.graph),
                "random walk": RandomWalkPlanner(data.graph, seed=seed)}
    res = evaluate_planners(data.graph, pairs, planners, greedy=opts.greedy,
                            temperature=opts.temperature, seed=seed, degree=degree)
    atomic_write_bytes(out_dir / "failures.jsonl", failures_jsonl(
        data, pairs, res.rows["transformer"], res.scores["transformer"]))
    atomic_write_bytes(out_dir / "trials.npz", trials_npz(
        pairs, degree, res.scores["transformer"].path_valid))
    return {"transformer": res.summary["transformer"], "bfs": res.summary["BFS"],
            "random_walk": res.summary["random walk"], "n_trials": len(pairs)}


def degree_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: planner x (overall, degree 0, 1, 2, >=3) accuracy, with trial counts."""
    first = next(iter(results.values()))
    headers = ["planner", "overall"] + [
        f"degree {d} (n={first['per_degree'][d]['count']})" for d in DEGREES
    ]
    rows = [[r["planner"], r["path_valid"]] + [r["per_degree"][d]["accuracy"] for d in DEGREES]
            for r in results.values()]
    return markdown_table(headers, rows, digits=3)


@dataclass
class EvalConfig:
    """Score a trained path model (run dir) on a path dataset's held-out pairs."""

    run_dir: str = "runs/alpine"
    """Run dir with config.json + model.safetensors (from `icarena pretrain path` or a run)."""
    data: str = ""
    """Dataset dir ('' = the one the run was trained on; its manifest hash is checked)."""
    out_dir: str = ""
    """Where to write metrics.json, report.md, failures.jsonl ('' = run_dir/eval); the run's
    own files are never changed."""
    overwrite: bool = False
    """Replace an earlier evaluation in out_dir."""
    seed: int = 0
    """Seed of the drawn prompts and the sampling (an experiment uses its own seed)."""
    eval: PathEval = field(default_factory=PathEval)
    """Evaluation protocol (the same as --eval.* of icarena run alpine / blocksworld)."""


def evaluate(cfg: EvalConfig) -> dict:
    """``icarena evaluate path``: writes metrics.json, report.md, failures.jsonl to out_dir."""
    model, config = load_model(cfg.run_dir)
    data = load_path_dataset(cfg.data or recorded_dataset_path(cfg.run_dir, config))
    trained_on = config.get("dataset", {}).get("manifest_sha256")
    check(trained_on in (None, data.identity["manifest_sha256"]),
          f"{cfg.run_dir} was trained on another dataset than {cfg.data or 'the recorded one'} "
          "(manifest hashes differ); pass --data with the dataset the model was trained on")
    check(model.cfg.input_dim == data.n + 2,
          f"the model's vocabulary ({model.cfg.input_dim}) does not fit the dataset's "
          f"({data.n + 2}); pass the dataset the model was trained on")
    out = eval_out_dir(cfg.run_dir, cfg.out_dir)
    with claim_run(out, overwrite=cfg.overwrite, resumable=False):
        ev = evaluate_path_model(model, data, cfg.eval, cfg.seed, out)
        write_metrics(out, {"evaluation": ev, "run_dir": str(cfg.run_dir)})
        report = write_report(out, "Path validity", [degree_table(
            {k: ev[k] for k in ("transformer", "bfs", "random_walk")})])
    rows = [{"planner": r["planner"], "overall": round(r["path_valid"], 3),
             **{f"deg {d}": round(r["per_degree"][d]["accuracy"], 3) for d in DEGREES}}
            for r in (ev["transformer"], ev["bfs"], ev["random_walk"])]
    return {"report": str(report), "rows": rows}


def recorded_dataset_path(run_dir: str | Path, config: dict) -> Path:
    """The dataset a path run was trained on: ``pretrain.data`` of ``icarena pretrain path``, or
    ``RUN/data`` of an experiment's run dir."""
    recorded = config.get("pretrain", {}).get("data")
    candidate = Path(recorded) if recorded else Path(run_dir) / "data"
    check(candidate.exists(), f"cannot find the dataset {run_dir} was trained on (looked at "
                              f"{candidate}); pass it with --data")
    return candidate

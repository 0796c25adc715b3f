"""The hardening corpus: bad inputs and faults a user can hit, each with a tiny base config.

Every case runs ``icarena.cli.main(argv)`` in-process (or a Python call) inside a fresh temporary
directory that holds a copy of a tiny alpine dataset (``{D}``) and a tiny trained path run
(``{R}``). A refused case must exit 2 within 5 s with exactly one ``icarena: error: ...`` line
on stderr and leave every byte under the directory as it was; an accepted case must finish within
30 s and write only finite numbers. Groups follow the hardening issue: 1 tracebacks instead of one
line, 2 no size check before allocating, 3 files on disk are untrusted input, 4 silent wrong
results, 5 misleading messages.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TINY_ALPINE = ["--nodes", "20", "--p", "0.2", "--paths-per-pair", "2"]
TINY_PATH = ["--model.d-model", "16", "--train.steps", "20", "--train.batch-size", "8",
             "--train.threads", "1", "--train.ckpt-every", "10", "--train.warmup-steps", "5",
             "--train.no-progress"]
TINY_GAMES = ["--n-games", "2", "--episodes", "10"]
TINY_REGRESSION = ["--d", "2", "--k", "5", "--n-prompts", "64"]
TINY_BASELINES = ["--eval.n-games", "1", "--eval.matrix-episodes", "20",
                  "--eval.markov-episodes", "5"]
TINY_BLOCKS = ["--blocks", "3", "--lines", "200"]


class Hung(BaseException):
    """A case that did not answer in time (not an OSError: the CLI must not report it)."""


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after ``seconds``: a hung case fails instead of
    hanging the suite."""
    def fire(signum: int, frame: Any) -> None:
        raise Hung(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@dataclass(frozen=True)
class Case:
    """One input. ``argv`` may use ``{D}`` (dataset copy), ``{R}`` (run copy), ``{T}`` (the
    temporary directory); ``setup(T)`` mutates the copies first; ``call(T)`` is a Python case
    instead of a command; ``says`` must appear in the error line; ``env`` is set meanwhile."""

    group: int
    name: str
    argv: tuple[str, ...] = ()
    expect: str = "refuse"
    setup: Callable[[Path], None] | None = None
    call: Callable[[Path], Any] | None = None
    says: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- mutations
def _manifest(T: Path) -> tuple[Path, dict]:
    p = T / "d" / "manifest.json"
    return p, json.loads(p.read_text())


def _write_manifest(T: Path, m: Any) -> None:
    (T / "d" / "manifest.json").write_text(json.dumps(m))


def mutate_manifest(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
    def setup(T: Path) -> None:
        _, m = _manifest(T)
        out = fn(m)
        _write_manifest(T, m if out is None else out)
    return setup


def _first_shard(m: dict) -> dict:
    return m["arrays"]["train/tokens"]["shards"][0]


def _outside_shard(T: Path) -> None:
    np.save(T / "outside.npy", np.zeros((3, 3), dtype=np.uint16))
    _, m = _manifest(T)
    _first_shard(m)["file"] = "../outside.npy"
    _write_manifest(T, m)


def _absolute_shard(T: Path) -> None:
    _, m = _manifest(T)
    _first_shard(m)["file"] = str((T / "d" / _first_shard(m)["file"]).resolve())
    _write_manifest(T, m)


def _symlink_shard(T: Path) -> None:
    _, m = _manifest(T)
    real = T / "d" / _first_shard(m)["file"]
    (T / "elsewhere").mkdir()
    moved = T / "elsewhere" / real.name
    real.rename(moved)
    real.symlink_to(moved)


def _shard_twice(m: dict) -> None:
    spec = m["arrays"]["train/tokens"]
    spec["shards"] = spec["shards"] * 2
    spec["shape"][0] *= 2


def _wrong_shape(m: dict) -> None:
    m["arrays"]["train/tokens"]["shape"][1] += 1


def _out_of_vocab(T: Path) -> None:
    _, m = _manifest(T)
    shard = _first_shard(m)
    path = T / "d" / shard["file"]
    arr = np.load(path).copy()
    arr[-1, 0] = 60000  # far beyond the vocabulary of a 20-node graph
    np.save(path, arr, allow_pickle=False)
    import hashlib

    shard["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    _write_manifest(T, m)


def _ckpt(T: Path) -> tuple[Path, dict]:
    import torch

    p = T / "r" / "ckpt.pt"
    return p, torch.load(p, weights_only=True)


def mutate_ckpt(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
    def setup(T: Path) -> None:
        import torch

        p, state = _ckpt(T)
        out = fn(state)
        torch.save(state if out is None else out, p)
    return setup


def _nan_weights(state: dict) -> None:
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name].clone().fill_(float("nan"))


def _other_optimizer(state: dict) -> None:
    groups = state["optimizer"]["param_groups"]
    groups.append(dict(groups[0], params=[10_000]))


class Evil:
    """A pickled object that torch.load(weights_only=True) refuses."""

    def __reduce__(self) -> tuple:
        return (os.getcwd, ())


def _pickled_ckpt(T: Path) -> None:
    import torch

    torch.save({"model": Evil()}, T / "r" / "ckpt.pt")


def _bad_run_config(text: str) -> Callable[[Path], None]:
    def setup(T: Path) -> None:
        (T / "r" / "config.json").write_text(text)
    return setup


def _make_file(name: str) -> Callable[[Path], None]:
    def setup(T: Path) -> None:
        (T / name).write_text("a file, not a directory\n")
    return setup


# --------------------------------------------------------------------------- python cases
def _env(env_id: str, **kwargs: Any) -> Any:
    import gymnasium

    import icarena  # noqa: F401

    return gymnasium.make(env_id, **kwargs).unwrapped


def _step_after_end(env_id: str, **kwargs: Any) -> Callable[[Path], Any]:
    def call(T: Path) -> Any:
        env = _env(env_id, **kwargs)
        env.reset(seed=0)
        for _ in range(10_000):
            a = _an_action(env)
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
        return env.step(_an_action(env))
    return call


def _an_action(env: Any) -> int:
    info = env._info() if hasattr(env, "_info") else {}
    legal = info.get("legal_actions")
    return int(legal[0]) if legal else 0


def _step_with(env_id: str, action: Any, **kwargs: Any) -> Callable[[Path], Any]:
    def call(T: Path) -> Any:
        env = _env(env_id, **kwargs)
        env.reset(seed=0)
        return env.step(action)
    return call


def _make(env_id: str, **kwargs: Any) -> Callable[[Path], Any]:
    def call(T: Path) -> Any:
        return _env(env_id, **kwargs)
    return call


def _colliding_names(T: Path) -> Any:
    from icarena.pretraining.data import write_dataset

    return write_dataset(T / "coll", {"a/b": np.zeros(2), "a__b": np.ones(2)},
                         generator="x", config={}, seed=0)


def _random_dag_negative_seed(T: Path) -> Any:
    from icarena.envs.planning import random_dag

    return random_dag(10, 0.2, seed=-1)


def _huge_game(T: Path) -> Any:
    from icarena import limits
    from icarena.envs.games import TabularGame

    with limits.max_memory("1GiB"):
        return TabularGame.random(50, 500, 10, 10, seed=0)


def _load_dataset(T: Path) -> Any:
    from icarena.pretraining.data import load_dataset

    return load_dataset(T / "d")


G1, G2, G3, G4, G5 = 1, 2, 3, 4, 5
GEN = ("generate", "alpine", *TINY_ALPINE)
RESUME = ("pretrain", "path", "--data", "{D}", "--out-dir", "{R}", "--resume", *TINY_PATH[:2],
          "--train.steps", "30", *TINY_PATH[4:])
CEIL = {"ICARENA_MAX_MEMORY": "1GiB"}

CASES: list[Case] = [
    # ---- 1. tracebacks instead of one line
    Case(G1, "out-dir is an existing file", (*GEN, "--out-dir", "{T}/f"), setup=_make_file("f")),
    Case(G1, "out-dir under a file", (*GEN, "--out-dir", "{T}/f/sub"), setup=_make_file("f")),
    Case(G1, "pretrain out-dir under a file",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/f/run", *TINY_PATH),
         setup=_make_file("f")),
    Case(G1, "generate alpine negative seed", (*GEN, "--seed", "-1", "--out-dir", "{T}/x")),
    Case(G1, "generate games negative seed",
         ("generate", "games", *TINY_GAMES, "--seed", "-1", "--out-dir", "{T}/x")),
    Case(G1, "generate regression negative seed",
         ("generate", "regression", *TINY_REGRESSION, "--seed", "-1", "--out-dir", "{T}/x")),
    Case(G1, "games-baselines negative seed",
         ("run", "games-baselines", *TINY_BASELINES, "--seed", "-1", "--out-dir", "{T}/x")),
    Case(G1, "games-baselines negative eval seed",
         ("run", "games-baselines", *TINY_BASELINES, "--eval.seed", "-1", "--out-dir", "{T}/x")),
    Case(G1, "pretrain negative train seed",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.seed", "-1")),
    Case(G1, "random_dag negative seed (python)", call=_random_dag_negative_seed),
    Case(G1, "manifest is a JSON list",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(lambda m: [1, 2])),
    Case(G1, "manifest is a JSON list (python)", call=_load_dataset,
         setup=mutate_manifest(lambda m: [1, 2, 3])),
    Case(G1, "manifest without arrays",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(lambda m: m.pop("arrays"))),
    Case(G1, "manifest shard without file",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(lambda m: _first_shard(m).pop("file"))),
    Case(G1, "manifest shard rows a string",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(lambda m: _first_shard(m).update(rows="many"))),
    Case(G1, "manifest not JSON",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=lambda T: (T / "d" / "manifest.json").write_text("{not json")),
    Case(G1, "run config.json a JSON list",
         ("evaluate", "path", "--run-dir", "{R}", "--out-dir", "{T}/ev"),
         setup=_bad_run_config("[1, 2]")),
    Case(G1, "run config.json not JSON",
         ("evaluate", "path", "--run-dir", "{R}", "--out-dir", "{T}/ev"),
         setup=_bad_run_config("{")),
    Case(G1, "run config.json without model",
         ("evaluate", "path", "--run-dir", "{R}", "--out-dir", "{T}/ev"),
         setup=_bad_run_config('{"dataset": {}}')),
    Case(G1, "--config of a list", (*GEN, "--config", "{T}/c.json", "--out-dir", "{T}/x"),
         setup=lambda T: (T / "c.json").write_text("[]")),
    Case(G1, "ckpt without step", RESUME, setup=mutate_ckpt(lambda s: s.pop("step"))),
    Case(G1, "ckpt with another optimizer layout", RESUME, setup=mutate_ckpt(_other_optimizer)),
    Case(G1, "ckpt not a dict", RESUME, setup=mutate_ckpt(lambda s: [1, 2, 3])),
    Case(G1, "ckpt truncated", RESUME,
         setup=lambda T: (T / "r" / "ckpt.pt").write_bytes((T / "r" / "ckpt.pt").read_bytes()
                                                           [:100])),
    Case(G1, "ckpt with a pickled object", RESUME, setup=_pickled_ckpt, says=("weights_only",)),
    Case(G1, "parse error: int flag given text", (*GEN, "--nodes", "abc")),
    Case(G1, "parse error: unknown flag", (*GEN, "--bogus", "3")),
    Case(G1, "parse error: flag without value", (*GEN, "--nodes")),
    Case(G1, "parse error: bad choice of bool", (*GEN, "--overwrite", "maybe")),
    Case(G1, "unknown generator", ("generate", "nosuch")),
    Case(G1, "bad --max-memory", (*GEN, "--max-memory", "lots", "--out-dir", "{T}/x")),
    Case(G1, "--max-memory without size", (*GEN, "--out-dir", "{T}/x", "--max-memory")),
    Case(G1, "bad ICARENA_MAX_MEMORY", (*GEN, "--out-dir", "{T}/x"),
         env={"ICARENA_MAX_MEMORY": "-3GB"}),
    Case(G1, "run alpine --data.nodes 10 (empty test split)",
         ("run", "alpine", "--data.nodes", "10", "--model.d-model", "16", "--train.steps", "20",
          "--train.threads", "1", "--train.no-progress", "--out-dir", "{T}/x"),
         says=("no test pairs",)),
    # ---- 2. no size check before allocating (ceiling 1 GiB)
    Case(G2, "alpine --nodes 40000", ("generate", "alpine", "--nodes", "40000", "--out-dir",
                                      "{T}/x"), env=CEIL, says=("--nodes", "GiB")),
    Case(G2, "alpine --nodes 40000 via --max-memory",
         ("generate", "alpine", "--nodes", "40000", "--out-dir", "{T}/x", "--max-memory",
          "1GiB"), says=("--nodes",)),
    Case(G2, "alpine huge --paths-per-pair",
         ("generate", "alpine", "--nodes", "200", "--paths-per-pair", "100000000",
          "--out-dir", "{T}/x"), env=CEIL, says=("--paths-per-pair",)),
    Case(G2, "regression huge --n-prompts",
         ("generate", "regression", "--d", "2", "--k", "5", "--n-prompts", "10000000000",
          "--out-dir", "{T}/x"), env=CEIL, says=("--n-prompts",)),
    Case(G2, "regression huge --d",
         ("generate", "regression", "--d", "1000000000", "--k", "5", "--n-prompts", "64",
          "--out-dir", "{T}/x"), env=CEIL),
    Case(G2, "games huge --episodes",
         ("generate", "games", "--n-games", "2", "--episodes", "1000000000", "--out-dir",
          "{T}/x"), env=CEIL, says=("--episodes",)),
    Case(G2, "games huge --A --B",
         ("generate", "games", "--n-games", "2", "--episodes", "10", "--A", "100000", "--B",
          "100000", "--out-dir", "{T}/x"), env=CEIL),
    Case(G2, "games huge --n-games",
         ("generate", "games", "--n-games", "1000000000", "--episodes", "10", "--out-dir",
          "{T}/x"), env=CEIL, says=("--n-games",)),
    Case(G2, "pretrain huge --train.batch-size",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.batch-size", "100000000"), env=CEIL, says=("--train.batch-size",)),
    Case(G2, "pretrain huge --model.d-model",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--model.d-model", "1000000"), env=CEIL, says=("--model.d-model",)),
    Case(G2, "MarkovGame-v0 with large H and S (python)",
         call=lambda T: _env("icarena/MarkovGame-v0", H=1000, S=2000).reset(seed=0), env=CEIL),
    Case(G2, "TabularGame.random above the ceiling (python)", call=_huge_game),
    Case(G2, "PathFinding-v0 with n_nodes 100000 (python)",
         call=_make("icarena/PathFinding-v0", n_nodes=100_000), env=CEIL),
    Case(G2, "blocksworld --blocks 7 (outside 1..6)",
         ("generate", "blocksworld", "--blocks", "7", "--out-dir", "{T}/x")),
    # ---- 3. files on disk are untrusted input
    Case(G3, "shard path ../ outside the dataset",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=_outside_shard, says=("outside the dataset",)),
    Case(G3, "shard path absolute",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=_absolute_shard, says=("outside the dataset",)),
    Case(G3, "shard a symlink out of the dataset",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=_symlink_shard, says=("outside the dataset",)),
    Case(G3, "manifest shape differs from the shard",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(_wrong_shape)),
    Case(G3, "shard listed twice",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(_shard_twice), says=("twice",)),
    Case(G3, "array names a/b and a__b collide (python)", call=_colliding_names),
    Case(G3, "ckpt step beyond --train.steps", RESUME,
         setup=mutate_ckpt(lambda s: s.update(step=10_000)), says=("--train.steps",)),
    Case(G3, "ckpt with NaN weights", RESUME, setup=mutate_ckpt(_nan_weights)),
    Case(G3, "out-of-vocabulary token id in the dataset",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=_out_of_vocab),
    Case(G3, "dataset of another generator",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH),
         setup=mutate_manifest(lambda m: m.update(generator="games"))),
    # ---- 4. silent wrong results
    Case(G4, "generate games exp3 eta inf",
         ("generate", "games", *TINY_GAMES, "--context-options", "eta", "inf", "--out-dir",
          "{T}/x")),
    Case(G4, "generate games exp3 eta nan",
         ("generate", "games", *TINY_GAMES, "--context-options", "eta", "nan", "--out-dir",
          "{T}/x")),
    Case(G4, "Blocksworld action 1.5 (python)", call=_step_with("icarena/Blocksworld-v0", 1.5)),
    Case(G4, "Blocksworld action '0' (python)", call=_step_with("icarena/Blocksworld-v0", "0")),
    Case(G4, "PathFinding action 1.0 (python)",
         call=_step_with("icarena/PathFinding-v0", 1.0, n_nodes=10)),
    Case(G4, "PathFinding action True (python)",
         call=_step_with("icarena/PathFinding-v0", True, n_nodes=10)),
    Case(G4, "PathFinding step after the end (python)",
         call=_step_after_end("icarena/PathFinding-v0", n_nodes=10)),
    Case(G4, "Blocksworld step after the end (python)",
         call=_step_after_end("icarena/Blocksworld-v0", n_blocks=2, max_steps=3)),
    Case(G4, "Regression step after the end (python)",
         call=_step_after_end("icarena/Regression-v0", d=2, k=3)),
    Case(G4, "NaN invalid_penalty (python)",
         call=_make("icarena/PathFinding-v0", n_nodes=10, invalid_penalty=float("nan"))),
    Case(G4, "NaN invalid_penalty Blocksworld (python)",
         call=_make("icarena/Blocksworld-v0", invalid_penalty=float("nan"))),
    Case(G4, "--train.threads -4",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.threads", "-4")),
    Case(G4, "alpine --p 1.5", (*GEN[:2], "--nodes", "20", "--p", "1.5", "--out-dir", "{T}/x")),
    Case(G4, "alpine --train-fraction nan",
         (*GEN, "--train-fraction", "nan", "--out-dir", "{T}/x")),
    Case(G4, "pretrain --train.lr nan",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.lr", "nan")),
    Case(G4, "pretrain --train.grad-clip inf",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.grad-clip", "inf")),
    # ---- 5. misleading messages
    Case(G5, "pretrain --train.device cuda without CUDA",
         ("pretrain", "path", "--data", "{D}", "--out-dir", "{T}/x", *TINY_PATH,
          "--train.device", "cuda"), says=("--train.device",)),
    Case(G5, "unknown PathFinding kwarg (python)",
         call=_make("icarena/PathFinding-v0", n_nodes=10, bogus=1), says=("bogus",)),
    Case(G5, "unknown Blocksworld kwarg (python)",
         call=_make("icarena/Blocksworld-v0", blocks=3), says=("blocks",)),
    Case(G5, "unknown Regression kwarg (python)",
         call=_make("icarena/Regression-v0", dim=3), says=("dim",)),
    Case(G5, "unknown MatrixGame kwarg (python)",
         call=_make("icarena/MatrixGame-v0", actions=3), says=("actions",)),
    Case(G5, "run alpine --model.backbone linear: probes skipped, not crashed",
         ("run", "alpine", "--data.nodes", "12", "--data.p", "0.3", "--data.paths-per-pair", "2",
          "--model.backbone", "linear", "--model.d-model", "16", "--train.steps", "10",
          "--train.batch-size", "8", "--train.warmup-steps", "2", "--train.threads", "1",
          "--train.no-progress", "--eval.n-prompts", "4", "--eval.samples-per-prompt", "1",
          "--out-dir", "{T}/ok"), expect="accept"),
    Case(G5, "games-baselines --model.exp3-eta inf",
         ("run", "games-baselines", *TINY_BASELINES, "--model.exp3-eta", "inf", "--out-dir",
          "{T}/x"), says=("exp3",)),
    # ---- accepted neighbours (a fix must not refuse these)
    Case(G1, "generate alpine tiny", (*GEN, "--out-dir", "{T}/ok"), expect="accept"),
    Case(G2, "alpine --nodes 40000 is refused only by the ceiling: --nodes 300 accepted",
         ("generate", "alpine", "--nodes", "300", "--paths-per-pair", "1", "--out-dir",
          "{T}/ok"), expect="accept", env=CEIL),
    Case(G3, "resume the intact run", RESUME, expect="accept"),
    Case(G4, "generate games exp3 eta 0.5",
         ("generate", "games", *TINY_GAMES, "--context-options", "eta", "0.5", "--out-dir",
          "{T}/ok"), expect="accept"),
    Case(G4, "PathFinding integer numpy action (python)", expect="accept",
         call=_step_with("icarena/PathFinding-v0", np.int64(0), n_nodes=10)),
]

_ = pickle  # Evil is pickled by torch.save

"""Drive the installed ``icarena`` command in subprocesses, the way a user does."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ICARENA = shutil.which("icarena", path=str(Path(sys.executable).parent)) or "icarena"


def env() -> dict[str, str]:
    """The user's environment, with one torch thread for byte-identical reruns."""
    return dict(os.environ, OMP_NUM_THREADS="1", SDL_VIDEODRIVER="dummy", PYTHONUNBUFFERED="1")


def icarena(*args: str, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``icarena ARGS`` to completion; returns the completed process (text output)."""
    return subprocess.run([ICARENA, *args], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def ok(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = icarena(*args, cwd=cwd)
    assert proc.returncode == 0, f"icarena {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc


def refused(*args: str, cwd: Path | None = None) -> str:
    """Run a command that must be refused: exit 2 and exactly one ``icarena: error:`` line."""
    proc = icarena(*args, cwd=cwd)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, f"expected exit 2, got {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert len(lines) == 1 and lines[0].startswith("icarena: error: "), proc.stderr
    return lines[0]


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``icarena ARGS`` in its own session (so every process it starts can be found)."""
    return subprocess.Popen([ICARENA, *args], cwd=cwd, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def kill_after_first_checkpoint(proc: subprocess.Popen, run_dir: Path,
                                timeout: float = 240) -> None:
    """``kill -9`` the icarena process once a checkpoint exists under ``run_dir``; then assert
    that within 5 s no process it started is alive."""
    deadline = time.monotonic() + timeout
    while not any(run_dir.rglob("ckpt.pt")):
        assert proc.poll() is None, f"finished or failed before a checkpoint:\n{proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed; give it more steps"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    deadline = time.monotonic() + 5
    while session_processes(proc.pid):
        assert time.monotonic() < deadline, f"still alive: {session_processes(proc.pid)}"
        time.sleep(0.05)


def file_hashes(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> SHA-256 of every file under ``root`` (skipping ``exclude`` prefixes)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and not rel.startswith(exclude):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def weights(root: Path) -> dict[str, bytes]:
    """relative path -> bytes of every ``model.safetensors`` under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("model.safetensors"))}


def kill_and_resume_journey(tmp: Path, command: list[str]) -> Path:
    """Run ``command + --out-dir`` uninterrupted; run it again, kill -9 after the first
    checkpoint, rerun it with ``--resume``: the final weights must be byte-identical.
    Returns the uninterrupted run's dir."""
    full, killed = tmp / "full", tmp / "killed"
    ok(*command, "--out-dir", str(full))
    proc = start(*command, "--out-dir", str(killed))
    kill_after_first_checkpoint(proc, killed)
    ok(*command, "--out-dir", str(killed), "--resume")
    expected = weights(full)
    assert expected, "the run wrote no weights"
    assert weights(killed) == expected
    return full


TRAIN_TINY = ["--train.threads", "1", "--train.ckpt-every", "20", "--train.warmup-steps", "10"]

# Size overrides that make a documented command tiny, by its first words ("run alpine").
TINY: dict[str, list[str]] = {
    "generate alpine": ["--nodes", "20", "--p", "0.2", "--paths-per-pair", "2"],
    "generate blocksworld": ["--blocks", "3", "--lines", "200"],
    "generate games": ["--n-games", "2", "--episodes", "10", "--val-games", "1"],
    "generate regression": ["--d", "2", "--k", "5", "--n-prompts", "64"],
    "pretrain path": ["--model.d-model", "16", "--train.steps", "20", "--train.batch-size", "8",
                      *TRAIN_TINY],
    "pretrain regression": ["--data.d", "2", "--data.k", "5", "--model.d-model", "16",
                            "--model.n-layers", "1", "--data.n-eval", "16", "--train.steps", "20",
                            *TRAIN_TINY],
    "pretrain icgp": ["--model.d-model", "16", "--model.n-layers", "1", "--train.steps", "20",
                      "--train.batch-size", "4", *TRAIN_TINY],
    "pretrain supernet": ["--data.d", "2", "--data.k", "4", "--model.d-model", "16",
                          "--model.n-layers", "2", "--model.n-heads", "2", "--model.head-dim",
                          "8", "--train.steps", "20", "--train.threads", "1", "--eval.n-val",
                          "16", "--eval.n-test", "16"],
    "evaluate search": ["--search.population", "3", "--search.top-k", "2",
                        "--search.n-mutations", "1", "--search.n-crossovers", "1",
                        "--search.generations", "1"],
    "evaluate path": ["--eval.n-prompts", "10", "--eval.samples-per-prompt", "1"],
    "evaluate icgp": ["--eval.n-games", "2", "--eval.episodes", "3"],
    "evaluate regression": ["--eval.n-prompts", "16", "--eval.n-boot", "5"],
    "run regression-linear": ["--data.d", "2", "--data.k", "5", "--model.d-model", "16",
                              "--model.n-layers", "1", "--model.n-heads", "1", "--train.steps",
                              "20", "--eval.n-prompts", "16", "--eval.n-boot", "5",
                              "--train.eval-every", "0", *TRAIN_TINY],
    "run regression-families": ["--data.d", "2", "--data.families", "linear", "--model.d-model",
                                "16", "--model.n-layers", "1", "--model.n-heads", "1",
                                "--train.steps", "20", "--family-steps.linear", "20",
                                "--family-steps.decision-tree", "20",
                                "--eval.n-prompts", "16", "--eval.n-boot", "5", *TRAIN_TINY],
    "run icgp-decentralized": ["--data.n-values", "1", "2", "--data.episodes", "4",
                               "--data.trajectories-per-game", "1", "--model.d-model", "8",
                               "--model.n-layers", "1", "--model.n-heads", "2",
                               "--eval.n-games", "2", "--train.steps", "20",
                               "--train.batch-size", "4", "--train.stream-workers", "1",
                               *TRAIN_TINY],
    "run icgp-centralized": ["--data.n-values", "1", "2", "--data.episodes", "3", "--data.H", "2",
                             "--data.S", "2", "--data.A", "3", "--data.B", "3",
                             "--data.chunks", "1", "--data.workers", "1",
                             "--data.context-options", "mwu_iters", "5", "--model.d-model", "8",
                             "--model.n-layers", "1", "--model.n-heads", "2",
                             "--model.read-out-options", "width", "8",
                             "--eval.n-games", "2", "--train.steps", "20",
                             "--train.batch-size", "4", *TRAIN_TINY],
    "run sepnorm-query": ["--n-seeds", "2", "--variants", "sharenorm", "sepnorm", "--data.d", "2",
                          "--data.k", "4", "--model.d-model", "16", "--model.n-layers", "1",
                          "--train.steps", "20", "--train.batch-size", "16",
                          "--eval.n-prompts", "32", *TRAIN_TINY],
    "export history": [],
    "export minari": [],
    "run backbones": ["--n-seeds", "1", "--data.regression.d", "2", "--data.regression.k", "5",
                      "--data.alpine.nodes", "12", "--data.alpine.p", "0.3",
                      "--data.alpine.paths-per-pair", "2", "--data.icgp.episodes", "4",
                      "--data.icgp.n-games", "2", "--data.icgp.trajectories-per-game", "1",
                      "--model.backbones", "gpt", "--model.regression.d-model", "16",
                      "--model.regression.n-layers", "1", "--model.alpine.d-model", "16",
                      "--model.icgp.d-model", "16", "--model.icgp.n-layers", "1",
                      "--model.icgp.n-heads", "2", "--train.regression.steps", "8",
                      "--train.regression.batch-size", "8", "--train.alpine.steps", "6",
                      "--train.alpine.batch-size", "8", "--train.icgp.steps", "6",
                      "--train.icgp.batch-size", "4", "--train.no-isolate", "--train.workers",
                      "1", "--eval.regression.n-eval", "32", "--eval.alpine.n-prompts", "10",
                      "--eval.alpine.samples-per-prompt", "1", "--eval.icgp.eval-games", "2"],
    "run alpine-degrees": ["--graphs", "1", "--workers", "1", "--bootstrap", "100",
                           "--data.nodes", "14", "--data.p", "0.3", "--data.paths-per-pair", "2",
                           "--model.d-model", "16", "--train.steps", "10", "--train.batch-size",
                           "8", "--eval.n-prompts", "10", "--eval.samples-per-prompt", "1",
                           *TRAIN_TINY],
    "run games-baselines": ["--eval.n-games", "1", "--eval.matrix-episodes", "20",
                            "--eval.markov-episodes", "5"],
    "run search": ["--data.d", "2", "--data.k", "4", "--model.d-model", "16",
                   "--model.n-layers", "2", "--model.n-heads", "2", "--model.head-dim", "8",
                   "--train.steps", "20", "--train.threads", "1", "--eval.n-val", "16",
                   "--eval.n-test", "16", "--search.population", "3", "--search.top-k", "2",
                   "--search.n-mutations", "1", "--search.n-crossovers", "1",
                   "--search.generations", "1", "--compare.steps", "4", "--compare.gpt-layers",
                   "1", "--compare.gpt-width", "16"],
}

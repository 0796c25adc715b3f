"""The run lifecycle through the installed ``icarena`` command: generate, pretrain, kill -9,
resume, overwrite, concurrent writers and evaluate, each in subprocesses at tiny sizes.

``make test`` runs one kill-and-resume journey per pretrain route; the full matrix (every
experiment that trains) is marked slow (``make test-all``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_helpers import (
    file_hashes,
    kill_and_resume_journey,
    ok,
    refused,
    snapshot,
    start,
)

TRAIN = ["--train.threads", "1", "--train.ckpt-every", "20", "--train.warmup-steps", "10"]
ALPINE_DATA = ["--nodes", "20", "--p", "0.2", "--paths-per-pair", "3"]


@pytest.fixture(scope="module")
def alpine_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "alpine"
    ok("generate", "alpine", "--out-dir", str(out), *ALPINE_DATA)
    return out


def path_command(data: Path, steps: int = 400) -> list[str]:
    return ["pretrain", "path", "--data", str(data), "--model.d-model", "16", "--train.steps",
            str(steps), "--train.batch-size", "16", *TRAIN]


REGRESSION = ["pretrain", "regression", "--data.d", "2", "--data.k", "5", "--model.d-model", "16",
              "--model.n-layers", "1", "--model.n-heads", "1", "--data.n-eval", "32",
              "--train.steps", "400",
              "--train.batch-size", "16", "--train.eval-every", "0", *TRAIN]
GAMES_DATA = ["--n-games", "2", "--episodes", "10", "--val-games", "0"]


@pytest.fixture(scope="module")
def games_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "games"
    ok("generate", "games", "--out-dir", str(out), *GAMES_DATA)
    return out


def icgp_command(data: Path) -> list[str]:
    return ["pretrain", "icgp", "--data", str(data), "--model.d-model", "16", "--model.n-layers",
            "1", "--model.n-heads", "2", "--train.stream-workers", "2", "--train.steps", "300",
            "--train.batch-size", "4", *TRAIN]


# ------------------------------------------------------------------- kill -9, then --resume
def test_pretrain_path_resumes_after_kill(tmp_path, alpine_data):
    kill_and_resume_journey(tmp_path, path_command(alpine_data))


def test_pretrain_regression_resumes_after_kill(tmp_path):
    kill_and_resume_journey(tmp_path, REGRESSION)


def test_pretrain_icgp_with_stream_workers_resumes_after_kill(tmp_path, games_data):
    """Two spawned stream workers: the kill of the icarena process takes them down too
    (checked in the journey), and a stream without a checkpoint yet starts from step 0.
    Then, on the finished run: a refused resume (another dataset) leaves icgp.json (and
    everything else) as it was, and evaluate writes only RUN/eval."""
    command = icgp_command(games_data)
    run = kill_and_resume_journey(tmp_path, command)
    other = tmp_path / "other-data"
    ok("generate", "games", "--out-dir", str(other), *GAMES_DATA, "--A", "4")
    before = snapshot(tmp_path)
    assert "icgp.json differs" in refused(*icgp_command(other), "--out-dir", str(run),
                                          "--resume")
    assert snapshot(tmp_path) == before
    hashes = file_hashes(run)
    ok("evaluate", "icgp", "--run-dir", str(run), "--eval.n-games", "2", "--eval.episodes", "3")
    assert file_hashes(run, exclude=("eval",)) == hashes
    assert (run / "eval" / "metrics.json").is_file()


def test_resume_a_finished_run_with_more_steps_trains_the_extra_steps(tmp_path, alpine_data):
    out = tmp_path / "r"
    ok(*path_command(alpine_data, steps=40), "--out-dir", str(out))
    ok(*path_command(alpine_data, steps=60), "--out-dir", str(out), "--resume")
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["steps"] == 60
    import torch

    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 60


def test_resume_refusals_name_the_problem_and_leave_the_disk(tmp_path, alpine_data):
    out = tmp_path / "r"
    ok(*path_command(alpine_data, steps=40), "--out-dir", str(out))
    before = snapshot(tmp_path)
    line = refused(*path_command(alpine_data, steps=40), "--train.lr", "0.01", "--out-dir",
                   str(out), "--resume")
    assert "train.lr: 0.001 -> 0.01" in line
    assert "already holds a run" in refused(*path_command(alpine_data, steps=40), "--out-dir",
                                            str(out))
    assert "nothing to resume" in refused(*path_command(alpine_data), "--out-dir",
                                          str(tmp_path / "missing"), "--resume")
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------- --overwrite
@pytest.mark.parametrize("target_kind", ["user_dir", "plain_file"])
def test_overwrite_refuses_what_is_not_icarena_output(tmp_path, alpine_data, target_kind):
    target = tmp_path / "target"
    if target_kind == "user_dir":
        target.mkdir()
        (target / "thesis.tex").write_text("months of work")
        (target / "sub").mkdir()
        (target / "sub" / "data.csv").write_text("1,2,3")
    else:
        target.write_text("a plain file")
    before = snapshot(tmp_path)
    for command in (["generate", "alpine", *ALPINE_DATA],
                    path_command(alpine_data, steps=20),
                    ["run", "games-baselines", "--eval.n-games", "1"]):
        line = refused(*command, "--out-dir", str(target), "--overwrite")
        assert "refusing" in line and str(target) in line
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_an_icarena_run(tmp_path, alpine_data):
    out = tmp_path / "r"
    ok(*path_command(alpine_data, steps=20), "--out-dir", str(out))
    ok(*path_command(alpine_data, steps=30), "--out-dir", str(out), "--overwrite")
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 30
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no moved-aside leftovers


# ------------------------------------------------------------------- concurrent writers
def _race(commands: list[list[str]]) -> list[tuple[int, str]]:
    procs = [start(*c) for c in commands]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        results.append((p.returncode, err))
    return results


def _one_wins(results: list[tuple[int, str]]) -> None:
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2).strip().splitlines()
    assert len(loser) == 1 and loser[0].startswith("icarena: error: "), loser


def test_concurrent_generates_into_one_target(tmp_path):
    target = str(tmp_path / "d")
    command = ["generate", "alpine", "--out-dir", target, "--nodes", "60", "--p", "0.2"]
    _one_wins(_race([command, command]))
    ok("pretrain", "path", "--data", target, "--out-dir", str(tmp_path / "r"), "--model.d-model",
       "8", "--train.steps", "2", *TRAIN)  # the survivor loads


def test_concurrent_pretrains_into_one_out_dir(tmp_path, alpine_data):
    out = str(tmp_path / "r")
    command = [*path_command(alpine_data, steps=300), "--out-dir", out]
    _one_wins(_race([command, command]))
    ok("evaluate", "path", "--run-dir", out, "--eval.n-prompts", "10",
       "--eval.samples-per-prompt", "1")  # the survivor loads and evaluates


def test_a_lock_left_by_a_killed_writer_does_not_block(tmp_path, alpine_data):
    out = tmp_path / "r"
    proc = start(*path_command(alpine_data, steps=2000), "--out-dir", str(out))
    while not (out / ".icarena-run").exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    ok(*path_command(alpine_data, steps=20), "--out-dir", str(out), "--overwrite")


# ------------------------------------------------------------------- evaluate
def test_evaluate_never_changes_training_artefacts(tmp_path, alpine_data):
    run = tmp_path / "alpine"
    ok("run", "alpine", "--out-dir", str(run), "--data.nodes", "20", "--data.p", "0.2",
       "--data.paths-per-pair", "3", "--model.d-model", "16", "--train.steps", "20",
       "--train.eval-every", "10", "--eval.n-prompts", "10",
       "--eval.samples-per-prompt", "1", *TRAIN)
    before = file_hashes(run)
    ok("evaluate", "path", "--run-dir", str(run), "--eval.n-prompts", "10",
       "--eval.samples-per-prompt", "1")
    assert file_hashes(run, exclude=("eval",)) == before
    assert (run / "eval" / "metrics.json").is_file() and (run / "eval" / "report.md").is_file()
    assert "--overwrite" in refused("evaluate", "path", "--run-dir", str(run))
    ok("evaluate", "path", "--run-dir", str(run), "--overwrite", "--eval.n-prompts", "10",
       "--eval.samples-per-prompt", "1")


def test_evaluate_refuses_a_dataset_the_run_was_not_trained_on(tmp_path, alpine_data):
    run = tmp_path / "r"
    ok(*path_command(alpine_data, steps=10), "--out-dir", str(run))
    other = tmp_path / "other"
    ok("generate", "alpine", "--out-dir", str(other), *ALPINE_DATA, "--seed", "1")
    assert "manifest hashes differ" in refused("evaluate", "path", "--run-dir", str(run),
                                               "--data", str(other))


# ------------------------------------------------------------------- every experiment (slow)
EXPERIMENTS = {
    "regression-linear": ["--data.d", "2", "--data.k", "5", "--model.d-model", "16",
                          "--model.n-layers", "1", "--model.n-heads", "1", "--train.steps", "400",
                          "--eval.n-prompts", "32", "--eval.n-boot", "10",
                          "--train.eval-every", "0", *TRAIN],
    "regression-families": ["--data.d", "2", "--train.steps", "100", "--eval.n-prompts", "16",
                            "--eval.n-boot", "10", "--family-steps.sparse-linear", "100",
                            "--family-steps.linear", "100", "--family-steps.decision-tree", "100",
                            "--family-batch-size.sparse-linear", "16", *TRAIN],
    "regression-rate": ["--data.log2-n-min", "5", "--data.log2-n-max", "6", "--train.steps",
                        "200", "--train.eval-every", "20", "--eval.n-test", "100",
                        "--data.cases", "1", "1.0", *TRAIN],
    "alpine": ["--data.nodes", "20", "--data.p", "0.2", "--data.paths-per-pair", "3",
               "--model.d-model", "16", "--train.steps", "300", "--train.eval-every", "100",
               "--eval.n-prompts", "10", "--eval.samples-per-prompt", "1", *TRAIN],
    "alpine-degrees": ["--graphs", "1", "--train-fractions", "0.5", "--workers", "1",
                       "--bootstrap", "100", "--data.nodes", "20", "--data.p", "0.2",
                       "--data.paths-per-pair", "3", "--model.d-model", "16", "--train.steps",
                       "300", "--train.eval-every", "100", "--eval.n-prompts", "10",
                       "--eval.samples-per-prompt", "1", *TRAIN],
    "blocksworld": ["--model.widths", "16", "--data.blocks", "3", "--data.lines", "300",
                    "--train.steps", "300", "--train.eval-every", "100",
                    "--eval.n-prompts", "10", "--eval.samples-per-prompt", "1", *TRAIN],
    "icgp-decentralized": ["--data.n-values", "2", "--data.episodes", "10", "--model.d-model",
                           "16", "--model.n-layers", "1", "--eval.n-games", "2",
                           "--train.steps", "300", "--train.batch-size", "4", *TRAIN],
    "icgp-centralized": ["--data.n-values", "2", "--data.episodes", "4", "--model.d-model", "16",
                         "--model.n-layers", "1", "--eval.n-games", "2", "--data.workers", "1",
                         "--data.context-options", "mwu_iters", "5",
                         "--model.read-out-options", "width", "8",
                         "--train.steps", "300", "--train.batch-size", "4", *TRAIN],
    "sepnorm-query": ["--n-seeds", "2", "--variants", "sharenorm", "sepnorm", "--data.d", "2",
                      "--data.k", "4", "--model.d-model", "16", "--model.n-layers", "1",
                      "--train.steps", "200", "--train.batch-size", "16", "--eval.n-prompts",
                      "32", *TRAIN],
    "backbones": ["--model.backbones", "gpt", "--data.tasks", "regression",
                  "--train.no-isolate", "--train.regression.steps", "400",
                  "--model.regression.d-model", "16", "--model.regression.n-layers", "1",
                  "--eval.regression.n-eval", "32", "--train.threads", "1"],
}
SEARCH = ["search", "--data.d", "2", "--data.k", "4", "--model.d-model", "16",
          "--model.n-layers", "2", "--model.n-heads", "2", "--model.head-dim", "8",
          "--train.steps", "400", "--eval.n-val", "16", "--eval.n-test", "16",
          "--search.population", "4", "--search.top-k", "2", "--search.n-mutations", "1",
          "--search.n-crossovers", "1", "--search.generations", "1", "--train.threads", "1",
          "--train.retrain-steps", "40", "--compare.steps", "40", "--compare.gpt-layers", "1",
          "--compare.gpt-width", "16"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_training_experiment_resumes_after_kill(tmp_path, name):
    kill_and_resume_journey(tmp_path, ["run", name, *EXPERIMENTS[name]])


@pytest.mark.slow
def test_supernet_search_resumes_after_kill(tmp_path):
    kill_and_resume_journey(tmp_path, SEARCH)


@pytest.mark.slow
def test_alpine_degrees_parallel_cells_die_with_the_command_and_resume(tmp_path):
    # --workers 2: the cells run in spawned processes; a kill -9 of icarena leaves none running
    args = list(EXPERIMENTS["alpine-degrees"])
    args[args.index("--workers") + 1] = "2"
    kill_and_resume_journey(tmp_path, ["run", "alpine-degrees", *args])

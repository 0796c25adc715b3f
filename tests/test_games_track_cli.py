"""The games track through the installed ``icarena`` command: ``generate games`` (the one producer
of ICGP data, its bytes independent of --workers) -> ``pretrain icgp --data D`` (reads only D and
records its manifest hash) -> ``evaluate icgp --run R`` (checks that hash)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import TINY, ok, refused

GAMES = ["--setting", "centralized", "--n-games", "3", "--episodes", "3",
         "--trajectories-per-game", "2", "--val-games", "1", "--chunks", "3",
         "--context-options", "mwu_iters", "5"]
PRETRAIN = ["--model.d-model", "8", "--model.n-layers", "1", "--model.n-heads", "2",
            "--train.steps", "4", "--train.batch-size", "2", "--train.warmup-steps", "1",
            "--train.ckpt-every", "4", "--train.threads", "1"]
EVAL = ["--eval.n-games", "2", "--eval.episodes", "2"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_generate_games_bytes_do_not_depend_on_workers(tmp_path):
    ok("generate", "games", *GAMES, "--out-dir", str(tmp_path / "w1"), "--workers", "1")
    ok("generate", "games", *GAMES, "--out-dir", str(tmp_path / "w2"), "--workers", "2")
    one, two = tree_bytes(tmp_path / "w1"), tree_bytes(tmp_path / "w2")
    assert "manifest.json" in one and one == two


def test_pretrain_reads_only_its_dataset_and_evaluate_checks_it(tmp_path):
    data, run = tmp_path / "games", tmp_path / "run"
    ok("generate", "games", *GAMES, "--out-dir", str(data))
    ok("pretrain", "icgp", "--data", str(data), "--out-dir", str(run), *PRETRAIN)
    manifest = json.loads((data / "manifest.json").read_text())
    config = json.loads((run / "config.json").read_text())
    import hashlib

    sha = hashlib.sha256((data / "manifest.json").read_bytes()).hexdigest()
    assert config["dataset"]["manifest_sha256"] == sha
    assert config["dataset"]["generator"] == "games"
    # the settings that come from the data are the manifest's, not flags
    meta = json.loads((run / "icgp.json").read_text())
    assert (meta["setting"], meta["H"], meta["S"], meta["episodes"], meta["context"]) == (
        "centralized", manifest["config"]["H"], manifest["config"]["S"], 3, "viulcb")
    assert meta["context_cfg"] == {"mwu_iters": 5}
    ok("evaluate", "icgp", "--run-dir", str(run), *EVAL)
    # a moved dataset is found with --data; its hash is still checked
    moved = tmp_path / "moved"
    shutil.move(str(data), str(moved))
    assert "cannot find the dataset" in refused("evaluate", "icgp", "--run-dir", str(run),
                                                *EVAL, "--overwrite")
    ok("evaluate", "icgp", "--run-dir", str(run), "--data", str(moved), *EVAL, "--overwrite")
    # the dataset replaced by another one (another seed): evaluate refuses the run
    ok("generate", "games", *GAMES, "--out-dir", str(moved), "--seed", "1", "--overwrite")
    before = tree_bytes(run)
    err = refused("evaluate", "icgp", "--run-dir", str(run), "--data", str(moved), *EVAL,
                  "--overwrite")
    assert "manifest hashes differ" in err and err.count("\n") <= 1
    assert tree_bytes(run) == before
    # and a resume on the replaced dataset is refused too
    assert "another dataset" in refused("pretrain", "icgp", "--data", str(moved), "--out-dir",
                                        str(run), *PRETRAIN, "--resume")


def test_pretrain_refuses_what_is_not_a_games_dataset(tmp_path):
    ok("generate", "alpine", *TINY["generate alpine"], "--out-dir", str(tmp_path / "alpine"))
    err = refused("pretrain", "icgp", "--data", str(tmp_path / "alpine"), "--out-dir",
                  str(tmp_path / "r"), *PRETRAIN)
    assert "not 'games'" in err and err.count("\n") <= 1
    assert "no dataset" in refused("pretrain", "icgp", "--data", str(tmp_path / "none"),
                                   "--out-dir", str(tmp_path / "r"), *PRETRAIN)
    assert not (tmp_path / "r").exists()


def test_experiment_refuses_a_bad_model_before_generating_data(tmp_path):
    out = tmp_path / "cen"
    err = refused("run", "icgp-centralized", "--out-dir", str(out), "--model.embedding", "concat")
    assert "--model.embedding slot" in err
    assert not (out / "data").exists()
    err = refused("run", "icgp-decentralized", "--out-dir", str(tmp_path / "dec"),
                  "--train.positions", "-1")
    assert "train.positions" in err and not (tmp_path / "dec" / "data").exists()


def test_evaluate_averages_play_draws(tmp_path):
    """--eval.plays R: each game's gaps are the mean of R draws with play seeds p .. p + R - 1,
    the same numbers as R one-draw evaluations averaged by hand."""
    data, run = tmp_path / "games", tmp_path / "run"
    ok("generate", "games", *GAMES, "--out-dir", str(data))
    ok("pretrain", "icgp", "--data", str(data), "--out-dir", str(run), *PRETRAIN)
    curves = {}
    for name, args in (("p3", ["--eval.play-seed", "3"]), ("p4", ["--eval.play-seed", "4"]),
                       ("both", ["--eval.play-seed", "3", "--eval.plays", "2"])):
        ok("evaluate", "icgp", "--run-dir", str(run), *EVAL, *args, "--out-dir",
           str(tmp_path / name))
        curves[name] = json.loads((tmp_path / name / "icgp_eval.json").read_text())
    assert curves["both"]["plays"] == 2 and curves["p3"]["plays"] == 1
    for key, mean in curves["both"]["mean_curves"].items():
        by_hand = [(a + b) / 2 for a, b in zip(curves["p3"]["mean_curves"][key],
                                               curves["p4"]["mean_curves"][key], strict=True)]
        assert mean == pytest.approx(by_hand, rel=1e-12, abs=1e-15), key
    assert curves["p3"]["mean_curves"] != curves["p4"]["mean_curves"]  # the draws differ
    assert "--eval.plays" in refused("evaluate", "icgp", "--run-dir", str(run), *EVAL,
                                     "--eval.plays", "0", "--out-dir", str(tmp_path / "zero"))
    # one torch thread (for evaluations sharing the cores) plays the same games to the same gaps
    ok("evaluate", "icgp", "--run-dir", str(run), *EVAL, "--eval.play-seed", "3", "--threads",
       "1", "--out-dir", str(tmp_path / "one-thread"))
    one = json.loads((tmp_path / "one-thread" / "icgp_eval.json").read_text())["mean_curves"]
    for key, curve in curves["p3"]["mean_curves"].items():
        assert one[key] == pytest.approx(curve, rel=1e-6, abs=1e-9), key
    assert "--threads" in refused("evaluate", "icgp", "--run-dir", str(run), *EVAL, "--threads",
                                  "-1", "--out-dir", str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()

"""The supernet-search track through the installed ``icarena`` command: ``pretrain supernet``
then ``evaluate search``, and ``evaluate search`` on the supernet of ``run search``."""

from __future__ import annotations

import json

from cli_helpers import TINY, file_hashes, ok, refused


def test_pretrain_supernet_then_evaluate_search_writes_only_its_own_dir(tmp_path):
    run = tmp_path / "sn"
    ok("pretrain", "supernet", "--out-dir", str(run), *TINY["pretrain supernet"])
    assert (run / "model.safetensors").is_file() and (run / "ckpt.pt").is_file()
    hashes = file_hashes(run)
    ok("evaluate", "search", "--run-dir", str(run), *TINY["evaluate search"])
    assert file_hashes(run, exclude=("eval",)) == hashes  # the run's files are untouched
    res = json.loads((run / "eval" / "search.json").read_text())
    assert res["extract_max_abs_diff"] <= 1e-5
    assert (run / "eval" / "winner" / "model.safetensors").is_file()
    # a second evaluation into the same dir is refused unless --overwrite
    assert "overwrite" in refused("evaluate", "search", "--run-dir", str(run),
                                  *TINY["evaluate search"])
    ok("evaluate", "search", "--run-dir", str(run), "--overwrite", *TINY["evaluate search"])


def test_evaluate_search_repeats_the_search_of_run_search(tmp_path):
    run = tmp_path / "s"
    ok("run", "search", "--out-dir", str(run), *TINY["run search"])
    ok("evaluate", "search", "--run-dir", str(run / "supernet"), *TINY["evaluate search"])
    first = json.loads((run / "search.json").read_text())
    again = json.loads((run / "supernet" / "eval" / "search.json").read_text())
    for key in ("best", "best_val_loss", "random_best", "test_err", "history"):
        assert again[key] == first[key], key


def test_evaluate_search_refuses_a_run_that_is_not_a_supernet(tmp_path):
    run = tmp_path / "r"
    ok("pretrain", "regression", "--out-dir", str(run), *TINY["pretrain regression"])
    assert "not a supernet" in refused("evaluate", "search", "--run-dir", str(run))

"""icarena.lifecycle: what a target is, claims, re-entrant locks, and a failed replacement."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from icarena import lifecycle as lc
from icarena.errors import CheckpointError


def test_state_of_every_kind(tmp_path):
    assert lc.state_of(tmp_path / "none") == "missing"
    (tmp_path / "empty").mkdir()
    assert lc.state_of(tmp_path / "empty") == "empty"
    (tmp_path / "f").write_text("x")
    assert lc.state_of(tmp_path / "f") == "file"
    assert lc.state_of(tmp_path / "f" / "below") == "file"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    assert lc.state_of(tmp_path / "mine") == "foreign"
    (tmp_path / "mine" / "manifest.json").write_text("[1, 2]")  # not an icarena manifest
    assert lc.state_of(tmp_path / "mine") == "foreign"
    lc.mark_run(tmp_path / "run")
    assert lc.state_of(tmp_path / "run") == "run"


def test_claims_nest_and_a_second_process_is_refused(tmp_path):
    target = tmp_path / "run"
    code = textwrap.dedent(f"""
        import sys
        from icarena.lifecycle import BusyError, claim_run
        try:
            with claim_run({str(target)!r}, resume=True):
                pass
        except BusyError as e:
            print(e); sys.exit(3)
    """)
    with lc.claim_run(target) as mode:
        assert mode == "create" and (target / lc.RUN_MARKER).is_file()
        with lc.claim_run(target, resume=True) as inner:  # the Trainer inside an experiment
            assert inner == "resume"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3 and "is writing" in proc.stdout
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # released


def test_a_failed_replacement_puts_the_old_run_back(tmp_path):
    target = tmp_path / "run"
    lc.mark_run(target)
    (target / "ckpt.pt").write_bytes(b"old")
    with pytest.raises(RuntimeError), lc.claim_run(target, overwrite=True) as mode:
        assert mode == "replace" and not (target / "ckpt.pt").exists()
        raise RuntimeError("the new run fails before its first checkpoint")
    assert (target / "ckpt.pt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refusals_name_the_flag(tmp_path):
    lc.mark_run(tmp_path / "run")
    with pytest.raises(CheckpointError, match="pass resume to continue it, overwrite") as e:
        lc.check_run_target(tmp_path / "run")
    assert "pass --resume to continue it, --overwrite" in e.value.cli_message()
    with pytest.raises(CheckpointError, match="not both"):
        lc.check_run_target(tmp_path / "run", overwrite=True, resume=True)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        lc.check_run_target(tmp_path / "none", resume=True)
    assert lc.check_run_target(tmp_path / "none", resume=True, require_existing=False) == "resume"


def test_a_failed_start_in_an_empty_dir_leaves_it_empty(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    with pytest.raises(RuntimeError), lc.claim_run(target):
        raise RuntimeError("fails before any checkpoint")
    assert target.is_dir() and not any(target.iterdir())

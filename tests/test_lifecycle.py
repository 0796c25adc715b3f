"""icarena.lifecycle: what a target is, claims, re-entrant locks, and a failed replacement."""

from __future__ import annotations

import os
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


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_claim_sweeps_what_killed_writers_left(tmp_path):
    target = tmp_path / "run"
    with lc.claim_run(target):
        (target / "ckpt.pt").write_bytes(b"x")
    # what kill -9 leaves: temp files of atomic writes (inside and beside the run), a staging
    # dir of a dataset, and the old run an --overwrite had moved aside
    leftovers = [target / ".ckpt.pt.ab12cd_e.tmp", target / "d30" / ".config.json.zz99yy88.tmp",
                 tmp_path / ".run.q1w2e3r4.tmp", tmp_path / f".run.replaced-{_dead_pid()}"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.mkdir() if "replaced" in p.name or p.parent == tmp_path else p.write_bytes(b"half")
    mine = [tmp_path / "run.json", tmp_path / ".run.notes", target / ".hidden.tmp",
            tmp_path / f".run.replaced-{os.getpid()}"]  # user files and a live replacement
    for p in mine:
        p.write_text("keep") if "replaced" not in p.name else p.mkdir()
    with lc.claim_run(target, resume=True) as mode:
        assert mode == "resume"
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in mine) and (target / "ckpt.pt").read_bytes() == b"x"


def test_the_sweep_spares_a_directory_another_process_is_writing(tmp_path):
    target = tmp_path / "run"
    with lc.claim_run(target):
        pass
    busy = target / "eval"
    busy.mkdir()
    tmp = busy / ".metrics.json.a1b2c3d4.tmp"
    tmp.write_text("being written")
    code = textwrap.dedent(f"""
        import sys, time
        from icarena.lifecycle import locked
        with locked({str(busy)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with lc.claim_run(target, resume=True):
            pass
        assert tmp.exists()  # evaluate's file in flight is not touched
    finally:
        proc.communicate("\n", timeout=30)
    with lc.claim_run(target, resume=True):
        pass
    assert not tmp.exists()  # once no one holds it, it is a leftover

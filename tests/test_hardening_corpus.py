"""Every case of the hardening corpus (tests/hardening_cases.py): a refusal exits 2 within 5 s
with exactly one ``icarena: error:`` line and leaves the disk byte-identical; an accepted case
finishes within 30 s with finite outputs. Commands run in-process through ``icarena.cli.main``."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hardening_cases import CASES, TINY_ALPINE, TINY_PATH, Case, alarm

from icarena.cli import main
from icarena.errors import IcarenaError

REFUSE_S, ACCEPT_S = 5.0, 30.0


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny alpine dataset ``d`` and a tiny path run ``r`` trained on it."""
    root = tmp_path_factory.mktemp("hardening_base")
    assert main(["generate", "alpine", *TINY_ALPINE, "--out-dir", str(root / "d")]) == 0
    assert main(["pretrain", "path", "--data", str(root / "d"), "--out-dir", str(root / "r"),
                 *TINY_PATH]) == 0
    return root


def tree(root: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every path under ``root`` (symlinks not followed) with its kind, bytes and mode."""
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(p.stat().st_mode))
            else:
                out[rel] = ("file", p.read_bytes())
    return out


def assert_finite(root: Path, before: dict) -> None:
    """Every new or changed .json / .npy under ``root`` holds finite numbers only."""
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if not p.is_file() or p.is_symlink() or before.get(rel) == ("file", p.read_bytes()):
            continue
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
            if arr.dtype.kind in "fc":
                assert np.isfinite(arr).all(), f"{rel} holds non-finite values"
        elif p.suffix == ".json":
            text = p.read_text()
            assert "NaN" not in text and "Infinity" not in text, f"{rel} holds NaN/inf"
            json.loads(text)


def run_case(case: Case, T: Path, base: Path, capsys: pytest.CaptureFixture,
             monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(base / "d", T / "d")
    shutil.copytree(base / "r", T / "r")
    if case.setup is not None:
        case.setup(T)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(T)
    before = tree(T)
    capsys.readouterr()
    t0 = time.perf_counter()
    with alarm(60):
        if case.call is not None:
            try:
                case.call(T)
                rc, err = 0, ""
            except IcarenaError as e:
                rc, err = 2, f"icarena: error: {e}\n"
        else:
            argv = [a.replace("{D}", str(T / "d")).replace("{R}", str(T / "r"))
                    .replace("{T}", str(T)) for a in case.argv]
            try:
                rc = main(argv)
            except SystemExit as e:  # tyro's --help/parse exits
                rc = e.code if isinstance(e.code, int) else 1
            err = capsys.readouterr().err
    elapsed = time.perf_counter() - t0
    if case.expect == "refuse":
        lines = err.strip().splitlines()
        assert rc == 2, f"{case.name}: exit {rc}, stderr:\n{err[-2000:]}"
        assert len(lines) == 1 and lines[0].startswith("icarena: error: "), (
            f"{case.name}: not one error line:\n{err[-2000:]}")
        for word in case.says:
            assert word in lines[0], f"{case.name}: {word!r} not in {lines[0]!r}"
        assert elapsed < REFUSE_S, f"{case.name}: refused after {elapsed:.1f} s"
        assert tree(T) == before, f"{case.name}: the disk changed"
    else:
        assert rc == 0, f"{case.name}: exit {rc}, stderr:\n{err[-2000:]}"
        assert elapsed < ACCEPT_S, f"{case.name}: took {elapsed:.1f} s"
        assert_finite(T, before)


@pytest.mark.parametrize("case", CASES, ids=[f"g{c.group}-{c.name}" for c in CASES])
def test_corpus_case(case: Case, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, tmp_path, base, capsys, monkeypatch)


def test_corpus_covers_every_group() -> None:
    groups = {c.group for c in CASES if c.expect == "refuse"}
    assert groups == {1, 2, 3, 4, 5}
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert math.isfinite(REFUSE_S)

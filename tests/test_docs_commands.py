"""Every command shown in README.md and docs/**.md runs: each line of a code block that starts
with ``icarena `` is run verbatim through the installed command (in a scratch directory, in the
order of its file), with only the size overrides of ``cli_helpers.TINY`` appended."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from cli_helpers import TINY, icarena

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CHEAP = ("--help", "list", "report")  # report reads metrics files, it trains nothing
OPTIONAL = {"export minari": "minari"}  # documented commands that need an optional extra


def documented_commands(path: Path) -> list[list[str]]:
    """argv of every ``icarena ...`` line inside the file's fenced code blocks."""
    commands, in_block = [], False
    for line in path.read_text().splitlines():
        if re.match(r"^\s*```", line):
            in_block = not in_block
            continue
        if in_block and line.strip().startswith("icarena "):
            commands.append(shlex.split(line, comments=True))
    return commands


def with_overrides(argv: list[str]) -> list[str]:
    args = argv[1:]
    if any(a in CHEAP for a in args[:3]) or "--help" in args:
        return args
    key = " ".join(args[:2])
    assert key in TINY, f"no size overrides for `icarena {key}`: add them to cli_helpers.TINY"
    return [*args, *TINY[key]]


@pytest.mark.parametrize("doc", [d for d in DOCS if documented_commands(d)],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_every_documented_command_runs(doc, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))  # not the user's
    for argv in documented_commands(doc):
        extra = OPTIONAL.get(" ".join(argv[1:3]))
        if extra and importlib.util.find_spec(extra) is None:
            continue  # its optional extra is not installed (the CI installs none)
        args = with_overrides(argv)
        proc = icarena(*args, cwd=tmp_path)
        assert proc.returncode == 0, f"`{' '.join(argv)}` failed:\n{proc.stderr[-2000:]}"


def test_the_readme_shows_commands():
    assert len(documented_commands(ROOT / "README.md")) >= 5

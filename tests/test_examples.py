"""Every script in docs/examples runs (tiny sizes via ICARENA_EXAMPLE_STEPS), uses only names
exported at package level, and is at most 20 lines."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENVS = ("icarena.envs.games", "icarena.envs.planning", "icarena.envs.regression")
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "docs" / "examples").glob("*.py"))


def test_there_is_one_example_per_library_track():
    assert {p.stem for p in EXAMPLES} >= {"games", "paths", "regression"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_short_and_uses_package_level_names(script):
    text = script.read_text()
    assert len(text.splitlines()) <= 20, f"{script.name} has more than 20 lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("icarena"):
            mod = importlib.import_module(node.module)
            assert node.module.count(".") <= 1 or node.module in ENVS, \
                f"{script.name} imports from a submodule: {node.module}"
            for a in node.names:
                assert a.name in getattr(mod, "__all__", ()), f"{node.module}.{a.name}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    env = dict(os.environ, ICARENA_EXAMPLE_STEPS="12", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| transformer |" in proc.stdout  # the comparison table was printed
    assert any((tmp_path / "runs").rglob("model.safetensors"))

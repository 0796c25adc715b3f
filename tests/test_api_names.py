"""Every ``icarena.`` name that README.md and docs/ (pages and example scripts) use is exported
where they name it and has a docstring; the package-level ``__all__`` lists are complete."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "docs" / "examples").glob("*.py"))]
NAME = re.compile(r"\bicarena(?:\.[A-Za-z_]\w*)+")


def used_names() -> set[str]:
    """Dotted ``icarena.x.y`` names in the docs, and ``from icarena.x import y`` imports of the
    Python code (blocks of the pages, the example scripts)."""
    names: set[str] = set()
    for path in DOCS:
        text = path.read_text()
        names |= {m.group(0) for m in NAME.finditer(text)
                  if text[m.start() - 1 : m.start()] not in "\"'"}  # not entry-point groups
        sources = [text] if path.suffix == ".py" else re.findall(
            r"```python\n(.*?)```", text, flags=re.S)
        for src in sources:
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("icarena"):
                    names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if not n.endswith((".md", ".py", ".json", ".png"))}


def resolve(dotted: str) -> tuple[object, object, str]:
    """(parent object, object, attribute name) of ``icarena.a.b.c``: the longest importable
    module prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        parent, attr = None, parts[i - 1]
        for name in parts[i:]:
            parent, attr = obj, name
            assert hasattr(obj, name), f"{dotted}: {'.'.join(parts[:i])} has no {name!r}"
            obj = getattr(obj, name)
        return parent, obj, attr
    raise AssertionError(f"{dotted}: no importable module")


def documented(obj: object) -> bool:
    if inspect.isclass(obj):
        return bool((vars(obj).get("__doc__") or "").strip())
    if inspect.ismodule(obj) or callable(obj):
        return bool((getattr(obj, "__doc__", None) or "").strip())
    return True  # constants and type aliases are described where they are defined


@pytest.mark.parametrize("dotted", sorted(used_names()))
def test_every_documented_name_is_exported_and_documented(dotted):
    parent, obj, attr = resolve(dotted)
    if inspect.ismodule(parent) and hasattr(parent, "__all__") and not inspect.ismodule(obj):
        assert attr in parent.__all__, f"{dotted} is used in the docs but not in __all__"
    assert documented(obj), f"{dotted} has no docstring"


@pytest.mark.parametrize("package", ["icarena.pretraining", "icarena.agents",
                                     "icarena.evaluation"])
def test_package_exports_are_complete_and_documented(package):
    mod = importlib.import_module(package)
    assert len(set(mod.__all__)) == len(mod.__all__), f"{package}.__all__ repeats a name"
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert documented(obj), f"{package}.{name} has no docstring"
    public = {n for n, v in vars(mod).items()
              if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"}
    assert public <= set(mod.__all__), f"{package} exports names missing from __all__: " \
                                       f"{sorted(public - set(mod.__all__))}"


def test_the_docs_use_the_new_library_names():
    """A guard against an empty scan: the API page names the track entry points."""
    names = used_names()
    for n in ("icarena.pretraining.train_planner", "icarena.pretraining.train_regressor",
              "icarena.evaluation.evaluate_planners", "icarena.evaluation.evaluate_regressors"):
        assert any(u.startswith(n) for u in names), n

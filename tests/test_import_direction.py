"""Imports run one way: (errors, version, lifecycle, limits, lazy, plugins) -> envs -> agents ->
pretraining -> evaluation -> exports -> experiments -> cli. Every import is scanned, including
imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import icarena

PACKAGE = Path(icarena.__file__).parent
LAYERS = ["errors", "version", "lifecycle", "limits", "lazy", "plugins", "envs", "agents",
          "pretraining", "evaluation", "exports", "experiments", "cli"]
# shared helpers below envs
LEAVES = {"errors", "version", "lifecycle", "limits", "lazy", "plugins"}


def layer(module: str) -> int | None:
    """Layer index of an ``icarena.x...`` module name (None: the package itself or not ours)."""
    parts = module.split(".")
    if parts[0] != "icarena" or len(parts) < 2:
        return None
    return 0 if parts[1] in LEAVES else LAYERS.index(parts[1])


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "icarena":  # from icarena import envs, ...
                out += [(node.lineno, f"icarena.{a.name}") for a in node.names
                        if a.name != "__version__"]
            else:
                out.append((node.lineno, node.module))
    return out


def test_every_import_points_down_or_sideways():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        own = layer(module)
        if own is None:
            continue
        for line, target in imports_of(path):
            theirs = layer(target)
            if theirs is not None and theirs > own:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_leaves_import_no_other_icarena_layer():
    for name in LEAVES:
        path = PACKAGE / f"{name}.py"
        for line, target in imports_of(path):
            theirs = layer(target)
            assert theirs in (None, 0), f"{name}.py:{line} imports {target}"

"""Package exports loaded on first use (PEP 562), so that importing one submodule (a dataset
generator, say) does not import torch and every track through its package's ``__init__``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """The module-level ``(__getattr__, __dir__)`` of ``package``: ``exports`` maps each public
    name to the module defining it (or to the submodule of that name); a name is imported when
    first read and then cached in ``namespace`` (the package's ``globals()``)."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod = importlib.import_module(module)
        value = mod if module == f"{package}.{name}" else getattr(mod, name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_

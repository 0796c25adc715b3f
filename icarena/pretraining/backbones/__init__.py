"""Backbone registry: ``available()`` lists the names, ``build(name, **cfg)`` makes one.

Adding a backbone = one module here + one line in ``_MODULES``. Each module decorates its class
with :func:`register`, giving the config dataclass and a one-line description. Another installed
package adds one through the ``icarena.backbones`` entry-point group (:mod:`icarena.plugins`):
its module, imported on first use, registers the backbone the same way.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from icarena.errors import ConfigError
from icarena.pretraining.backbones.base import Backbone, BackboneConfig

# name -> module that registers it (imported lazily so a broken optional module is isolated).
_MODULES: dict[str, str] = {
    "gpt": "icarena.pretraining.backbones.gpt",
    "linear": "icarena.pretraining.backbones.linear",
    "local_global": "icarena.pretraining.backbones.local_global",
    "sepnorm": "icarena.pretraining.backbones.sepnorm",
    "bixt": "icarena.pretraining.backbones.bixt",
    "sympformer": "icarena.pretraining.backbones.sympformer",
    "supernet": "icarena.pretraining.backbones.supernet",
}

_REGISTRY: dict[str, tuple[type[Backbone], type[BackboneConfig], str]] = {}
_PLUGINS: dict[str, str] | None = None  # name -> module of the plugin backbones, read lazily


def _modules() -> dict[str, str]:
    global _PLUGINS
    if _PLUGINS is None:
        from icarena import plugins

        _PLUGINS = plugins.modules("icarena.backbones", _MODULES)
    return {**_MODULES, **_PLUGINS}


def register(
    name: str, config_cls: type[BackboneConfig], help: str
) -> Callable[[type[Backbone]], type[Backbone]]:
    """Class decorator: register ``cls`` as backbone ``name`` built from ``config_cls``."""

    def wrap(cls: type[Backbone]) -> type[Backbone]:
        _REGISTRY[name] = (cls, config_cls, help)
        return cls

    return wrap


def _load(name: str) -> tuple[type[Backbone], type[BackboneConfig], str]:
    modules = _modules()
    if name not in modules:
        raise ConfigError(
            f"unknown backbone {name!r}; available: {', '.join(available())}"
        )
    if name not in _REGISTRY:
        importlib.import_module(modules[name])
        if name not in _REGISTRY:
            raise ConfigError(
                f"module {modules[name]} did not register backbone {name!r}; decorate its class "
                f"with @icarena.pretraining.backbones.register({name!r}, ConfigClass, help)"
            )
    return _REGISTRY[name]


def available() -> list[str]:
    """Names of the registered backbones (built-in and plugins), sorted."""
    return sorted(_modules())


def describe(name: str) -> str:
    """One-line description of backbone ``name``."""
    return _load(name)[2]


def incremental(name: str) -> bool:
    """Whether backbone ``name`` decodes incrementally (a cache / recurrent state) when causal."""
    return bool(_load(name)[0].incremental_decoding)


def config_class(name: str) -> type[BackboneConfig]:
    """The config dataclass of backbone ``name``."""
    return _load(name)[1]


def make_config(name: str, **cfg: Any) -> BackboneConfig:
    """Build and validate the config of backbone ``name``; unknown keys are a ConfigError."""
    _, config_cls, _ = _load(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(cfg) - fields)
    if unknown:
        raise ConfigError(
            f"backbone {name!r} has no option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(sorted(fields))}"
        )
    config = config_cls(**cfg)
    config.validate()
    return config


def build(name: str, **cfg: Any) -> Backbone:
    """Build backbone ``name`` from keyword config values (see its config dataclass)."""
    cls, _, _ = _load(name)
    return cls(make_config(name, **cfg))


__all__ = [
    "Backbone",
    "BackboneConfig",
    "available",
    "build",
    "config_class",
    "describe",
    "incremental",
    "make_config",
    "register",
]

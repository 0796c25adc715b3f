"""Without the optional extra, `icarena export minari` says how to install it (no traceback)."""

from __future__ import annotations

import sys

import pytest

from icarena.errors import ConfigError
from icarena.exports.minari_export import Config, export


def test_missing_minari_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "minari", None)  # import minari -> ImportError
    with pytest.raises(ConfigError, match=r"icarena\[minari\]"):
        export(Config(data=str(tmp_path)))

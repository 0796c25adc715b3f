"""The README's Python snippets for exports and activations run as written, and docs/exports.md
documents every field of the learning-history layout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from icarena.exports.history import FIELDS, Config, export
from icarena.pretraining.data.games import Config as GamesConfig
from icarena.pretraining.data.games import generate

ROOT = Path(__file__).resolve().parents[2]


def snippet(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"one README python block must contain {marker!r}"
    return found[0]


def test_history_snippet_reads_the_export(tmp_path, monkeypatch):
    generate(GamesConfig(out_dir=str(tmp_path / "data/games"), n_games=2, episodes=5))
    monkeypatch.chdir(tmp_path)
    export(Config(data="data/games", out_dir="exports/history"))
    scope: dict = {}
    exec(snippet("exports/history/manifest.json"), scope)
    h = scope["h"]
    assert h["label_max"].shape == (2, 5, 5)
    np.testing.assert_allclose(h["label_max"].astype(np.float64).sum(-1), 1.0, atol=1e-2)


def test_activation_snippet_runs():
    scope: dict = {}
    exec(snippet("capture("), scope)
    acts = scope["acts"]
    assert len(acts.residual) == 3 and acts.attention[0].shape == (4, 2, 10, 10)


def test_every_history_field_is_documented():
    text = (ROOT / "docs" / "exports.md").read_text()
    assert all(f"| `{name}` |" in text for name in FIELDS)

"""Plugins: a package made visible through entry points adds a backbone, an env and an experiment.

The toy plugin is never installed: a ``*.dist-info`` with ``entry_points.txt`` in a temporary
directory on PYTHONPATH (or ``sys.path``) is all importlib.metadata needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import icarena

BACKBONE = '''
"""A per-token MLP backbone (causal by construction)."""
from dataclasses import dataclass

from torch import nn

from icarena.pretraining.backbones import Backbone, BackboneConfig, register


@dataclass
class ToyConfig(BackboneConfig):
    pass


@register("toy_mlp", ToyConfig, "Toy plugin backbone: a per-token MLP")
class ToyMLP(Backbone):
    def __init__(self, config):
        super().__init__(config)
        d = config.d_model
        self.net = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))

    def forward(self, x, *, pad_mask=None, special_mask=None):
        self.check_input(x)
        return x + self.net(x)
'''

ENVS = '''
"""Toy plugin envs."""
import gymnasium as gym
import numpy as np


class CoinEnv(gym.Env):
    """Toy plugin env: guess a coin."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, float(action == self.np_random.integers(2)), True, False, {}


def register_envs():
    if "ToyPlugin/Coin-v0" not in gym.registry:
        gym.register("ToyPlugin/Coin-v0", entry_point=CoinEnv)
'''

EXPERIMENT = '''
"""Toy plugin experiment: writes one metric."""
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Config:
    out_dir: str = "runs/toy"
    seed: int = 0


def quick_config(out_dir):
    return Config(out_dir=out_dir)


def run(cfg):
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"seed": cfg.seed}))
    return {"report": "", "rows": [{"seed": cfg.seed}]}
'''

ENTRY_POINTS = '''
[icarena.backbones]
toy_mlp = icarena_toy_plugin.backbone

[icarena.envs]
toy = icarena_toy_plugin.envs:register_envs

[icarena.experiments]
toy-experiment = icarena_toy_plugin.experiment
'''


def make_plugin(root: Path, entry_points: str = ENTRY_POINTS) -> Path:
    pkg = root / "icarena_toy_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, text in (("backbone", BACKBONE), ("envs", ENVS), ("experiment", EXPERIMENT)):
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    info = root / "icarena_toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: icarena-toy-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


def icarena_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    repo = Path(icarena.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(repo)])}
    return subprocess.run([sys.executable, "-m", "icarena.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=root)


def test_plugin_is_listed_trains_and_runs(tmp_path):
    root = make_plugin(tmp_path / "site")
    listed = icarena_cli(root, "list")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "toy_mlp" in out and "Toy plugin backbone: a per-token MLP" in out
    assert "ToyPlugin/Coin-v0" in out and "(plugin toy)" in out
    assert "toy-experiment" in out and "Toy plugin experiment: writes one metric." in out
    run_dir = tmp_path / "run"
    trained = icarena_cli(root, "pretrain", "regression", "--out-dir", str(run_dir),
                          "--model.backbone", "toy_mlp", "--data.d", "2", "--data.k", "3",
                          "--model.d-model", "8", "--model.n-layers", "1", "--model.n-heads",
                          "1", "--data.n-eval", "8",
                          "--train.steps", "3", "--train.batch-size", "4",
                          "--train.warmup-steps", "1", "--train.device", "cpu")
    assert trained.returncode == 0, trained.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert "toy_mlp" in json.dumps(config)
    assert (run_dir / "model.safetensors").exists()
    ran = icarena_cli(root, "run", "toy-experiment", "--out-dir", str(tmp_path / "exp"),
                      "--seed", "3")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "exp" / "metrics.json").read_text()) == {"seed": 3}


def test_builtin_names_win_and_broken_plugins_warn(tmp_path, monkeypatch):
    from icarena import plugins

    clash = ENTRY_POINTS.replace("toy_mlp =", "gpt =").replace(
        "toy = icarena_toy_plugin.envs:register_envs", "broken = icarena_toy_plugin.nope:f")
    root = make_plugin(tmp_path / "site", clash)
    monkeypatch.syspath_prepend(str(root))
    assert [ep.name for ep in plugins.entry_points("icarena.backbones")] == ["gpt"]
    with pytest.warns(UserWarning, match="built-in"):
        assert plugins.modules("icarena.backbones", {"gpt": "x"}) == {}
    with pytest.warns(UserWarning, match="broken"):
        plugins.register_envs()
    with pytest.raises(ValueError, match="group"):
        plugins.entry_points("icarena.nope")


@pytest.fixture(autouse=True)
def _forget_toy_plugin():
    yield
    for name in [m for m in sys.modules if m.startswith("icarena_toy_plugin")]:
        del sys.modules[name]


def test_plugin_experiment_is_registered_in_process(tmp_path, monkeypatch):
    import icarena.experiments as ex

    monkeypatch.syspath_prepend(str(make_plugin(tmp_path / "site")))
    found = ex._plugin_experiments()
    assert found["toy-experiment"] == ("icarena_toy_plugin.experiment",
                                       "Toy plugin experiment: writes one metric.")


def test_plugin_experiment_without_the_experiment_api_is_skipped(tmp_path, monkeypatch):
    import icarena.experiments as ex

    bad = ENTRY_POINTS.replace("toy-experiment = icarena_toy_plugin.experiment",
                               "toy-experiment = icarena_toy_plugin.envs")
    monkeypatch.syspath_prepend(str(make_plugin(tmp_path / "site", bad)))
    with pytest.warns(UserWarning, match="lacks Config, run, quick_config"):
        assert ex._plugin_experiments() == {}

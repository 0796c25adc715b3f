"""Errors raised from Python name Python arguments; the CLI prints the same error with flags."""

from __future__ import annotations

import pytest
from cli_helpers import refused

from icarena.errors import ConfigError, IcarenaError, flag
from icarena.pretraining import TrainConfig, path_train_config


def test_a_config_error_names_the_python_field_and_renders_the_flag():
    with pytest.raises(ConfigError) as e:
        TrainConfig(lr=-1.0).validate()
    assert str(e.value) == "train.lr must be > 0, got -1.0"
    assert e.value.cli_message() == "--train.lr must be > 0, got -1.0"
    with pytest.raises(ConfigError) as e:
        path_train_config().replace(warmup_steps=-3)
    assert "train.warmup_steps must be >= 0" in str(e.value)
    assert "--train.warmup-steps must be >= 0" in e.value.cli_message()
    assert flag("eval.n_prompts") == "--eval.n-prompts"
    plain = IcarenaError("no fields {here}")
    assert str(plain) == plain.cli_message() == "no fields {here}"


def test_the_cli_prints_flags(tmp_path):
    line = refused("pretrain", "regression", "--out-dir", str(tmp_path / "r"), "--train.lr", "-1")
    assert "--train.lr must be > 0" in line
    line = refused("pretrain", "regression", "--out-dir", str(tmp_path / "r"),
                   "--train.warmup-steps", "-2")
    assert "--train.warmup-steps must be >= 0" in line
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    line = refused("pretrain", "regression", "--out-dir", str(tmp_path / "mine"))
    assert "--out-dir" in line and "out_dir" not in line

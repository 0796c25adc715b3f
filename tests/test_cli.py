import subprocess
import sys

import pytest

from icarena.cli import main


def test_help_and_list(capsys):
    assert main([]) == 0
    assert "icarena run NAME" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("envs", "backbones", "experiments", "generators"):
        assert section in out
    assert "gpt" in out and "quickstart" in out and "regression-linear" in out
    for env_id in ("icarena/MatrixGame-v0", "icarena/markov_game-v0", "icarena/PathFinding-v0"):
        assert env_id in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no-such-experiment"], "unknown run name 'no-such-experiment'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["generate", "nope"], "unknown generate name 'nope'"),
    ],
)
def test_bad_names_give_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_stage_without_name_lists_entries(capsys):
    assert main(["run"]) == 2
    assert "quickstart" in capsys.readouterr().out


def test_console_script_installed():
    proc = subprocess.run([sys.executable, "-m", "icarena.cli", "run", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("icarena: error:")

"""The rule of icarena/errors.py: user errors are IcarenaErrors (one line, exit 2); a broken
internal invariant is an AssertionError / RuntimeError that keeps its traceback (exit 1)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from icarena.errors import IcarenaError


def test_failing_lp_on_a_finite_game_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from icarena.agents.games import lp

    monkeypatch.setattr(lp, "linprog", lambda *a, **k: SimpleNamespace(status=4,
                                                                       message="numerical"))
    with pytest.raises(RuntimeError, match="LP failed") as info:
        lp.solve_zero_sum(np.eye(2))
    assert not isinstance(info.value, IcarenaError)


def test_non_finite_game_is_a_user_error() -> None:
    from icarena.agents.games import solve_zero_sum

    with pytest.raises(IcarenaError, match="NaN or inf"):
        solve_zero_sum(np.array([[np.nan, 0.0], [0.0, 1.0]]))


def test_substream_overdraw_is_an_assertion() -> None:
    from icarena.envs.substreams import SubEnvStreams

    streams = SubEnvStreams(2, "random", block=4)
    streams.seed(0)
    with pytest.raises(AssertionError):
        streams.take(np.arange(2), 5)


def test_cli_keeps_the_traceback_of_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from icarena import cli

    def broken(*args: object) -> None:
        raise RuntimeError("internal invariant broken")

    monkeypatch.setattr(cli, "run_stage", broken)
    with pytest.raises(RuntimeError, match="internal invariant"):
        cli.main(["generate", "alpine"])

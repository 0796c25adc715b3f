"""Property tests of the boundaries: manifest and checkpoint mutations, env ``step`` with
arbitrary actions before reset / during / after the end, constructor kwargs of every env id, and
every numeric flag of every stage with 0, negative, NaN, inf, huge and wrong-type values.

Each property either accepts the input (finite results) or refuses it with an IcarenaError whose
message is one line (through the CLI: exit 2, one line, nothing on disk changed). A small
derandomised subset runs in ``make test``; the ``slow`` twins draw many more examples
(``make test-all``)."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import math
import shutil
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from hardening_cases import (
    TINY_ALPINE,
    TINY_BASELINES,
    TINY_GAMES,
    TINY_PATH,
    TINY_REGRESSION,
    alarm,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icarena  # noqa: F401  (registers the envs)
from icarena import cli, limits
from icarena.errors import IcarenaError
from icarena.pretraining.data import load_dataset
from icarena.pretraining.train import load_checkpoint

FAST = settings(max_examples=12, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
ENV_IDS = sorted(k for k in gymnasium.registry if k.startswith("icarena/"))


def one_line_or_ok(fn: Callable[[], Any]) -> Any:
    """Run ``fn``: its result, or None when it raised an IcarenaError with a one-line message
    (any other exception fails the test)."""
    try:
        return fn()
    except IcarenaError as e:
        assert "\n" not in str(e).strip(), f"multi-line error: {e}"
        return None


# ------------------------------------------------------------------- values a user might pass
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6,
)
actions = (st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=4) | st.booleans()
           | st.none() | st.just(np.int64(0)) | st.just(np.array([0, 1]))
           | st.just(np.float32(0.0)) | st.just(np.array(1)))


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("properties_base")
    assert cli.main(["generate", "alpine", *TINY_ALPINE, "--out-dir", str(root / "d")]) == 0
    assert cli.main(["pretrain", "path", "--data", str(root / "d"), "--out-dir",
                     str(root / "r"), *TINY_PATH]) == 0
    return root


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict/list."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(obj: Any, path: tuple, action: str, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


# --------------------------------------------------------------------- manifest mutations
def check_manifest_mutation(base: Path, tmp: Path, data: st.DataObject) -> None:
    d = tmp / "d"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base / "d", d)
    manifest = json.loads((d / "manifest.json").read_text())
    path = data.draw(st.sampled_from(_paths(manifest)))
    action = data.draw(st.sampled_from(["replace", "delete"]))
    value = data.draw(json_values)
    mutated = _mutate(copy.deepcopy(manifest), path, action, value)
    (d / "manifest.json").write_text(json.dumps(mutated))
    ds = one_line_or_ok(lambda: load_dataset(d))
    if ds is not None:  # accepted: every array is what the manifest says
        for name in ds.names():
            arr = ds[name]
            assert list(arr.shape) == list(ds.manifest["arrays"][name]["shape"])
            assert arr.dtype.str == ds.manifest["arrays"][name]["dtype"]


@FAST
@given(data=st.data())
def test_manifest_mutations(base: Path, tmp_path_factory: pytest.TempPathFactory,
                            data: st.DataObject) -> None:
    check_manifest_mutation(base, tmp_path_factory.mktemp("m"), data)


@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_manifest_mutations_many(base: Path, tmp_path_factory: pytest.TempPathFactory,
                                 data: st.DataObject) -> None:
    check_manifest_mutation(base, tmp_path_factory.mktemp("m"), data)


# ------------------------------------------------------------------- checkpoint mutations
tensor_values = (json_values | st.just(torch.tensor(float("nan")))
                 | st.just(torch.zeros(3)) | st.just(torch.full((2, 2), float("inf"))))


def check_ckpt_mutation(base: Path, tmp: Path, data: st.DataObject, resume: bool) -> None:
    r = tmp / "r"
    shutil.rmtree(r, ignore_errors=True)
    shutil.copytree(base / "r", r)
    state = torch.load(r / "ckpt.pt", weights_only=True)
    top = data.draw(st.sampled_from(sorted(state)))
    sub = state[top]
    keys = [(top,)]
    if isinstance(sub, dict):
        keys += [(top, k) for k in sub]
    path = data.draw(st.sampled_from(keys))
    action = data.draw(st.sampled_from(["replace", "delete"]))
    mutated = _mutate(state, path, action, data.draw(tensor_values))
    torch.save(mutated, r / "ckpt.pt")
    if not resume:
        one_line_or_ok(lambda: load_checkpoint(r / "ckpt.pt"))
        return
    before = {p: p.read_bytes() for p in sorted(r.rglob("*")) if p.is_file()}
    argv = ["pretrain", "path", "--data", str(base / "d"), "--out-dir", str(r), "--resume",
            *TINY_PATH[:2], "--train.steps", "30", *TINY_PATH[4:]]
    with alarm(60):
        rc = cli.main(argv)
    if rc == 2:
        assert {p: p.read_bytes() for p in sorted(r.rglob("*")) if p.is_file()} == before
    else:
        assert rc == 0


@FAST
@given(data=st.data())
def test_checkpoint_mutations(base: Path, tmp_path_factory: pytest.TempPathFactory,
                              data: st.DataObject) -> None:
    check_ckpt_mutation(base, tmp_path_factory.mktemp("c"), data, resume=False)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_checkpoint_mutations_resume(base: Path, tmp_path_factory: pytest.TempPathFactory,
                                     data: st.DataObject) -> None:
    check_ckpt_mutation(base, tmp_path_factory.mktemp("c"), data, resume=True)


# ------------------------------------------------------------------------------ env steps
SMALL = {"icarena/PathFinding-v0": {"n_nodes": 8}, "icarena/Blocksworld-v0": {"n_blocks": 2,
                                                                             "max_steps": 4},
         "icarena/Regression-v0": {"d": 2, "k": 3},
         "icarena/MarkovGame-v0": {"H": 2, "S": 2, "episodes": 2},
         "icarena/MatrixGame-v0": {"episodes": 3}}


def check_env_steps(env_id: str, before_reset: Any, during: list[Any]) -> None:
    env = gymnasium.make(env_id, **SMALL.get(env_id, {})).unwrapped
    with pytest.raises(IcarenaError):
        env.step(before_reset)
    env.reset(seed=0)
    ended = False
    for a in during:
        if ended:
            with pytest.raises(IcarenaError):
                env.step(a)
            continue
        out = one_line_or_ok(lambda a=a: env.step(a))
        if out is not None:
            _, reward, term, trunc, _ = out
            assert math.isfinite(float(reward))
            ended = bool(term or trunc)
    # play to the end with valid actions, then any step is refused
    for _ in range(10_000):
        if ended:
            break
        a = env.action_space.sample() if not isinstance(
            env.action_space, gymnasium.spaces.Discrete) else _legal(env)
        _, reward, term, trunc, _ = env.step(a)
        assert math.isfinite(float(np.asarray(reward).sum()))
        ended = bool(term or trunc)
    assert ended
    with pytest.raises(IcarenaError):
        env.step(during[0] if during else 0)


def _legal(env: Any) -> int:
    info = env._info() if hasattr(env, "_info") else {}
    legal = info.get("legal_actions") if isinstance(info, dict) else None
    return int(legal[0]) if legal else 0


@pytest.mark.parametrize("env_id", ENV_IDS)
@FAST
@given(before=actions, during=st.lists(actions, max_size=6))
def test_env_step_arbitrary_actions(env_id: str, before: Any, during: list[Any]) -> None:
    check_env_steps(env_id, before, during)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
@SLOW
@given(before=actions, during=st.lists(actions, max_size=20))
def test_env_step_arbitrary_actions_many(env_id: str, before: Any, during: list[Any]) -> None:
    check_env_steps(env_id, before, during)


# ------------------------------------------------------------------------ env constructors
def _kwarg_names(env_id: str) -> list[str]:
    spec = gymnasium.spec(env_id)
    mod, _, attr = spec.entry_point.partition(":")
    cls = getattr(importlib.import_module(mod), attr)
    if env_id.startswith("icarena/Ma"):
        from icarena.envs.games.single import EnvSettings

        return [f for f in EnvSettings.__dataclass_fields__ if f != "opponent_policy"]
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


kwarg_values = (st.integers(-3, 10) | st.integers(-2**70, 2**70) | st.floats()
                | st.text(max_size=6) | st.none() | st.booleans() | st.lists(st.integers(0, 3),
                                                                              max_size=3))


def check_constructor(env_id: str, data: st.DataObject) -> None:
    # render_mode is read by gymnasium.make itself (a non-string fails inside gymnasium)
    names = [n for n in _kwarg_names(env_id) if n != "render_mode"] + ["bogus_option"]
    kwargs = data.draw(st.dictionaries(st.sampled_from(names), kwarg_values, max_size=3))
    with limits.max_memory("256MiB"), alarm(20):
        env = one_line_or_ok(lambda: gymnasium.make(env_id, **kwargs))
        if env is not None:
            one_line_or_ok(lambda: env.reset(seed=0))


@pytest.mark.parametrize("env_id", ENV_IDS)
@FAST
@given(data=st.data())
def test_env_constructor_kwargs(env_id: str, data: st.DataObject) -> None:
    check_constructor(env_id, data)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
@SLOW
@given(data=st.data())
def test_env_constructor_kwargs_many(env_id: str, data: st.DataObject) -> None:
    check_constructor(env_id, data)


# ------------------------------------------------------------------ numeric flags of stages
BASES: dict[str, list[str]] = {
    "generate alpine": TINY_ALPINE,
    "generate games": TINY_GAMES,
    "generate regression": TINY_REGRESSION,
    "generate blocksworld": ["--blocks", "3", "--lines", "200"],
    "pretrain path": ["--data", "{D}", *TINY_PATH],
    "run games-baselines": TINY_BASELINES,
}
BAD_NUMBERS = {"int": ["0", "-1", "-7", "1000000000000", "1e3", "abc", "nan"],
               "float": ["0", "-1", "nan", "inf", "-inf", "1e300", "abc"]}


def numeric_flags(stage: str, name: str) -> list[tuple[str, str]]:
    """(flag, 'int' | 'float') of every numeric field of a stage's config."""
    _, _, cfg_attr, _ = cli.STAGES[stage]
    module = importlib.import_module(cli._registry(stage)[name][0])

    def walk(cls: type, prefix: str) -> list[tuple[str, str]]:
        out = []
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            h = hints[f.name]
            flag = prefix + f.name.replace("_", "-")
            if dataclasses.is_dataclass(h):
                out += walk(h, flag + ".")
            else:
                args = set(typing.get_args(h)) - {type(None)} or {h}
                if args == {int}:
                    out.append((flag, "int"))
                elif args <= {int, float} and float in args:
                    out.append((flag, "float"))
        return out

    return walk(getattr(module, cfg_attr), "--")


FLAG_CASES = [(cmd, flag, kind) for cmd in BASES
              for flag, kind in numeric_flags(*cmd.split())]


def check_flag(cmd: str, flag: str, value: str, base: Path, tmp: Path,
               capsys: pytest.CaptureFixture) -> None:
    stage, name = cmd.split()
    argv = [stage, name, *[a.replace("{D}", str(base / "d")) for a in BASES[cmd]],
            "--out-dir", str(tmp / "out"), flag, value]
    before = sorted(p for p in tmp.rglob("*"))
    capsys.readouterr()
    t0 = time.perf_counter()
    with limits.max_memory("256MiB"), alarm(60):
        try:
            rc = cli.main(argv)
        except SystemExit as e:
            rc = e.code
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("icarena: error: "), err[-2000:]
        assert elapsed < 5, f"{cmd} {flag} {value}: refused after {elapsed:.1f} s"
        assert sorted(p for p in tmp.rglob("*")) == before
    else:
        assert rc == 0, f"{cmd} {flag} {value}: exit {rc}\n{err[-2000:]}"
        assert elapsed < 30
        for p in (tmp / "out").rglob("*.json"):
            text = p.read_text()
            assert "NaN" not in text and "Infinity" not in text, f"{p} holds NaN/inf"


# the fast subset: a fixed handful per stage
FAST_FLAGS = [(cmd, flag, kind, value) for i, (cmd, flag, kind) in enumerate(FLAG_CASES)
              for value in BAD_NUMBERS[kind] if (i + len(value)) % 11 == 0]


@pytest.mark.parametrize(("cmd", "flag", "kind", "value"), FAST_FLAGS,
                         ids=[f"{c}{f}={v}" for c, f, _, v in FAST_FLAGS])
def test_numeric_flag(cmd: str, flag: str, kind: str, value: str, base: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture) -> None:
    check_flag(cmd, flag, value, base, tmp_path, capsys)


ALL_FLAGS = [(cmd, flag, kind, value) for cmd, flag, kind in FLAG_CASES
             for value in BAD_NUMBERS[kind]]


@pytest.mark.slow
@pytest.mark.parametrize(("cmd", "flag", "kind", "value"), ALL_FLAGS,
                         ids=[f"{c}{f}={v}" for c, f, _, v in ALL_FLAGS])
def test_numeric_flag_all(cmd: str, flag: str, kind: str, value: str, base: Path,
                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    check_flag(cmd, flag, value, base, tmp_path, capsys)

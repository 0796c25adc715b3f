"""The memory and work ceilings (icarena.limits): parsing, precedence, and the acceptance case
``icarena generate alpine --nodes 40000`` under a 1 GiB ceiling (refused within 5 s, naming about
12 GiB and --nodes, peak memory under 500 MB, nothing written)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import env

from icarena import limits
from icarena.errors import ConfigError, ResourceError


@pytest.mark.parametrize(("text", "expected"), [
    ("1GiB", 2**30), ("512MiB", 512 * 2**20), ("2GB", 2e9), ("1.5G", 1.5 * 2**30),
    ("123456", 123456), ("none", math.inf), ("8gib", 8 * 2**30), (" 4 KiB ", 4096),
])
def test_parse_size(text: str, expected: float) -> None:
    assert limits.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1GiB", "0", "1XB", "nan", "1e999", "GiB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        limits.parse_size(text)


def test_precedence_flag_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    assert limits.ceiling() == limits.DEFAULT_MAX_MEMORY == 16 * 2**30
    monkeypatch.setenv(limits.ENV_VAR, "2GiB")
    assert limits.ceiling() == 2 * 2**30
    with limits.max_memory("1MiB"):
        assert limits.ceiling() == 2**20
        with pytest.raises(ResourceError, match=r"--nodes.*--max-memory"):
            limits.require(2**21, "x", "--nodes")
        limits.require(2**20, "x", "--nodes")  # at the ceiling: fine
    assert limits.ceiling() == 2 * 2**30


def test_require_refuses_nan_and_inf() -> None:
    for bad in (math.nan, math.inf):
        with pytest.raises(ResourceError):
            limits.require(bad, "x", "--n")


def test_pop_flags() -> None:
    rest, found = limits.pop_flags(["generate", "--max-memory", "1GiB", "alpine",
                                    "--max-work=1e9", "--nodes", "5"])
    assert rest == ["generate", "alpine", "--nodes", "5"]
    assert found == {"--max-memory": "1GiB", "--max-work": "1e9"}
    with pytest.raises(ConfigError):
        limits.pop_flags(["generate", "--max-memory"])


def test_work_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.WORK_ENV_VAR, raising=False)
    assert limits.work_ceiling() == 1e14
    with limits.max_work("1e6"), pytest.raises(ResourceError, match="--data.mwu-iters"):
        limits.require_work(1e7, "x", "--data.mwu-iters")


def test_alpine_estimate_matches_the_arrays() -> None:
    """The estimate counts the float64 n x n draw (8 n^2) plus three n x n bool masks; checked
    against the arrays numpy would allocate."""
    import numpy as np

    from icarena.pretraining.data.alpine import graph_bytes

    n = 300
    draw = np.random.default_rng(0).random((n, n))
    masks = [np.zeros((n, n), dtype=bool) for _ in range(3)]
    assert graph_bytes(n) == draw.nbytes + sum(m.nbytes for m in masks)


def test_alpine_40000_refused_fast_and_small(tmp_path: Path) -> None:
    out = tmp_path / "big"
    code = (
        "import resource, sys\n"
        "from icarena.cli import main\n"
        "rc = main(['generate', 'alpine', '--nodes', '40000', '--out-dir', sys.argv[1]])\n"
        "import re\n"
        "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "sys.exit(rc)\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                          text=True, timeout=60, env=dict(env(), ICARENA_MAX_MEMORY="1GiB"))
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("icarena: error: "), proc.stderr
    assert "--nodes" in lines[0]
    draw = re.search(r"edge draw alone is ([0-9.]+) GiB", lines[0])
    assert draw and 11.0 <= float(draw.group(1)) <= 13.0, lines[0]
    # VmHWM: the peak RSS of this process image (ru_maxrss would include the RSS that the
    # forked child inherited from the pytest process before exec)
    peak_mb = int(proc.stdout.strip()) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"
    assert elapsed < 5, f"refused after {elapsed:.1f} s"
    assert not out.exists() and not any(tmp_path.iterdir())

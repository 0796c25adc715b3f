"""Results tables (``icarena report``) and the pages of docs/results, rebuilt from their data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import TINY, ok, refused

from icarena.errors import IcarenaError
from icarena.evaluation.report import summary_metrics
from icarena.evaluation.results import (
    load_metrics,
    render_page,
    results_table,
    summary_rows,
    write_results_page,
)
from icarena.experiments import EXPERIMENTS

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
PAGES = sorted(RESULTS.glob("*.md"))


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True))
    return path


# ---- the committed pages equal their regeneration


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_committed_page_equals_its_regeneration(page):
    text = page.read_text()
    assert render_page(text, page.parent) == text, (
        f"{page} drifted from its metrics files; run `icarena report --page {page}`")


def test_every_experiment_and_the_search_has_a_page():
    builtin = [n for n, (mod, _) in EXPERIMENTS.items() if mod.startswith("icarena.")]
    for name in [*builtin, "search"]:
        assert (RESULTS / f"{name}.md").is_file(), f"docs/results/{name}.md is missing"


def test_every_metrics_file_is_shown_on_a_page():
    shown = set()
    for page in PAGES:
        for files in re.findall(r"<!-- icarena report: (.*?) -->", page.read_text()):
            shown |= {(RESULTS / f).resolve() for f in files.split()}
    data = {p.resolve() for p in RESULTS.rglob("*.json")}
    assert data and data <= shown, f"metrics files on no page: {sorted(data - shown)}"


def test_recorded_metrics_say_where_they_come_from():
    for path in RESULTS.rglob("*.json"):
        metrics = json.loads(path.read_text())
        for key in ("source", "machine", "date", "rows"):
            assert metrics.get(key), f"{path} lacks {key!r}"


# ---- the table rule on tiny metrics


def test_rows_keep_the_recorded_column_order(tmp_path):
    rows = [{"policy": "EXP3", "K=10": 0.5, "K=100": 0.25}, {"policy": "uniform", "K=10": 0.75}]
    _write(tmp_path / "run" / "metrics.json", {"curves": [1, 2], **summary_metrics(rows)})
    _write(tmp_path / "run" / "config.json", {"seed": 3})
    table = results_table(load_metrics([tmp_path / "run"]))
    assert table.splitlines() == [
        "| seed | policy | K=10 | K=100 |",
        "|---|---|---|---|",
        "| 3 | EXP3 | 0.5 | 0.25 |",
        "| 3 | uniform | 0.75 |  |",
    ]


def test_without_rows_the_scalar_metrics_are_flattened(tmp_path):
    metrics = {"acceptance": {"err": 0.04, "ok": True}, "curve": [0.1, 0.2], "seconds": 12,
               "note": None}
    assert summary_rows(metrics) == [{"acceptance.err": 0.04, "acceptance.ok": True,
                                      "seconds": 12}]
    table = results_table(load_metrics([_write(tmp_path / "x.metrics.json", metrics)]))
    assert table.splitlines()[2] == "| 0.04 | yes | 12 |"


def test_several_runs_get_a_run_column_and_their_provenance(tmp_path):
    a = _write(tmp_path / "a.metrics.json", {"rows": [{"gap": 0.123456}], "source": "recorded",
                                             "command": ["icarena run x", "icarena run x --y"],
                                             "seeds": [0, 1], "date": "2026-01-01"})
    b = _write(tmp_path / "b" / "metrics.json", {"rows": [{"gap": None, "extra": "a|b"}],
                                                 "label": "other"})
    table = results_table(load_metrics([a, b]), digits=3)
    lines = table.splitlines()
    assert lines[0] == "| run | gap | extra |"
    assert lines[2] == "| a | 0.123 |  |"
    assert lines[3] == "| other | — | a\\|b |"
    assert lines[-1] == ("- a: recorded; command: `icarena run x`, `icarena run x --y`; "
                         "seeds: 0, 1; date: 2026-01-01")


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(IcarenaError, match="does not exist"):
        load_metrics([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(IcarenaError, match="holds no metrics.json"):
        load_metrics([tmp_path / "empty"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(IcarenaError, match="not valid JSON"):
        load_metrics([tmp_path / "bad.json"])
    with pytest.raises(IcarenaError, match="no rows"):
        results_table(load_metrics([_write(tmp_path / "e.json", {"curve": [1]})]))


def test_a_page_keeps_its_text_and_rebuilds_its_blocks(tmp_path):
    _write(tmp_path / "exp" / "s0.metrics.json", {"rows": [{"err": 0.5}]})
    page = write_results_page(tmp_path / "exp.md", "exp: a test", "Command: `icarena run exp`.",
                              ["exp/s0.metrics.json"])
    text = page.read_text()
    assert text.startswith("# exp: a test\n\nCommand: `icarena run exp`.\n\n")
    assert "| 0.5 |" in text
    # edited prose is kept, a stale table is rebuilt, the data wins
    page.write_text(text.replace("Command", "The command").replace("| 0.5 |", "| 9 |"))
    _write(tmp_path / "exp" / "s0.metrics.json", {"rows": [{"err": 0.25}]})
    new = write_results_page(page).read_text()
    assert "The command" in new and "| 0.25 |" in new and "| 9 |" not in new


# ---- the installed command


def test_icarena_report_on_a_quick_run(tmp_path):
    run = tmp_path / "gb"
    ok("run", "games-baselines", *TINY["run games-baselines"], "--out-dir", str(run))
    out = ok("report", str(run)).stdout
    assert out.splitlines()[0].startswith("| seed | setting | policy | K=1 |")
    assert "| 0 | matrix | EXP3 (avg) |" in out
    ok("report", str(run), str(run / "metrics.json"), "--out", str(tmp_path / "t.md"))
    assert (tmp_path / "t.md").read_text().startswith("| run | seed | setting | policy |")
    assert "does not exist" in refused("report", str(tmp_path / "missing"))
    assert "at least one RUN" in refused("report")
    assert "--digits" in refused("report", str(run), "--digits", "x")

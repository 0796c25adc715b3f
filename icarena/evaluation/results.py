"""Results tables from run dirs (``icarena report RUN...``) and the pages of ``docs/results/``.

Measured numbers live in data, not in code: every experiment writes ``RUN/metrics.json``, and a
results table is rebuilt from those files by one rule, the same for every experiment:

* **rows**: if ``metrics.json`` has a ``"rows"`` list (each experiment's ``run`` stores there the
  summary rows it prints, and their order in ``"columns"``:
  :func:`icarena.evaluation.report.summary_metrics`), the table has one line per row; otherwise one
  line per run made of the scalar leaves of ``metrics.json``, nested keys joined by dots (lists are
  skipped: they are curves, not summary figures).
* **columns**: the union of the rows' keys in first-seen order; with more than one run a leading
  ``run`` column names each run (its ``"label"``, else the run dir's name or the file's stem), and
  a ``seed`` column comes from the run's ``config.json`` when it has one.
* **provenance**: the keys ``source``, ``command``, ``seeds``, ``machine``, ``date`` and ``notes``
  of a metrics file are not table cells; they are listed under the table. A run dir does not need
  them; the metrics files kept in ``docs/results/<experiment>/`` (numbers recorded by earlier runs)
  carry them.

A page of ``docs/results/`` is free text (command, seeds, machine, date, notes) plus blocks::

    <!-- icarena report: alpine/seed0.metrics.json other.metrics.json -->
    (the table, rebuilt from the listed files, paths relative to the page)
    <!-- end report -->

:func:`render_page` rebuilds every block and keeps the text around them; a test checks that each
committed page equals its regenerated text, so a page cannot drift from its data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icarena.errors import IcarenaError
from icarena.evaluation.report import fmt, markdown_table
from icarena.lifecycle import atomic_write_bytes

PROVENANCE = ("source", "command", "seeds", "machine", "date", "notes")
"""Keys of a metrics file that describe where its numbers come from (listed under the table)."""

METRICS_FILES = ("metrics.json", "search.json")
"""What a run dir's results are read from, in order (``icarena search`` writes ``search.json``)."""

BLOCK = re.compile(
    r"(<!-- icarena report: (?P<files>[^>]*?) -->\n)(?P<body>.*?)(<!-- end report -->)", re.DOTALL)


@dataclass
class RunMetrics:
    """One run's results: a label, its ``metrics.json`` and (if any) its ``config.json``."""

    label: str
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise IcarenaError(f"{path} is not valid JSON ({e}); rerun the run that wrote it") from e


def load_metrics(paths: Sequence[str | os.PathLike]) -> list[RunMetrics]:
    """Read each run dir's ``metrics.json`` (or ``search.json``) and ``config.json``.

    A path may also be a metrics JSON file itself (as kept in ``docs/results/``); its label is
    its ``"label"`` key, else the file name without ``.json`` / ``.metrics.json``.
    """
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [p / n for n in METRICS_FILES if (p / n).is_file()]
            if not found:
                raise IcarenaError(
                    f"{p} holds no {' or '.join(METRICS_FILES)}; pass a finished run dir of "
                    "`icarena run NAME` / `icarena evaluate` / `icarena search`")
            file, config_file, default = found[0], p / "config.json", p.resolve().name
        elif p.is_file():
            file, config_file = p, p.with_name("config.json")
            default = p.name.removesuffix(".json").removesuffix(".metrics")
            if p.name == "metrics.json":
                default = p.resolve().parent.name
        else:
            raise IcarenaError(f"{p} does not exist; pass a run dir or a metrics .json file")
        metrics = _read_json(file)
        if not isinstance(metrics, dict):
            raise IcarenaError(f"{file} holds no JSON object; rerun the run that wrote it")
        config = _read_json(config_file) if config_file.is_file() and file != config_file else {}
        label = str(metrics.get("label", default))
        out.append(RunMetrics(label, metrics, config if isinstance(config, dict) else {}, file))
    return out


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of a nested mapping, keys joined by dots; lists and None are left out."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, bool | int | float | str):
            out[key] = v
    return out


def summary_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table rows of one run: its ``"rows"`` list, else its flattened scalar metrics."""
    rows = metrics.get("rows")
    if isinstance(rows, list) and all(isinstance(r, Mapping) for r in rows):
        order = [c for c in metrics.get("columns") or [] if any(c in r for r in rows)]
        return [{**{c: r[c] for c in order if c in r}, **r} for r in rows]
    rest = {k: v for k, v in metrics.items() if k not in PROVENANCE and k != "label"}
    flat = flatten(rest)
    return [flat] if flat else []


def _seed(config: Mapping[str, Any]) -> Any:
    """The run's seed: ``config.json``'s top-level ``seed``, else that of its first section
    (``experiment``, ``search``, ...) that has one."""
    if "seed" in config:
        return config["seed"]
    sections = sorted((v for v in config.values() if isinstance(v, Mapping) and "seed" in v),
                      key=lambda v: v is not config.get("experiment"))
    return sections[0]["seed"] if sections else None


def cell(value: Any, digits: int = 4) -> str:
    """One table cell: floats to ``digits`` significant digits, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "[" + ", ".join(cell(v, digits) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return fmt(value, digits).replace("|", "\\|").replace("\n", " ")


def provenance_lines(runs: Sequence[RunMetrics]) -> list[str]:
    """One bullet per run that carries provenance keys: source, command, seeds, machine, date."""
    lines = []
    for r in runs:
        parts = []
        for key in PROVENANCE:
            if r.metrics.get(key) in (None, ""):
                continue
            v = r.metrics[key]
            if key == "command":
                v = ", ".join(f"`{c}`" for c in (v if isinstance(v, list) else [v]))
            elif isinstance(v, list):
                v = ", ".join(map(str, v))
            parts.append(str(v) if key == "source" else f"{key}: {v}")
        if parts:
            lines.append(f"- {r.label + ': ' if len(runs) > 1 else ''}{'; '.join(parts)}")
    return lines


def results_table(runs: Sequence[RunMetrics], digits: int = 4) -> str:
    """A markdown table of one or more runs (see the module docstring for the rule), followed by
    the runs' provenance lines when they have any."""
    multi = len(runs) > 1
    lines: list[dict[str, Any]] = []
    for r in runs:
        seed = _seed(r.config)
        for row in summary_rows(r.metrics):
            lead = {"run": r.label} if multi else {}
            if seed is not None and "seed" not in row:
                lead["seed"] = seed
            lines.append({**lead, **row})
    if not lines:
        raise IcarenaError("no rows to report: the metrics hold no 'rows' list and no scalar "
                           "values")
    headers = list(dict.fromkeys(k for row in lines for k in row))
    table = markdown_table([cell(h) for h in headers],
                           [[cell(row[h], digits) if h in row else "" for h in headers]
                            for row in lines])
    prov = provenance_lines(runs)
    return "\n".join([table] + ([""] + prov if prov else []))


def render_page(text: str, base_dir: str | os.PathLike) -> str:
    """``text`` with every report block rebuilt from its metrics files (relative to
    ``base_dir``); the text outside the blocks is kept as it is."""

    def block(m: re.Match) -> str:
        files = m.group("files").split()
        if not files:
            raise IcarenaError("a report block names no metrics files")
        table = results_table(load_metrics([Path(base_dir) / f for f in files]))
        return f"{m.group(1)}{table}\n{m.group(4)}"

    return BLOCK.sub(block, text)


def write_results_page(
    page_path: str | os.PathLike,
    title: str | None = None,
    header_md: str | None = None,
    metrics_files: Sequence[str] | None = None,
) -> Path:
    """Regenerate a results page and write it if it changed.

    With ``title`` (and optionally ``header_md``, the free text: command, seeds, machine, date,
    notes) a new page is laid out: title, header and one report block of ``metrics_files``
    (paths relative to the page). Without, the existing page is kept and its blocks rebuilt.
    """
    page = Path(page_path)
    if title is not None:
        parts = [f"# {title}\n"]
        if header_md:
            parts.append(header_md.strip() + "\n")
        if metrics_files:
            parts.append(f"<!-- icarena report: {' '.join(metrics_files)} -->\n"
                         "<!-- end report -->\n")
        text = "\n".join(parts)
    elif page.is_file():
        text = page.read_text()
    else:
        raise IcarenaError(f"{page} does not exist; give a title to create it")
    new = render_page(text, page.parent)
    if not page.is_file() or page.read_text() != new:
        atomic_write_bytes(page, new.encode())
    return page


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one ``icarena: error:`` line, like every other command
        raise IcarenaError(f"{message} (see `icarena report --help`)")


def report_main(argv: Sequence[str]) -> int:
    """``icarena report RUN [RUN ...] [--out FILE]`` and ``icarena report --page PAGE...``."""
    parser = _Parser(
        prog="icarena report",
        description="Build a markdown results table from run dirs' metrics.json (or metrics "
                    ".json files), or regenerate docs/results pages from their metrics files.")
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run dirs (or metrics .json files); one table, a row per summary row")
    parser.add_argument("--out", metavar="FILE", help="write the table to FILE instead of stdout")
    parser.add_argument("--digits", type=int, default=4, help="significant digits of floats")
    parser.add_argument("--page", nargs="+", metavar="PAGE", default=[],
                        help="regenerate these results pages' report blocks in place")
    args = parser.parse_args(list(argv))
    if not args.runs and not args.page:
        parser.error("give at least one RUN (or --page PAGE)")
    for page in args.page:
        print(f"wrote {write_results_page(page)}")
    if args.runs:
        table = results_table(load_metrics(args.runs), digits=args.digits)
        if args.out:
            atomic_write_bytes(args.out, (table + "\n").encode())
            print(f"wrote {args.out}")
        else:
            sys.stdout.write(table + "\n")
    return 0


__all__ = ["PROVENANCE", "RunMetrics", "flatten", "load_metrics", "provenance_lines",
           "render_page", "report_main", "results_table", "summary_rows", "write_results_page"]

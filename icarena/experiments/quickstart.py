"""``icarena run quickstart``: a small version of every registered experiment.

This is the job ``make demo`` runs. Each experiment contributes its ``quick_config`` (a tiny
setting; times per experiment: ``docs/results/quickstart.md``); quickstart runs them one after
another into ``out_dir/<experiment>/``, prints a summary table and writes a report linking each
experiment's own report.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from icarena.errors import ConfigError
from icarena.evaluation.report import (
    markdown_table,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.experiments import EXPERIMENTS, experiment_module
from icarena.lifecycle import atomic_write_json, writes_run

NAME = "quickstart"


@dataclass
class Config:
    """Settings of the quickstart job."""

    out_dir: str = "runs/quickstart"
    """Directory for the run; each experiment gets a sub-directory."""
    seed: int = 0
    """Seed passed to every experiment."""
    only: list[str] = field(default_factory=list)
    """Run only these experiments (default: every registered one)."""
    overwrite: bool = False
    """Replace the quickstart run already in out_dir (`make demo` passes it)."""
    resume: bool = False
    """Continue a stopped quickstart: finished experiments run again from their checkpoints."""


@writes_run
def run(cfg: Config) -> dict:
    names = [n for n in EXPERIMENTS if n != NAME]
    unknown = sorted(set(cfg.only) - set(names))
    if unknown:
        raise ConfigError(f"unknown experiment(s) {unknown}; available: {', '.join(names)}")
    if cfg.only:
        names = [n for n in names if n in cfg.only]
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    rows, sections = [], []
    for name in names:
        module = experiment_module(name)
        sub = module.quick_config(str(out / name))
        if hasattr(sub, "seed"):
            sub.seed = cfg.seed
        if hasattr(sub, "resume"):
            sub.resume = cfg.resume and (out / name).exists()
        print(f"[quickstart] {name} ...", flush=True)
        t0 = time.perf_counter()
        result = module.run(sub)
        seconds = time.perf_counter() - t0
        rows.append({
            "experiment": name,
            "seconds": round(seconds, 1),
            "headline": result.get("headline", ""),
            "report": result.get("report", ""),
        })
        if result.get("rows"):
            headers = list(dict.fromkeys(k for r in result["rows"] for k in r))
            table = markdown_table(headers, [[r.get(h, "") for h in headers]
                                             for r in result["rows"]])
            sections.append(f"## {name}\n\n{table}\n\nFull report: `{result.get('report')}`")
    write_metrics(out, {"experiments": rows, **summary_metrics(rows)})
    report = write_report(out, "icarena quickstart", [
        "A small version of every experiment. Numbers here come from tiny settings and are "
        "smoke checks, not the papers' results; run `icarena run NAME` for the real ones.",
        markdown_table(["experiment", "seconds", "headline", "report"],
                       [[r["experiment"], r["seconds"], r["headline"], r["report"]]
                        for r in rows]),
        *sections,
    ])
    return {"report": str(report), "rows": rows}


def quick_config(out_dir: str) -> Config:  # pragma: no cover - quickstart does not nest
    return Config(out_dir=out_dir)

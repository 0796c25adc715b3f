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
from typing import Any

from icarena.errors import ConfigError
from icarena.evaluation.report import (
    markdown_table,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.experiments import EXPERIMENTS, experiment_module
from icarena.lifecycle import atomic_write_json, writes_run
from icarena.pretraining.model import Options

NAME = "quickstart"


GROUPS = ("data", "model", "train", "eval")


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
    data: Options = field(default_factory=dict)
    """Data settings for every experiment whose --data group has them, e.g. --data d 3."""
    model: Options = field(default_factory=dict)
    """Model settings for every experiment whose --model group has them, e.g. --model backbone
    linear (the demo with another backbone)."""
    train: Options = field(default_factory=dict)
    """Training settings for every experiment whose --train group has them, e.g. --train
    device cuda threads 1."""
    eval: Options = field(default_factory=dict)
    """Evaluation settings for every experiment whose --eval group has them."""


def sub_configs(cfg: Config) -> dict[str, Any]:
    """Each chosen experiment's ``quick_config`` under ``out_dir/<name>``, with the seed, the
    resume flag and the group settings of ``cfg`` applied; a setting no experiment has is an
    error (before anything runs)."""
    names = [n for n in EXPERIMENTS if n != NAME]
    unknown = sorted(set(cfg.only) - set(names))
    if unknown:
        raise ConfigError(f"unknown experiment(s) {unknown}; available: {', '.join(names)}")
    if cfg.only:
        names = [n for n in names if n in cfg.only]
    out = Path(cfg.out_dir)
    subs, used = {}, set()
    for name in names:
        sub = experiment_module(name).quick_config(str(out / name))
        if hasattr(sub, "seed"):
            sub.seed = cfg.seed
        if hasattr(sub, "resume"):
            sub.resume = cfg.resume and (out / name).exists()
        for group in GROUPS:
            section = getattr(sub, group, None)
            settings = getattr(cfg, group)
            if not settings or not dataclasses.is_dataclass(section):
                continue
            fields = {f.name for f in dataclasses.fields(section)}
            here = {k: v for k, v in settings.items() if k in fields}
            used |= {(group, k) for k in here}
            setattr(sub, group, dataclasses.replace(section, **here))
        subs[name] = sub
    unused = [f"{g}.{k}" for g in GROUPS for k in getattr(cfg, g) if (g, k) not in used]
    if unused:
        raise ConfigError(f"no chosen experiment has the setting(s) {', '.join(unused)}; see "
                          "`icarena run NAME --help` for each experiment's groups")
    return subs


@writes_run
def run(cfg: Config) -> dict:
    subs = sub_configs(cfg)
    out = Path(cfg.out_dir)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    rows, sections = [], []
    for name, sub in subs.items():
        module = experiment_module(name)
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

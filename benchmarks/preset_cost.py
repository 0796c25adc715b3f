"""Cost of the ``--preset paper`` settings: seconds per training step of each paper-scale model
on this machine, timed over a few steps, and the projected training time of the whole preset.

    python benchmarks/preset_cost.py [--steps 3] [--threads 2] [--write docs/results]

``--write DIR`` also writes DIR/<experiment>/paper-preset-cost.metrics.json (the rows, with the
command, machine, load and date), which the results pages render.

Not a speed target (no ratio): the figures go to docs/results/<experiment>.md as each preset's
cost. The ICGP presets are timed by their own experiment (docs/results/icgp-*.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch


def seconds_per_step(model: torch.nn.Module, task, batch_size: int, steps: int) -> float:
    """Mean wall time of one AdamW step (sample, forward, backward, update), after one warm-up."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = task.loss(model, task.sample_batch(rng, batch_size))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def regression_rows(steps: int) -> list[dict]:
    from icarena.envs.regression import make_family
    from icarena.experiments import regression_families, regression_linear
    from icarena.pretraining.data.regression import RegressionTask
    from icarena.pretraining.model import ModelConfig, SequenceModel

    rows = []
    lin = regression_linear.paper_config()
    fam = regression_families.paper_config()
    cases = [("regression-linear", "linear", lin.data.k, lin, 1)]
    cases += [("regression-families", f, fam.data.k_linear if "linear" in f
               else fam.data.k_nonlinear, fam, 1) for f in fam.data.families]
    for name, family, k, cfg, models in cases:
        m = cfg.model
        model = SequenceModel(ModelConfig(**regression_linear.model_config(
            m.backbone, cfg.data.d, k, m.n_layers, m.d_model, m.n_heads)))
        task = RegressionTask(make_family(family, cfg.data.d), k, n_eval=8)
        s = seconds_per_step(model, task, cfg.train.batch_size, steps)
        rows.append({"preset": f"{name} ({family})", "params": _params(model), "s/step": s,
                     "steps": cfg.train.steps * models})
    return rows


def path_rows(steps: int) -> list[dict]:
    from icarena.evaluation.planning import load_path_dataset
    from icarena.experiments import alpine, blocksworld
    from icarena.pretraining.data import alpine as alpine_data
    from icarena.pretraining.data import blocksworld as bw_data
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.path_lm import PathLMTask, alpine_model_config

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        a = alpine.paper_config()
        alpine_data.generate(alpine_data.Config(**dataclasses.asdict(a.data),
                                                out_dir=os.path.join(tmp, "a")))
        b = blocksworld.paper_config()
        bw_data.generate(bw_data.Config(**dataclasses.asdict(b.data),
                                        out_dir=os.path.join(tmp, "b")))
        cases = [("alpine", os.path.join(tmp, "a"), [a.model.d_model], a)]
        cases += [("blocksworld", os.path.join(tmp, "b"), list(b.model.widths), b)]
        for name, path, widths, cfg in cases:
            data = load_path_dataset(path)
            task = PathLMTask(np.asarray(data.train_tokens))
            for w in widths:
                model = SequenceModel(alpine_model_config(
                    data.n + 2, data.block_size, d_model=w, n_layers=cfg.model.n_layers,
                    n_heads=cfg.model.n_heads))
                s = seconds_per_step(model, task, cfg.train.batch_size, steps)
                rows.append({"preset": f"{name} (width {w})", "params": _params(model),
                             "s/step": s, "steps": cfg.train.steps})
    return rows


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per model")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--write", metavar="DIR", help="write DIR/<experiment>/"
                    "paper-preset-cost.metrics.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {load:.1f}")
    print(f"{'preset (model)':42s} {'params':>10s} {'s/step':>8s} {'steps':>8s} {'hours':>8s}")
    rows = path_rows(args.steps) + regression_rows(args.steps)
    for row in rows:
        row["hours"] = row["s/step"] * row["steps"] / 3600
        print(f"{row['preset']:42s} {row['params']:10,d} {row['s/step']:8.3f} "
              f"{row['steps']:8,d} {row['hours']:8.1f}")
    if args.write:
        load = max(load, os.getloadavg()[0])
        for experiment in dict.fromkeys(r["preset"].split(" ")[0] for r in rows):
            mine = [{"model": r["preset"].split(" ", 1)[1].strip("()"), "params": r["params"],
                     "s/step": round(r["s/step"], 3), "steps": r["steps"],
                     "hours": round(r["hours"], 1)} for r in rows
                    if r["preset"].split(" ")[0] == experiment]
            out = os.path.join(args.write, experiment, "paper-preset-cost.metrics.json")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            record = {
                "source": "measured by benchmarks/preset_cost.py",
                "command": f"python benchmarks/preset_cost.py --steps {args.steps} "
                           f"--threads {args.threads} --write {args.write}",
                "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, {args.threads} "
                           f"torch thread(s), load average up to {load:.1f}, torch "
                           f"{torch.__version__}",
                "date": datetime.date.today().isoformat(),
                "notes": f"training steps only (sampling + forward + backward + AdamW), mean "
                         f"of {args.steps} steps after one warm-up; hours = s/step x steps of "
                         "the preset (every model of the experiment); evaluation not included",
                "rows": mine, "columns": ["model", "params", "s/step", "steps", "hours"]}
            with open(out + ".tmp", "w") as f:
                json.dump(record, f, indent=2)
                f.write("\n")
            os.replace(out + ".tmp", out)
            print(f"wrote {out}")


if __name__ == "__main__":
    main()

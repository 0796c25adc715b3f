"""``icarena run blocksworld``: ALPINE on the 4-block Blocksworld state graph (ALPINE App. F).

Generates the 73-state move graph dataset (80/20 split of ordered pairs, 50,000 acyclic training
lines), trains one 1-layer / 1-head model per width (30, 60, 120), samples completions for
held-out pairs and reports path validity per width next to BFS and random-walk planners, with
the adjacency / reachability probes of each model. Each width's run dir is out_dir/d<width>.

Learning rate: one peak lr does not suit all three widths (the paper notes that smaller widths
learn more slowly, and width 30 does better at a larger lr; ``docs/results/blocksworld.md``). So
the peak lr scales as 1/width (``lr_ref_width``; 2e-3 at width 120, i.e. 8e-3 / 4e-3 / 2e-3), as
μP prescribes for hidden layers; ``--train.lr-ref-width 0`` uses ``train.lr`` for every width.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from icarena.errors import check
from icarena.evaluation.path_eval import PathEval
from icarena.evaluation.planning import load_path_dataset
from icarena.evaluation.report import (
    markdown_table,
    summary_metrics,
    write_metrics,
    write_report,
)
from icarena.experiments import path_planning as pp
from icarena.lifecycle import writes_run
from icarena.pretraining.data import blocksworld as bw_data
from icarena.pretraining.model import ModelSpec
from icarena.pretraining.train import TrainConfig


@dataclass
class WidthsModel(ModelSpec):
    """The models: one per width, each ALPINE's 1-layer / 1-head model at that width."""

    d_model: int = 0
    """Not used here (each model's width is one of --model.widths); leave it at 0."""
    n_layers: int = 1
    """Backbone blocks (ALPINE: 1)."""
    n_heads: int = 1
    """Attention heads (ALPINE: 1)."""
    widths: list[int] = field(default_factory=lambda: [30, 60, 120])
    """Embedding sizes to train, one model each (ALPINE: 30, 60, 120)."""


@dataclass
class WidthScaledTrain(TrainConfig):
    """Optimisation, shared by every width except the peak lr (see lr_ref_width)."""

    lr_ref_width: int = 120
    """Width at which lr is the peak lr; a width w trains at lr * lr_ref_width / w (and min_lr
    likewise): lr ∝ 1/width, as for hidden layers under μP. 0: lr for every width."""

    def at_width(self, width: int, seed: int) -> TrainConfig:
        """The plain TrainConfig of the model of width ``width``."""
        scale = self.lr_ref_width / width if self.lr_ref_width else 1.0
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        return dataclasses.replace(TrainConfig(**plain), seed=seed, lr=self.lr * scale,
                                   min_lr=self.min_lr * scale)


def default_train() -> WidthScaledTrain:
    return WidthScaledTrain(steps=4000, batch_size=256, lr=2e-3, min_lr=2e-4, warmup_steps=200,
                            weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0,
                            eval_every=250, ckpt_every=500, log_every=25, threads=2,
                            lr_ref_width=120)


@dataclass
class Config:
    """ALPINE Blocksworld: one model per width, path validity on held-out state pairs.

    --preset paper: the paper's scale (paper_config); flags given beside it override it.
    """

    out_dir: str = "runs/blocksworld"
    """Run directory (dataset in out_dir/data, one run dir per width in out_dir/d<width>)."""
    seed: int = 0
    """Seed of the dataset, initialisations, batches and sampling."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished) with the same settings."""
    data: bw_data.Spec = field(default_factory=bw_data.Spec)
    """Dataset (written to out_dir/data with the seed above)."""
    model: WidthsModel = field(default_factory=WidthsModel)
    """The models (one per entry of widths; d_model is not used)."""
    train: WidthScaledTrain = field(default_factory=default_train)
    """Optimisation, shared by every width except the peak lr (see lr_ref_width)."""
    eval: PathEval = field(default_factory=PathEval)
    """Evaluation protocol (sampled with the seed above)."""


@writes_run
def run(cfg: Config) -> dict:
    widths = cfg.model.widths
    check(len(widths) >= 1 and all(w >= 1 for w in widths),
          f"model.widths must be a non-empty list of positive sizes, got {widths}")
    check(cfg.model.d_model == 0, f"blocksworld trains one model per entry of --model.widths; "
                                  f"set those instead of --model.d-model ({cfg.model.d_model})")
    check(cfg.train.lr_ref_width >= 0,
          f"train.lr_ref_width must be >= 0 (0: one lr), got {cfg.train.lr_ref_width}")
    out = Path(cfg.out_dir)
    gen = bw_data.Config(**dataclasses.asdict(cfg.data), out_dir=str(out / "data"),
                         seed=cfg.seed)
    cfg.eval.validate()
    t0 = time.perf_counter()
    pp.prepare_dataset(gen, bw_data.generate)
    data = load_path_dataset(gen.out_dir)
    rows, sections, per_width = [], [], {}
    for width in widths:
        spec = ModelSpec(backbone=cfg.model.backbone, d_model=width,
                         n_layers=cfg.model.n_layers, n_heads=cfg.model.n_heads,
                         options=dict(cfg.model.options))
        train_cfg = cfg.train.at_width(width, cfg.seed)
        result = pp.run_path_experiment(
            out / f"d{width}", data, cfg, spec, train_cfg,
            title=f"ALPINE Blocksworld, width {width}",
            setting=f"Blocksworld, {gen.blocks} blocks, ops {gen.ops}", t0=time.perf_counter(),
            check_degrees=False,
        )
        per_width[width] = result
        model_row = result["rows"][0]
        rows.append({"width": width, "lr": train_cfg.lr, "path validity": model_row["overall"],
                     "BFS": result["rows"][1]["overall"],
                     "random walk": result["rows"][2]["overall"]})
        sections.append(f"- width {width}: [report](d{width}/report.md)")
    ok = all(r["path validity"] >= 0.95 for r in rows)
    write_metrics(out, {"per_width": rows, "seconds_total": time.perf_counter() - t0,
                        **summary_metrics(rows)})
    report = write_report(out, "ALPINE Blocksworld (4 blocks, move graph)", [
        f"Dataset: {data.n} states, {data.graph.number_of_edges()} directed edges, "
        f"{len(data.test_pairs)} held-out pairs, {len(data.train_tokens)} training lines.",
        markdown_table(["width", "peak lr", "path validity", "BFS", "random walk"],
                       [[r["width"], f"{r['lr']:.3g}", r["path validity"], r["BFS"],
                         r["random walk"]] for r in rows], digits=3),
        f"Claim (ALPINE App. F): >= 0.95 of sampled plans valid on held-out pairs at every "
        f"width: {'holds' if ok else 'does not hold'}.",
        "\n".join(sections),
    ])
    return {"report": str(report), "rows": rows,
            "headline": ", ".join(f"d{r['width']}: {r['path validity']:.3f}" for r in rows)}


def quick_config(out_dir: str) -> Config:
    """One width (60), 3,000 lines, 800 steps, for quickstart / tests."""
    return Config(
        out_dir=out_dir,
        data=bw_data.Spec(lines=3000),
        model=WidthsModel(widths=[60]),
        train=dataclasses.replace(default_train(), steps=800, batch_size=128, lr=3e-3,
                                  warmup_steps=40, eval_every=400, ckpt_every=800,
                                  lr_ref_width=0),
        eval=PathEval(n_prompts=100, samples_per_prompt=2),
    )


def paper_config() -> Config:
    """ALPINE App. F's Blocksworld run (Wang et al. 2024, arXiv 2405.09220): 4 blocks, 80/20
    pairs, 50,000 lines, 1-layer / 1-head models of width 30, 60, 120, with ALPINE's optimiser
    (batch 1024, lr 5e-4 for every width, cosine to 5e-5) over the 3,000 iterations its training
    curves span. Cost: ``docs/results/blocksworld.md``."""
    return Config(train=dataclasses.replace(
        default_train(), steps=3000, batch_size=1024, lr=5e-4, min_lr=5e-5, warmup_steps=150,
        lr_ref_width=0))


PRESETS = {"paper": paper_config}
"""``--preset NAME``: settings at another scale ('cpu', the defaults above, is implied)."""

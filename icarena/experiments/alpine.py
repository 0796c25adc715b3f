"""``icarena run alpine``: ALPINE path-finding on a random DAG, end to end.

Generates the dataset (n = 100 by default; ``--data.nodes 200`` or ``500`` for the larger
graphs), trains the 1-layer / 1-head / width-120 nanoGPT model that ALPINE (Wang et al. 2024,
arXiv 2405.09220) analyses, samples 1,000 test prompts x 10 completions at temperature 1, and
reports path validity overall and per degree (0, 1, 2, >= 3) next to BFS and random-walk planners
on the same pairs, the probes of the learned adjacency / reachability over training, a heatmap of
both, and a failures file.

Paper settings (ALPINE code): batch 1024, 10,000 iterations, lr 5e-4. The CPU default trains
fewer sequences (see ``TrainConfig`` defaults below); ``--train.steps 10000
--train.batch-size 1024`` is the paper's budget.

The report checks ALPINE's transitivity finding (accuracy at degree 2 at least 20 points below
degree 1) and states whether it holds. Measured numbers, with their command, seeds and machine:
``docs/results/alpine.md``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from icarena.evaluation.path_eval import PathEval
from icarena.evaluation.planning import load_path_dataset
from icarena.experiments import path_planning as pp
from icarena.lifecycle import writes_run
from icarena.pretraining.data import alpine as alpine_data
from icarena.pretraining.model import ModelSpec
from icarena.pretraining.path_lm import alpine_model, path_train_config
from icarena.pretraining.train import TrainConfig


def default_train() -> TrainConfig:
    """The path track's recommended settings (:func:`icarena.pretraining.path_train_config`),
    probing every 250 steps on 2 threads."""
    return path_train_config().replace(eval_every=250, threads=2)


@dataclass
class Config:
    """ALPINE on a random DAG: generate, pretrain, sample, score per degree, probe.

    --preset paper: the paper's scale (paper_config); flags given beside it override it.
    """

    out_dir: str = "runs/alpine"
    """Run directory (the dataset goes to out_dir/data)."""
    seed: int = 0
    """Seed of the dataset, the initialisation, the batches and the sampling."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished) with the same settings."""
    data: alpine_data.Spec = field(default_factory=alpine_data.Spec)
    """Dataset (written to out_dir/data with the seed above)."""
    model: ModelSpec = field(default_factory=alpine_model)
    """The model (ALPINE: 1 layer, 1 head, width 120; up to 6 layers / heads), built causal over
    the dataset's block size with tied embeddings and no biases (nanoGPT as in ALPINE)."""
    train: TrainConfig = field(default_factory=default_train)
    """Optimisation (eval_every = how often the probes are logged)."""
    eval: PathEval = field(default_factory=PathEval)
    """Evaluation protocol (sampled with the seed above)."""


@writes_run
def run(cfg: Config) -> dict:
    out = Path(cfg.out_dir)
    gen = alpine_data.Config(**dataclasses.asdict(cfg.data), out_dir=str(out / "data"),
                             seed=cfg.seed)
    train_cfg = dataclasses.replace(cfg.train, seed=cfg.seed)
    cfg.eval.validate()
    t0 = time.perf_counter()
    pp.prepare_dataset(gen, alpine_data.generate)
    return pp.run_path_experiment(
        out, load_path_dataset(gen.out_dir), cfg, cfg.model, train_cfg, title="ALPINE path-finding",
        setting=f"random DAG, n = {gen.nodes}, p = {gen.p}, {gen.paths_per_pair} paths per "
                f"train pair, train fraction {gen.train_fraction}", t0=t0,
    )


def quick_config(out_dir: str) -> Config:
    """A small run (n = 30, 600 steps) for quickstart and tests."""
    return Config(
        out_dir=out_dir,
        data=alpine_data.Spec(nodes=30, p=0.15, paths_per_pair=5),
        model=dataclasses.replace(alpine_model(), d_model=64),
        train=dataclasses.replace(default_train(), steps=600, batch_size=64, lr=3e-3,
                                  warmup_steps=30, eval_every=200, ckpt_every=600),
        eval=PathEval(n_prompts=100, samples_per_prompt=2),
    )


def paper_config() -> Config:
    """ALPINE's own budget (Wang et al. 2024, arXiv 2405.09220, the authors' nanoGPT settings):
    n = 100, the 1-layer / 1-head / width-120 model, 10,000 iterations of batch 1024, AdamW lr
    5e-4 with betas (0.9, 0.95), weight decay 0.1, clipping 1.0, warm-up over max_iters / 20 then
    cosine to 5e-5. Cost: ``docs/results/alpine.md``."""
    return Config(train=dataclasses.replace(
        default_train(), steps=10_000, batch_size=1024, lr=5e-4, min_lr=5e-5, warmup_steps=500,
        eval_every=500, ckpt_every=500))


PRESETS = {"paper": paper_config}
"""``--preset NAME``: settings at another scale ('cpu', the defaults above, is implied)."""

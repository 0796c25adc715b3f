"""``icarena run icgp-centralized``: an in-context VI-ULCB player of Markov games (ICGP §5).

Shi et al. 2024, "Transformers as Game Players", centralized experiment: one transformer over the
joint stream (s, a, b, r) outputs a distribution over the A·B joint actions at every (h, s); it is
pretrained to imitate VI-ULCB with an MWU coarse-correlated-equilibrium subroutine (ICGP Alg. 1–2;
:func:`icarena.agents.games.run_viulcb`, bonus constant c = 0.02 -- the games helper's tuned
default) on N = 10, 20 and a larger N pretraining games (H = 2, S = 4, A = B = 5, Dirichlet(1)
transitions, s_1 = 0: the documented icarena reconstruction of the paper's unknown transition
rule). On 10 held-out games it reports the Nash gap of the correlated policy's marginals --
per-episode and state-wise averaged -- vs episodes, next to VI-ULCB on the same games with the
same seeds, and uniform play.

Model: a 2-layer width-32 GPT over the ``slot`` step tokens with the **per-state query
read-out** (``--read-out query``, :class:`icarena.pretraining.readouts.QueryReadOut`): one
causal attention query per (h, s) averages learned values over the history, and an MLP shared by
the 8 states maps each state's summary (and the other states' short summaries, for the
next-state values) to its 25 joint-action logits. N = 10, 20 and **1,000** pretraining games, one
VI-ULCB trajectory each.

CPU default vs paper: the paper uses K = 300 episodes (T = 600 tokens). The default here is
**K = 150** (T = 300) so that three models, the VI-ULCB data and the evaluation fit in 30 minutes
on 2 CPU cores; ``--episodes 300`` is the paper's setting (about 2x the time per step; not
measured). Every number below is at K = 150. Stages, outputs and the acceptance checks are those
of :mod:`icarena.experiments.icgp_decentralized` (shared driver :func:`run_icgp`).

Measured (10 held-out games, eval seed 1000; final averaged-policy Nash gap, ratio to VI-ULCB's
on the same games with the same seeds; VI-ULCB 0.375 at seed 0, 0.373 at seed 1; uniform 0.615):

* **GPU setting** (meets the 1.1x bar; 4,000 games x 8,000 steps of batch 32, read-out hidden
  128 / head_dim 32; 3 min for the N = 4,000 model on one H100, 1 min of it VI-ULCB data)::

    icarena run icgp-centralized --n-values 10 20 4000 --data-workers 8 \\
        --read-out-cfg '{"hidden": 128, "head_dim": 32}' --train.steps 8000 \\
        --train.batch-size 32 --train.warmup-steps 200 --train.device cuda

  N = 4,000: gap 0.389 (ratio **1.036**, held-out KL(VI-ULCB ‖ TF) 0.069) at seed 0, 0.394
  (**1.056**, KL 0.066) at seed 1. N = 10 / 20 (measured at 6,000 steps, ``--data-workers 3``):
  0.620 / 0.632 at seed 0, 0.663 / 0.645 at seed 1 (ratios 1.65-1.78, held-out KL 0.59-0.72):
  10 or 20 trajectories are memorised and play no better than uniform. Fewer steps or games:
  N = 4,000 x 6,000 steps 1.042 (seed 0) / 1.108 (seed 1); width 64: 1.077; 3 layers x 3,000
  steps: 1.162; N = 1,000 x 6,000 steps: 1.106.
* **CPU default** (2,000 steps of batch 16, read-out hidden 64 / head_dim 16, seed 0; 19.9 min
  on an idle 2-core box): gap 0.634 / 0.648 / 0.479 for N = 10 / 20 / 1,000, ratios 1.69 /
  1.73 / **1.27**, held-out KL 0.68 / 0.66 / 0.24 (seed 1, 20.7 min: 0.648 / 0.650 / 0.486,
  ratios 1.74 / 1.74 / 1.30). The N = 1,000 model is clearly better than
  uniform play and than N = 10, but the 1.1x bar is **not** met within the CPU budget (the GPU
  setting trains on 8x more sequences with a larger read-out); the same CPU budget with the
  larger read-out at 1,500 steps gave 1.30.
* Why the per-state read-out (all at seed 0): with the digest's single ``Linear(d → 200)``
  read-out the joint model never left uniform play -- 2 layers of width 32 at 400 steps: ratios
  1.72 / 1.65 / 1.65 for N = 10 / 20 / 100; 4 layers of width 128 for 3,000 steps of batch 32 on
  a GPU: held-out KL 0.60 (uniform's is 0.35), ratios 1.60-1.70; N = 1,000 at width 32 or 64:
  KL 0.30, ratio 1.60; the ``cell`` and ``slot_policy`` tokens changed nothing. With the query
  read-out the same CPU budget at N = 1,000 (1,500 steps) gives KL 0.23 and ratio 1.30. VI-ULCB's
  policy at a state is a function of that state's 25 joint-action counts and mean rewards (and
  the next states' values); one width-32 position cannot hold those for all 8 states at once.
  Even given them exactly, the map is slow to learn: an MLP from a last-step state's exact counts
  and mean rewards to VI-ULCB's policy there reaches held-out KL 0.35 (then overfits) from 100
  games, 0.21 from 1,000 and 0.14 from 3,000 (uniform 0.60): hence thousands of games.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from icarena.evaluation.icgp import GamesEval
from icarena.experiments import icgp_decentralized
from icarena.experiments.icgp_decentralized import IcgpData, acceptance_checks, run_icgp
from icarena.lifecycle import writes_run
from icarena.pretraining.game_lm import GameModel, GameTrainConfig


def _data() -> IcgpData:
    return IcgpData(H=2, S=4, A=5, B=5, episodes=150, n_values=(10, 20, 1000),
                    trajectories_per_game=1, context="viulcb", workers=2)


def _model() -> GameModel:
    return GameModel(backbone="gpt", d_model=32, n_layers=2, n_heads=4, embedding="slot",
                     read_out="query", read_out_options={"hidden": 64, "head_dim": 16})


def _train_cfg() -> GameTrainConfig:
    return GameTrainConfig(steps=2000, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                           weight_decay=1e-4, eval_every=0, ckpt_every=500, log_every=25,
                           progress=False, labels="soft", stream_workers=1)


@dataclass
class Config(icgp_decentralized.Config):
    """ICGP centralized experiment (H=2, S=4, A=B=5 Markov games, VI-ULCB context).

    Same fields as the decentralized experiment's config; only the defaults below differ.
    """

    out_dir: str = "runs/icgp-centralized"
    """Output directory (one sub-dir per N, plus report.md, metrics.json, PNGs)."""
    data: IcgpData = field(default_factory=_data)
    """Games (H=2, S=4, A=B=5 Markov games), the VI-ULCB context (--data.context-options c 0.05
    mwu_iters 100), K (paper: 300; CPU default 150), trajectories per game, the values of N and
    the processes generating the trajectories (chunk c from seed branch [seed, c])."""
    model: GameModel = field(default_factory=_model)
    """The joint model ('slot' token, per-state 'query' read-out; the GPU setting uses
    --model.read-out-options hidden 128 head_dim 32, the read-out's own defaults)."""
    train: GameTrainConfig = field(default_factory=_train_cfg)
    """Optimisation settings of every model (--train.steps, --train.threads, ...)."""


SETTING = "centralized"


def quick_config(out_dir: str) -> Config:
    """A tiny run (a few seconds per model; not expected to meet the acceptance bar)."""
    return Config(out_dir=out_dir,
                  data=dataclasses.replace(_data(), episodes=10, n_values=(2, 4),
                                           trajectories_per_game=1,
                                           context_options={"mwu_iters": 20}, workers=1),
                  model=dataclasses.replace(_model(), d_model=16, n_layers=1, n_heads=2,
                                            read_out_options={"hidden": 32, "head_dim": 8}),
                  train=GameTrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=2,
                                        ckpt_every=20, log_every=5, progress=False),
                  eval=GamesEval(n_games=3))


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Pretrain one joint model per N, evaluate on the held-out games, write the report."""
    return run_icgp(cfg, SETTING,
                    title="ICGP centralized: in-context VI-ULCB players of Markov games")


__all__ = ["Config", "acceptance_checks", "quick_config", "run"]

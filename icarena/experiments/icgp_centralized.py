"""``icarena run icgp-centralized``: an in-context VI-ULCB player of Markov games (ICGP §5).

Shi et al. 2024, "Transformers as Game Players" (arXiv 2410.09701), centralized experiment: one
transformer over the joint stream (s, a, b, r) outputs a distribution over the A·B joint actions at
every (h, s); it is pretrained to imitate VI-ULCB with an MWU coarse-correlated-equilibrium
subroutine (ICGP Alg. 1–2; :func:`icarena.agents.games.run_viulcb`, bonus constant c = 0.02 -- the
games helper's tuned default) on N = 10, 20 and a larger N pretraining games (H = 2, S = 4, A=B=5,
Dirichlet(1) transitions, s_1 = 0: the documented icarena reconstruction of the paper's unknown
transition rule). On 10 held-out games it reports the Nash gap of the correlated policy's marginals
-- per-episode and state-wise averaged -- vs episodes, next to VI-ULCB on the same games with the
same seeds, and uniform play.

Model: a 2-layer width-32 GPT over the ``slot`` step tokens with the **cells read-out**
(``--model.read-out cells``, :class:`icarena.pretraining.readouts.CellReadOut`): per (h, s),
causal attention with learned scores averages fixed per-joint-action-cell values of the step
tokens (was the cell played, its reward, which state followed), and a head that treats the 25
cells of a state alike (4 layers exchangeable over the max player's and the min player's
actions, run H times so a state's logits see the next states' values) gives each cell its logit.
N = 10, 20 and **4,000** pretraining games, one VI-ULCB trajectory each; 1,500 steps of batch 16
with the loss at 32 random positions of each batch (``--train.positions``; the read-out runs
there only).

CPU default vs paper: the paper uses K = 300 episodes (T = 600 tokens). The default here is
**K = 150** (T = 300) so that three models, the VI-ULCB data and the evaluation fit in half an
hour on 2 CPU cores; ``--preset paper`` is the paper's scale (K = 300, N = 10 and 20, batch 32,
lr 5e-4, 100 epochs; cost in ``docs/results/icgp-centralized.md``). The trajectories of a
dataset are generated in 2 parts (``--data.chunks 2``, the data of the recorded results),
``--data.workers`` processes at once.
Stages, outputs and the acceptance checks are those of
:mod:`icarena.experiments.icgp_decentralized` (shared driver :func:`run_icgp`).

Why the cells read-out: VI-ULCB's policy at a state is an equilibrium of that state's
optimistic and pessimistic Q matrices, built from its 25 cells' visit counts, mean rewards and
next-state values. With one linear read-out of every state from the last position the joint
model never left uniform play; the per-state query read-out (``--model.read-out query``) left
it but needed a GPU budget (4,000 games, 8,000 steps of batch 32) to come within 1.1x of
VI-ULCB. That equilibrium map does not change when the actions are renumbered; a head with the
same symmetry learns one rule for all 25 cells and 8 states instead of each separately, and
comes to about that ratio on 2 CPU cores. The head has 4 grid layers rather than 2: the
equilibrium is the end of MWU's iterations over the cells' values, and each layer is one more
round of rows and columns seeing each other's means; at the same cost per step the deeper head
imitates VI-ULCB more closely and plays with a margin under 1.1x rather than at it. With 10 or
20 games the trajectories are memorised.
Measured gaps, ratios and the variants tried, with commands, seeds and machines:
``docs/results/icgp-centralized.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from icarena.evaluation.icgp import GamesEval
from icarena.experiments import icgp_decentralized
from icarena.experiments.icgp_decentralized import (
    IcgpData,
    acceptance_checks,
    apply_preset,
    run_icgp,
)
from icarena.lifecycle import writes_run
from icarena.pretraining.data import games as games_data
from icarena.pretraining.game_lm import GameModel, GameTrainConfig


def _data() -> IcgpData:
    return IcgpData(H=2, S=4, A=5, B=5, episodes=150, n_values=(10, 20, 4000),
                    trajectories_per_game=1, context="viulcb", chunks=2, workers=2)


def _model() -> GameModel:
    return GameModel(backbone="gpt", d_model=32, n_layers=2, n_heads=4, embedding="slot",
                     read_out="cells", read_out_options={"width": 16, "layers": 4})


def _train_cfg() -> GameTrainConfig:
    return GameTrainConfig(steps=1500, batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                           weight_decay=1e-4, eval_every=0, ckpt_every=500, log_every=25,
                           progress=False, labels="soft", stream_workers=1, positions=32)


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
    """The joint model ('slot' token, per-state and per-cell 'cells' read-out: width 16, 4 grid
    layers)."""
    train: GameTrainConfig = field(default_factory=_train_cfg)
    """Optimisation settings of every model (--train.steps, --train.positions,
    --train.threads, ...)."""


SETTING = "centralized"


def quick_config(out_dir: str) -> Config:
    """A tiny run (a few seconds per model; not expected to meet the acceptance bar)."""
    return Config(out_dir=out_dir,
                  data=dataclasses.replace(_data(), episodes=10, n_values=(2, 4),
                                           trajectories_per_game=1,
                                           context_options={"mwu_iters": 20}, chunks=1,
                                           workers=1),
                  model=dataclasses.replace(_model(), d_model=16, n_layers=1, n_heads=2,
                                            read_out_options={"width": 8}),
                  train=GameTrainConfig(steps=20, batch_size=4, lr=3e-3, warmup_steps=2,
                                        ckpt_every=20, log_every=5, progress=False,
                                        positions=8),
                  eval=GamesEval(n_games=3))


@writes_run
def run(cfg: Config) -> dict[str, Any]:
    """Pretrain one joint model per N, evaluate on the held-out games, write the report."""
    cfg = apply_preset(cfg, Config(), games_data.PAPER_EPISODES[SETTING])
    return run_icgp(cfg, SETTING,
                    title="ICGP centralized: in-context VI-ULCB players of Markov games")


__all__ = ["Config", "acceptance_checks", "quick_config", "run"]

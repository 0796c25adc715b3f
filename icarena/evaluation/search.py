"""``icarena evaluate search``: the S3-style search on a trained supernet.

Reads a supernet run dir (``icarena pretrain supernet``, or ``RUN/supernet`` of ``icarena run
search``), rebuilds its task and validation prompts from the recorded settings, and runs the
evolutionary search, the random-search control and the extraction of the winner
(:func:`icarena.pretraining.search.search_trained`) into its own directory (``RUN/eval`` by
default). With the run's seed and prompts (the defaults) it repeats the search that ``icarena run
search`` made; ``--compare.steps N`` adds the from-scratch comparison with a hand-set GPT.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from icarena.errors import check
from icarena.lifecycle import claim_run, eval_out_dir
from icarena.pretraining.model import load_model
from icarena.pretraining.search import (
    Comparison,
    Evolution,
    SearchConfig,
    SearchData,
    SearchEval,
    SearchModel,
    SearchTrain,
    SupernetProblem,
    search_trained,
)


@dataclass
class Prompts:
    """Validation (fitness) and test prompts; None keeps the run's setting."""

    n_val: int | None = None
    """Validation prompts (the search's fitness)."""
    n_test: int | None = None
    """Held-out test prompts (reported for the winners only)."""
    test_seed: int | None = None
    """Seed of the test prompts."""


@dataclass
class EvalConfig:
    """Search the sub-networks of a trained supernet (``icarena pretrain supernet``, or the
    ``supernet/`` dir of ``icarena run search``) and extract the winner."""

    run_dir: str = "runs/supernet"
    """The supernet's run dir."""
    out_dir: str = ""
    """Where to write search.json, report.md and winner/ ('' = run_dir/eval); the run's own
    files are never changed."""
    overwrite: bool = False
    """Replace an earlier search in out_dir."""
    seed: int | None = None
    """Seed of the validation prompts and the evolution (None: the run's seed, which repeats the
    search of `icarena run search`)."""
    eval: Prompts = field(default_factory=Prompts)
    """Validation and test prompts (by default the run's)."""
    search: Evolution = field(default_factory=Evolution)
    """The evolutionary search."""
    retrain_steps: int = 0
    """Steps to retrain the extracted winner from its inherited weights (0: none)."""
    compare: Comparison = field(default_factory=lambda: Comparison(steps=0))
    """Retrain the winners from scratch next to a hand-set GPT (steps 0: no comparison)."""


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """``icarena evaluate search``: writes search.json, report.md and winner/ to out_dir."""
    model, config = load_model(cfg.run_dir)
    recorded = config.get("pretrain") or config.get("search")
    check(isinstance(recorded, dict) and "data" in recorded and "model" in recorded,
          f"{cfg.run_dir} is not a supernet run (its config.json has no supernet settings); pass "
          "a run of `icarena pretrain supernet` or RUN/supernet of `icarena run search`")
    check(model.cfg.backbone == "supernet", f"{cfg.run_dir} holds a {model.cfg.backbone!r} "
          "model, not a supernet")
    run_cfg = SearchConfig(
        seed=recorded["seed"] if cfg.seed is None else cfg.seed,
        data=SearchData(**recorded["data"]),
        model=SearchModel(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in recorded["model"].items()}),
        train=dataclasses.replace(SearchTrain(**recorded["train"]),
                                  retrain_steps=cfg.retrain_steps),
        eval=SearchEval(**{**recorded["eval"], **{k: v for k, v in dataclasses.asdict(
            cfg.eval).items() if v is not None}}), search=cfg.search, compare=cfg.compare)
    run_cfg.validate()
    out = eval_out_dir(cfg.run_dir, cfg.out_dir)
    with claim_run(out, overwrite=cfg.overwrite, resumable=False):
        results = search_trained(SupernetProblem(run_cfg, model), run_cfg, out, cfg.run_dir)
    return results

"""In-context regression from Python: train a regressor on your own function family or prompt
sampler and predict with it.

:func:`train_regressor` trains a causal read-in -> backbone -> read-out model on prompts
``(x_1, y_1, ..., x_k, y_k)`` (Garg et al. 2022, arXiv 2208.01066; token format in
:mod:`icarena.pretraining.data.regression`) drawn fresh every step from a function family
(:func:`icarena.envs.regression.make_family`) or from one's own sampler ``(rng, n, k) -> (x, y)``,
with the regression track's recommended settings
(:func:`~icarena.pretraining.data.regression.regression_train_config`), through the same recipe
as ``icarena pretrain regression`` (:func:`fit_regression_model`). It returns an
:class:`InContextRegressor`: ``predict(xs, ys, x_query)`` has the signature of the classical
baselines in :mod:`icarena.agents.regression` (so it goes wherever they go), and ``save(dir)`` /
``InContextRegressor.load(dir)`` use the run-dir format of the command line.

Example::

    from icarena.envs.regression import make_family
    from icarena.pretraining import InContextRegressor, TrainConfig, train_regressor
    reg = train_regressor(make_family("linear", 3), k=8, train=TrainConfig(steps=500))
    reg.predict(xs, ys, x_query)        # (P, n, 3), (P, n), (P, m, 3) -> (P, m)
    reg.save("runs/my-regressor"); InContextRegressor.load("runs/my-regressor")
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from icarena.envs.regression.families import Family, make_family
from icarena.errors import ConfigError, check
from icarena.pretraining.data.regression import (
    RegressionTask,
    Sampler,
    prefix_predictions_of,
    regression_train_config,
)
from icarena.pretraining.model import ModelConfig, ModelSpec, SequenceModel, load_model
from icarena.pretraining.train import TrainConfig, TrainResult


def regression_model_config(spec: ModelSpec, d: int, k: int) -> ModelConfig:
    """The ModelConfig of an in-context regression model: ``spec``'s backbone and size, causal
    over the 2k tokens of a k-point prompt, a Linear read-in of width ``d`` and one output."""
    return ModelConfig(backbone=spec.backbone,
                       backbone_cfg=spec.backbone_cfg(causal=True, max_len=2 * int(k)),
                       input_kind="vectors", input_dim=int(d), output_dim=1)


def task_record(task: RegressionTask) -> dict[str, Any]:
    """What a regression run records of its task (config.json ``task``)."""
    if task.family is not None:
        return {"family": task.family.to_dict(), "k": task.k}
    name = getattr(task.sampler, "__qualname__", type(task.sampler).__name__)
    return {"sampler": f"{getattr(task.sampler, '__module__', '?')}.{name}", "d": task.d,
            "k": task.k, "normaliser": task.normaliser}


def fit_regression_model(
    task: RegressionTask, *, model: ModelSpec | None = None, train: TrainConfig | None = None,
    seed: int = 0, out_dir: str | os.PathLike | None = None,
    config: dict[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
) -> tuple[SequenceModel, TrainResult]:
    """Build a regression model for ``task`` (:func:`regression_model_config`) and train it:
    the one recipe behind :func:`train_regressor`, ``icarena pretrain regression`` and the
    regression experiments.

    ``seed`` seeds the initialisation and the prompt stream (it replaces ``train.seed``);
    ``out_dir=None`` trains in memory; ``config`` is recorded in config.json (its ``task``
    section, if any, replaces :func:`task_record`). Returns the model (eval mode) and the
    Trainer's result.
    """
    from icarena.pretraining.train import seed_everything
    from icarena.pretraining.train import train as run_train

    spec = ModelSpec() if model is None else model
    train_cfg = dataclasses.replace(regression_train_config() if train is None else train,
                                    seed=seed)
    train_cfg.validate()
    seed_everything(seed)
    mcfg = regression_model_config(spec, task.d, task.k)
    net = SequenceModel(mcfg)
    full = {"task": task_record(task), **(config or {}), "model": dataclasses.asdict(mcfg)}
    result = run_train(net, task, train_cfg, out_dir, config=full, resume=resume,
                       overwrite=overwrite)
    return net.eval(), result


def _as_batch(a: Any, ndim: int, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == ndim - 1:
        return arr[None], True
    check(arr.ndim == ndim, f"{name} must have {ndim - 1} or {ndim} dims, got shape {arr.shape}",
          fields=name)
    return arr, False


class InContextRegressor:
    """A trained in-context regression model.

    Args:
        model: a causal :class:`~icarena.pretraining.SequenceModel` with vector inputs of width
            d and one output, over 2k tokens (from :func:`train_regressor` or
            :func:`~icarena.pretraining.load_model`).
        config: the run's config (what ``save`` writes to config.json).

    Attributes: ``model``, ``d`` (input dimension), ``k`` (most points per prompt, the query
    included), ``config``, ``result`` (the Trainer's result after :func:`train_regressor`).
    """

    def __init__(self, model: SequenceModel, config: dict[str, Any] | None = None) -> None:
        check(model.cfg.input_kind == "vectors" and model.cfg.output_dim == 1,
              "an in-context regressor needs a model with vector inputs and one output "
              f"(got input_kind={model.cfg.input_kind!r}, output_dim={model.cfg.output_dim})",
              fields="model")
        self.model = model.eval()
        self.d = int(model.cfg.input_dim)
        self.k = int(model.backbone.config.max_len) // 2
        self.config = dict(config or {})
        self.result: TrainResult | None = None

    def predict(self, xs: np.ndarray, ys: np.ndarray, x_query: np.ndarray) -> np.ndarray:
        """Predict ``y`` at each query point from the context points, per prompt.

        Args:
            xs: (P, n, d) context inputs; ys: (P, n) their labels; x_query: (P, m, d) query
                points (each predicted from the n context points alone). Unbatched
                ``(n, d), (n,), (m, d)`` is accepted too; n + 1 <= k.
        Returns:
            float64 (P, m) (or (m,) unbatched): the signature of the baselines in
            :mod:`icarena.agents.regression`.
        """
        xs, single = _as_batch(xs, 3, "xs")
        ys, _ = _as_batch(ys, 2, "ys")
        xq, _ = _as_batch(x_query, 3, "x_query")
        P, n, d = xs.shape
        check(d == self.d, f"xs must have d = {self.d} features, got {d}", fields="xs")
        check(ys.shape == (P, n), f"ys must be (P, n) = {(P, n)}, got {ys.shape}", fields="ys")
        check(xq.shape[0] == P and xq.shape[2] == d,
              f"x_query must be (P={P}, m, d={d}), got {xq.shape}", fields="x_query")
        check(n + 1 <= self.k, f"the model reads at most k = {self.k} points (context + query); "
                               f"got n = {n} context points", fields="xs")
        m = xq.shape[1]
        x = np.concatenate([np.repeat(xs, m, axis=0), xq.reshape(P * m, 1, d)], axis=1)
        y = np.concatenate([np.repeat(ys, m, axis=0), np.zeros((P * m, 1))], axis=1)
        out = prefix_predictions_of(self.model, x, y)[:, n].reshape(P, m)
        return out[0] if single else out

    __call__ = predict

    def predict_prefixes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Predictions (P, k') float64 on whole prompts x (P, k', d), y (P, k'), k' <= k: entry
        i predicts y_i from the i points before it (one forward pass; what
        :func:`icarena.evaluation.evaluate_regressors` scores)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        check(x.ndim == 3 and y.shape == x.shape[:2] and x.shape[2] == self.d,
              f"x must be (P, k, d={self.d}) and y (P, k); got {x.shape} and {y.shape}",
              fields="x")
        check(x.shape[1] <= self.k, f"prompts hold at most k = {self.k} points, got "
                                    f"{x.shape[1]}", fields="x")
        return prefix_predictions_of(self.model, x, y)

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the run dir ``out_dir`` (``config.json`` + ``model.safetensors``, the format of
        ``icarena pretrain regression``); returns its path."""
        from icarena.pretraining.planner import save_run

        return save_run(out_dir, self.model, self.config, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> InContextRegressor:
        """Load a regressor saved by :meth:`save`, a run of ``icarena pretrain regression`` or
        of ``icarena run regression-linear``."""
        model, config = load_model(run_dir)
        return cls(model, config)

    def family(self) -> Family | None:
        """The function family the run was trained on (None for a sampler)."""
        return run_family(self.config)


def run_family(config: dict[str, Any]) -> Family | None:
    """The function family a regression run's config records (None if it used a sampler)."""
    fam = config.get("task", {}).get("family")
    if not isinstance(fam, dict):
        return None
    fam = dict(fam)
    return make_family(fam.pop("name"), fam.pop("d"), **fam)


def train_regressor(
    family: Family | str | Sampler,
    *,
    d: int = 5,
    k: int = 11,
    model: ModelSpec | None = None,
    train: TrainConfig | None = None,
    seed: int = 0,
    n_eval: int = 1280,
    normaliser: float | None = None,
    curriculum: tuple[int, int] | None = None,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> InContextRegressor:
    """Train an in-context regressor on fresh prompts of ``family`` and return it.

    Args:
        family: a :class:`~icarena.envs.regression.Family`, a family name (built with ``d``),
            or a sampler ``sampler(rng, n, k) -> (x (n, k, d), y (n, k))`` of one's own
            (drawing only from ``rng``, so that a seed gives the same prompts).
        d: input dimension (a family given by name only).
        k: points per training prompt (the model reads up to k).
        model: backbone and size (default :class:`~icarena.pretraining.ModelSpec`: GPT,
            width 64, 3 layers, 2 heads); any registered backbone.
        train: optimisation (default :func:`~icarena.pretraining.regression_train_config`);
            its ``seed`` is replaced by ``seed``.
        seed: seed of the initialisation and the prompt stream.
        n_eval: held-out prompts whose error is logged (``result.final_eval``).
        normaliser: divide logged squared errors by this (default: the family's, 1 for a
            sampler).
        curriculum: optional Garg et al. dimension curriculum ``(start_dims, every_steps)``.
        out_dir: also write the run dir there (as ``icarena pretrain regression``); None
            trains in memory.
        overwrite: replace an icarena run in ``out_dir``.
    """
    if isinstance(family, str):
        family = make_family(family, d)
    elif not isinstance(family, Family) and not callable(family):
        raise ConfigError("family must be a Family, a family name or a sampler (rng, n, k) -> "
                          f"(x, y); got {type(family).__name__}", fields="family")
    task = RegressionTask(family, k, n_eval=n_eval, curriculum=curriculum, normaliser=normaliser)
    config = {"regressor": {"k": int(k), "n_eval": n_eval, "seed": seed,
                            "curriculum": None if curriculum is None else list(curriculum)}}
    net, result = fit_regression_model(task, model=model, train=train, seed=seed,
                                       out_dir=out_dir, config=config, overwrite=overwrite)
    reg = InContextRegressor(net, result.config)
    reg.result = result
    return reg

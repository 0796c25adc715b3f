"""Pretraining: backbones, task models, the Trainer, and each track's training recipe and
trained-model objects.

The library entry points take the user's own objects and train with the track's recommended
settings unless told otherwise (see docs/api.md):

* paths: :func:`train_planner` (a networkx DiGraph) -> :class:`PathPlanner`
  (``plan``, ``complete``, ``save`` / ``load``); settings :func:`path_train_config`;
* games: :func:`train_player` (the user's own TabularGame batch) -> :class:`InContextGamePlayer`
  (``play``, ``policies``, ``save`` / ``load``); settings :func:`icgp_train_config`, model
  :class:`GameModel` (default :func:`icgp_model`); the recipe :func:`fit_icgp_models`;
* regression: :func:`train_regressor` (a function family or a prompt sampler) ->
  :class:`InContextRegressor` (``predict``, ``save`` / ``load``); settings
  :func:`regression_train_config`;
* building blocks: :class:`ModelSpec` (backbone + size) -> :class:`ModelConfig` ->
  :class:`SequenceModel`; :func:`train` (``out_dir=None``: in memory) with a
  :class:`TrainConfig`; :func:`load_model` for any run dir; :mod:`backbones` (the registry).
"""

from icarena.pretraining import backbones
from icarena.pretraining.data.regression import (
    RegressionData,
    RegressionTask,
    Sampler,
    regression_train_config,
    tokenize,
)
from icarena.pretraining.game_lm import (
    GameModel,
    GameTrainConfig,
    fit_icgp_models,
    icgp_model,
    icgp_train_config,
)
from icarena.pretraining.game_player import InContextGamePlayer, train_player
from icarena.pretraining.model import ModelConfig, ModelSpec, SequenceModel, load_model
from icarena.pretraining.path_lm import (
    PathLMTask,
    alpine_model,
    fit_path_model,
    path_model_config,
    path_train_config,
    sample_completions,
)
from icarena.pretraining.planner import PathPlanner, train_planner
from icarena.pretraining.regressor import (
    InContextRegressor,
    fit_regression_model,
    regression_model_config,
    train_regressor,
)
from icarena.pretraining.train import TrainConfig, TrainResult, seed_everything, train

__all__ = [
    "GameModel",
    "GameTrainConfig",
    "InContextGamePlayer",
    "InContextRegressor",
    "ModelConfig",
    "ModelSpec",
    "PathLMTask",
    "PathPlanner",
    "RegressionData",
    "RegressionTask",
    "Sampler",
    "SequenceModel",
    "TrainConfig",
    "TrainResult",
    "alpine_model",
    "backbones",
    "fit_icgp_models",
    "fit_path_model",
    "icgp_model",
    "icgp_train_config",
    "fit_regression_model",
    "load_model",
    "path_model_config",
    "path_train_config",
    "regression_model_config",
    "regression_train_config",
    "sample_completions",
    "seed_everything",
    "tokenize",
    "train",
    "train_planner",
    "train_player",
    "train_regressor",
]

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

from icarena.lazy import lazy_exports as _lazy_exports

_EXPORTS = {  # name -> module; imported on first use (PEP 562), so that importing
    # one submodule (e.g. a dataset generator) does not import torch and every track
    "GameModel": "icarena.pretraining.game_lm",
    "GameTrainConfig": "icarena.pretraining.game_lm",
    "InContextGamePlayer": "icarena.pretraining.game_player",
    "InContextRegressor": "icarena.pretraining.regressor",
    "ModelConfig": "icarena.pretraining.model",
    "ModelSpec": "icarena.pretraining.model",
    "PathLMTask": "icarena.pretraining.path_lm",
    "PathPlanner": "icarena.pretraining.planner",
    "RegressionData": "icarena.pretraining.data.regression",
    "RegressionTask": "icarena.pretraining.data.regression",
    "Sampler": "icarena.pretraining.data.regression",
    "SequenceModel": "icarena.pretraining.model",
    "TrainConfig": "icarena.pretraining.train",
    "TrainResult": "icarena.pretraining.train",
    "alpine_model": "icarena.pretraining.path_lm",
    "backbones": "icarena.pretraining.backbones",
    "fit_icgp_models": "icarena.pretraining.game_lm",
    "fit_path_model": "icarena.pretraining.path_lm",
    "fit_regression_model": "icarena.pretraining.regressor",
    "icgp_model": "icarena.pretraining.game_lm",
    "icgp_train_config": "icarena.pretraining.game_lm",
    "load_model": "icarena.pretraining.model",
    "path_model_config": "icarena.pretraining.path_lm",
    "path_train_config": "icarena.pretraining.path_lm",
    "regression_model_config": "icarena.pretraining.regressor",
    "regression_train_config": "icarena.pretraining.data.regression",
    "sample_completions": "icarena.pretraining.path_lm",
    "seed_everything": "icarena.pretraining.train",
    "tokenize": "icarena.pretraining.data.regression",
    "train": "icarena.pretraining.train",
    "train_planner": "icarena.pretraining.planner",
    "train_player": "icarena.pretraining.game_player",
    "train_regressor": "icarena.pretraining.regressor",
}


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())

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

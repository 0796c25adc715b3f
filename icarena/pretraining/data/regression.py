"""In-context regression prompts as token sequences, the training task, and the ``regression``
dataset generator.

Prompt format (Garg et al. 2022, arXiv 2208.01066). A prompt of k pairs
(x_i, y_i), x_i ∈ R^d, becomes 2k tokens of width d::

    z_{2i}   = x_i                  (x-token)
    z_{2i+1} = (y_i, 0, ..., 0)     (y-token)

A causal model reads its prediction of y_i at the x-token position 2i, i.e. from
(x_0, y_0, ..., x_{i-1}, y_{i-1}, x_i); the loss averages the squared error over all k positions,
so every prefix length is trained at once.

:class:`RegressionTask` implements the Trainer's task protocol (``sample_batch``, ``loss``,
``evaluate``, ``tokens_per_sample``): fresh prompts every step drawn from the step's rng (or rows
of a finite prompt pool written by the generator), and evaluation on a fixed held-out prompt set
drawn from ``eval_seed``. ``evaluate`` reports the normalised squared error
(error / family normaliser) at every k and its mean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from icarena import limits
from icarena.envs.regression.families import Family, Prompts, make_family, sample_prompts
from icarena.errors import check
from icarena.lifecycle import writes_dataset, writes_run
from icarena.pretraining.data.store import dataset_identity, load_dataset, write_dataset
from icarena.pretraining.model import ModelSpec
from icarena.pretraining.train import TrainConfig

# A 2-word seed sequence cannot collide with the Trainer's 3-word (seed, rank, step) streams.
_EVAL_STREAM = 0x5EED_E7A1


def tokenize(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Interleave a batch of prompts into tokens.

    Args:
        x: (B, k, d) inputs; y: (B, k) labels.
    Returns:
        (B, 2k, d) float32 tokens, x-tokens at even positions, (y, 0, ..., 0) at odd ones.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.float32)
    check(x.dim() == 3 and y.shape == x.shape[:2],
          f"x must be (B, k, d) and y (B, k); got {tuple(x.shape)} and {tuple(y.shape)}")
    B, k, d = x.shape
    tokens = torch.zeros(B, 2 * k, d, dtype=torch.float32)
    tokens[:, 0::2] = x
    tokens[:, 1::2, 0] = y
    return tokens


def predictions(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The model's predictions (B, k) read at the x-token positions (output channel 0)."""
    return model(tokens)[:, 0::2, 0]


@torch.no_grad()
def prefix_predictions_of(model: nn.Module, x: np.ndarray, y: np.ndarray, *,
                          batch: int = 256) -> np.ndarray:
    """A causal regression model's predictions (P, k) float64 on prompts x (P, k, d), y (P, k):
    entry i is its prediction of y_i from the points before i (one forward pass per chunk of
    ``batch`` prompts)."""
    device = next(model.parameters()).device
    out = []
    for s in range(0, x.shape[0], batch):
        tokens = tokenize(x[s : s + batch], y[s : s + batch])
        out.append(predictions(model, tokens.to(device)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(np.shape(y))


def dimension_curriculum(start: int, every: int, d: int) -> tuple[int, int] | None:
    """An experiment's curriculum options as :class:`RegressionTask`'s ``curriculum``.

    ``start`` active input dims at step 0 (0: no curriculum -> None), one more every ``every``
    steps up to ``d``; out-of-range options raise a ConfigError naming them.
    """
    check(0 <= start <= d and every >= 1,
          f"curriculum_start must be in [0, d={d}] (0: off) and curriculum_every >= 1; "
          f"got {start} and {every}")
    return (start, every) if start else None


class Sampler(Protocol):
    """A user's prompt sampler: ``sampler(rng, n, k) -> (x (n, k, d), y (n, k))``, drawing
    every random number from ``rng`` (so a seed gives the same prompts); any function of that
    signature is one."""

    def __call__(self, rng: np.random.Generator, n: int,
                 k: int) -> tuple[np.ndarray, np.ndarray]: ...


def draw_sampler(sampler: Sampler, rng: np.random.Generator, n: int, k: int) -> Prompts:
    """``n`` prompts of ``k`` points from a user's sampler, shape-checked, as :class:`Prompts`
    (float64; ``f`` = ``y``, no params)."""
    out = sampler(rng, int(n), int(k))
    ok = isinstance(out, tuple | list) and len(out) == 2
    x, y = (np.asarray(a, dtype=np.float64) for a in out) if ok else (np.zeros(0), np.zeros(0))
    check(ok and x.ndim == 3 and x.shape[:2] == (n, k) and y.shape == (n, k),
          f"the sampler must return (x, y) of shapes (n={n}, k={k}, d) and (n, k) for "
          f"sampler(rng, {n}, {k}); got {x.shape} and {y.shape}", fields="sampler")
    check(bool(np.isfinite(x).all() and np.isfinite(y).all()),
          "the sampler returned non-finite x or y", fields="sampler")
    return Prompts(x=x, y=y, f=y, params={})


class RegressionTask:
    """Trainer task: in-context regression on one function family.

    Args:
        family: the function family (:func:`icarena.envs.regression.make_family`), or a
            :data:`Sampler` ``(rng, n, k) -> (x, y)`` of one's own (then ``normaliser``
            divides the reported errors; no curriculum, no pool).
        k: points per prompt.
        n_eval: held-out prompts for :meth:`evaluate`.
        eval_seed: seed of the held-out prompts.
        pool: optional finite prompt pool ``(x (P, k, d), y (P, k))``; each training prompt is
            then a uniformly drawn row instead of a fresh prompt.
        eval_batch: prompts per forward pass during evaluation.
        normaliser: divide squared errors by this in :meth:`evaluate` (default: the family's
            ``normaliser``; 1 for a sampler).
        curriculum: optional ``(start_dims, every)``: Garg et al.'s dimension curriculum --
            training prompts use ``start_dims`` active input coordinates (the rest set to 0,
            sparse supports inside them), one more every ``every`` steps up to d. Evaluation
            always uses all d. Fresh prompts only (not with ``pool``).
    """

    def __init__(
        self,
        family: Family,
        k: int,
        *,
        n_eval: int = 1280,
        eval_seed: int = 1234,
        pool: tuple[np.ndarray, np.ndarray] | None = None,
        eval_batch: int = 256,
        curriculum: tuple[int, int] | None = None,
        normaliser: float | None = None,
    ) -> None:
        check(isinstance(k, int | np.integer) and k >= 1, f"k must be an int >= 1, got {k!r}",
              fields="k")
        check(n_eval >= 1, f"n_eval must be >= 1, got {n_eval}", fields="n_eval")
        self.sampler: Sampler | None = None
        if not isinstance(family, Family):
            check(callable(family), "family must be a Family (icarena.envs.regression."
                  f"make_family) or a sampler (rng, n, k) -> (x, y), got {type(family).__name__}",
                  fields="family")
            check(curriculum is None and pool is None,
                  "a sampler draws its own prompts: no curriculum or pool", fields="family")
            self.sampler = family
        if curriculum is not None:
            start, every = curriculum
            check(1 <= start <= family.d and every >= 1,
                  f"curriculum must be (start_dims in [1, d={family.d}], every >= 1 steps), "
                  f"got {curriculum}")
            check(pool is None, "a dimension curriculum needs fresh prompts; drop the pool")
        self.curriculum = curriculum
        self._step = 0
        self.k = int(k)
        self.tokens_per_sample = 2 * self.k
        self.eval_batch = int(eval_batch)
        eval_rng = np.random.default_rng([eval_seed, _EVAL_STREAM])
        if self.sampler is None:
            self.family: Family | None = family
            self.d = family.d
            self.eval_prompts = sample_prompts(family, eval_rng, n_eval, self.k)
        else:
            self.family = None
            self.eval_prompts = draw_sampler(self.sampler, eval_rng, n_eval, self.k)
            self.d = int(self.eval_prompts.x.shape[-1])
        default = family.normaliser if self.family is not None else 1.0
        self.normaliser = float(default if normaliser is None else normaliser)
        check(self.normaliser > 0, f"normaliser must be > 0, got {normaliser}",
              fields="normaliser")
        self.pool = None
        if pool is not None:
            px, py = (np.asarray(a) for a in pool)
            check(px.ndim == 3 and px.shape[1:] == (self.k, family.d) and py.shape == px.shape[:2],
                  f"pool must be x (P, k={self.k}, d={family.d}) and y (P, k); got {px.shape} "
                  f"and {py.shape}")
            self.pool = (px, py)

    @classmethod
    def from_dataset(cls, path: str | os.PathLike, **kwargs: Any) -> RegressionTask:
        """A task whose training prompts are rows of a ``regression`` dataset (finite pool)."""
        ds = load_dataset(path, generator="regression")
        c = ds.config
        family = make_family(c["family"], c["d"], **c["family_options"])
        return cls(family, c["k"], pool=(np.asarray(ds["x"]), np.asarray(ds["y"])), **kwargs)

    def set_step(self, step: int) -> None:
        """Called by the Trainer before each batch (the curriculum is a function of the step)."""
        self._step = int(step)

    def active_dims(self, step: int) -> int | None:
        """Active input coordinates of training prompts at ``step`` (None: no curriculum)."""
        if self.curriculum is None:
            return None
        start, every = self.curriculum
        return min(self.family.d, start + step // every)

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """{"tokens": (B, 2k, d) float32, "y": (B, k) float32} for one training step."""
        if self.pool is not None:
            rows = rng.integers(0, self.pool[0].shape[0], size=batch_size)
            x, y = self.pool[0][rows], self.pool[1][rows]
        elif self.sampler is not None:
            p = draw_sampler(self.sampler, rng, batch_size, self.k)
            x, y = p.x, p.y
        else:
            p = sample_prompts(self.family, rng, batch_size, self.k,
                               active_dims=self.active_dims(self._step))
            x, y = p.x, p.y
        return {"tokens": tokenize(x, y), "y": torch.as_tensor(y, dtype=torch.float32)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared error over all k x-token positions."""
        return ((predictions(model, batch["tokens"]) - batch["y"]) ** 2).mean()

    def predict(self, model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Predictions (P, k) float64 of ``model`` on prompts (x, y), in chunks of eval_batch
        (:func:`prefix_predictions_of`)."""
        return prefix_predictions_of(model, x, y, batch=self.eval_batch)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Normalised squared error on the held-out prompts: ``err_k{i}`` per k and ``err_mean``."""
        was_training = model.training
        model.eval()
        p = self.eval_prompts
        err = (self.predict(model, p.x, p.y) - p.y) ** 2 / self.normaliser
        model.train(was_training)
        curve = err.mean(axis=0)
        out = {f"err_k{i}": float(v) for i, v in enumerate(curve)}
        out["err_mean"] = float(curve.mean())
        return out


# ---------------------------------------------------------------------------------------------
# Generator: a finite pool of prompts on disk (`icarena generate regression`).


@dataclass
class Config:
    """Write a finite pool of in-context regression prompts."""

    out_dir: str = "data/regression"
    """Output dataset directory."""
    seed: int = 0
    """Seed of the prompts (functions, inputs, noise)."""
    overwrite: bool = False
    """Replace an existing icarena dataset at ``out_dir``."""
    family: str = "linear"
    """Function family: linear, sparse_linear, relu_2nn, decision_tree, holder, manifold."""
    d: int = 5
    """Input dimension."""
    k: int = 11
    """Points per prompt."""
    n_prompts: int = 10_000
    """Number of prompts in the pool."""
    noise_std: float | None = None
    """Label noise std (None: the family's default, 0.25 for holder and 0 otherwise)."""
    sparsity: int = 3
    """Non-zero coefficients (sparse_linear)."""
    hidden: int = 100
    """Hidden width (relu_2nn)."""
    depth: int = 4
    """Tree depth (decision_tree)."""
    alpha: float = 1.0
    """Hölder exponent in (0, 1] (holder, manifold)."""
    n_bumps: int = 4
    """Number of |x - c|^alpha bumps (holder, manifold)."""
    intrinsic_dim: int = 1
    """Sphere dimension m of the manifold S^m in R^d (manifold; 1 = circle)."""
    shard_rows: int | None = None
    """Prompts per shard (None: one shard)."""


def family_from_config(cfg: Config) -> Family:
    """The Family described by a generator config (only the options that family uses)."""
    used = {
        "sparse_linear": ("sparsity",),
        "relu_2nn": ("hidden",),
        "decision_tree": ("depth",),
        "holder": ("alpha", "n_bumps"),
        "manifold": ("alpha", "n_bumps", "intrinsic_dim"),
    }.get(cfg.family, ())
    options: dict[str, Any] = {name: getattr(cfg, name) for name in used}
    if cfg.noise_std is not None:
        options["noise_std"] = cfg.noise_std
    return make_family(cfg.family, cfg.d, **options)


@writes_dataset
def generate(cfg: Config) -> Path:
    """Write ``x`` (P, k, d), ``y`` (P, k), ``f`` (P, k), ``params/<name>`` to ``cfg.out_dir``."""
    family = family_from_config(cfg)
    check(cfg.k >= 1, f"k must be >= 1, got {cfg.k}")
    check(cfg.n_prompts >= 1, f"n_prompts must be >= 1, got {cfg.n_prompts}")
    # float64 x (P, k, d), y and f (P, k), each also copied once when written
    limits.require(16 * cfg.n_prompts * cfg.k * (family.d + 2),
                   f"{cfg.n_prompts} prompts of k={cfg.k} points in d={family.d}",
                   "--n-prompts, --k or --d")
    out = Path(cfg.out_dir)
    p = sample_prompts(family, np.random.default_rng(cfg.seed), cfg.n_prompts, cfg.k)
    arrays = {"x": p.x, "y": p.y, "f": p.f}
    arrays.update({f"params/{name}": v for name, v in p.params.items()})
    options = {k: v for k, v in family.to_dict().items() if k not in ("name", "d")}
    config = {"family": family.name, "d": family.d, "k": cfg.k, "n_prompts": cfg.n_prompts,
              "family_options": options}
    return write_dataset(out, arrays, generator="regression", config=config, seed=cfg.seed,
                         shard_rows=cfg.shard_rows, overwrite=cfg.overwrite)


# ---------------------------------------------------------------------------------------------
# `icarena pretrain regression`: train a causal model on fresh prompts or on a prompt pool.


def regression_train_config() -> TrainConfig:
    """The regression track's recommended optimisation (``icarena pretrain regression``'s
    ``--train.*`` defaults, used by :func:`icarena.pretraining.train_regressor` unless told
    otherwise): 18,000 steps of batch 64, AdamW lr 1e-3 with 200 warm-up steps and cosine
    decay to 0, no weight decay, held-out error every 2,000 steps (Garg et al. 2022, arXiv
    2208.01066, at a CPU budget). A fresh object on every call."""
    return TrainConfig(steps=18_000, batch_size=64, lr=1e-3, warmup_steps=200, eval_every=2000)


@dataclass
class RegressionData:
    """The prompts of a regression run (``--data.*``): fresh prompts of a function family, or
    a finite pool from ``icarena generate regression``."""

    path: str = ""
    """Prompt pool from `icarena generate regression` ('' = fresh prompts of the family below)."""
    family: str = "linear"
    """Function family of fresh prompts (ignored with a pool)."""
    d: int = 5
    """Input dimension of fresh prompts (ignored with a pool)."""
    k: int = 11
    """Points per fresh prompt (ignored with a pool)."""
    n_eval: int = 1280
    """Held-out prompts for the error logged during training."""


@dataclass
class PretrainConfig:
    """In-context regression pretraining (Garg et al.): fresh prompts, or a finite pool."""

    out_dir: str = "runs/regression"
    """Run directory."""
    seed: int = 0
    """Seed of the initialisation and the prompt stream."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished) from its checkpoint, same settings."""
    data: RegressionData = field(default_factory=RegressionData)
    """The prompts."""
    model: ModelSpec = field(default_factory=ModelSpec)
    """The model (backbone built with causal=True over 2k tokens, vector read-in, scalar
    read-out)."""
    train: TrainConfig = field(default_factory=regression_train_config)
    """Optimisation."""


@writes_run
def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """``icarena pretrain regression``: a causal read-in -> backbone -> read-out model on
    in-context regression prompts, through the recipe of
    :func:`icarena.pretraining.train_regressor` (:func:`~icarena.pretraining.regressor.
    fit_regression_model`)."""
    import dataclasses

    from icarena.pretraining.regressor import fit_regression_model

    data = cfg.data
    if data.path:
        task = RegressionTask.from_dataset(data.path, n_eval=data.n_eval)
    else:
        task = RegressionTask(make_family(data.family, data.d), data.k, n_eval=data.n_eval)
    config: dict[str, Any] = {"pretrain": dataclasses.asdict(cfg)}
    if data.path:
        config["dataset"] = dataset_identity(load_dataset(data.path, verify=False))
    _, result = fit_regression_model(task, model=cfg.model, train=cfg.train, seed=cfg.seed,
                                     out_dir=cfg.out_dir, config=config, resume=cfg.resume)
    return {"report": "", "rows": [{"k": i, "error / normaliser": round(
        result.final_eval[f"err_k{i}"], 4)} for i in range(task.k)]}

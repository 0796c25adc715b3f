"""Next-token pretraining on ALPINE path lines, and batched sampling of completions.

The data are token rows ``s t s v2 ... t \\n PAD ...`` (see :mod:`icarena.envs.planning.tokens`).
The task (ALPINE, Wang et al. 2024, Sec. 3; authors' nanoGPT code) is plain next-token
prediction: input ``row[:-1]``, target ``row[1:]``, cross-entropy with ``ignore_index = PAD`` over
every real target (including ``t`` after ``s``, ``s`` after ``s t`` and the final newline).

:func:`sample_completions` continues prompts ``s t`` autoregressively at temperature 1 (plain
multinomial over the whole vocabulary) or greedily. PAD is never sampled (its logit is masked) and
the vocabulary is exactly the model's read-out, so no out-of-vocabulary id can appear; after the
first newline a row is filled with PAD. A model with :meth:`~icarena.pretraining.model.
SequenceModel.decode` is run incrementally (the prompt once, then one token per step, with the
backbone's key/value cache or recurrent state); its logits equal the full recomputation's up to
float rounding, so in float64 the samples are identical, and in float32 a draw that falls
within rounding of a category boundary (or a greedy near-tie) may differ.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from icarena.envs.planning.tokens import NEWLINE, PAD
from icarena.errors import check
from icarena.lifecycle import writes_run
from icarena.pretraining.model import ModelConfig, ModelSpec, SequenceModel
from icarena.pretraining.train import TrainConfig, TrainResult


def alpine_model() -> ModelSpec:
    """The model ALPINE analyses: 1 layer, 1 head, width 120 (the path track's ``--model.*``
    defaults)."""
    return ModelSpec(d_model=120, n_layers=1, n_heads=1)


def path_train_config() -> TrainConfig:
    """The path track's recommended optimisation (``icarena pretrain path``'s ``--train.*``
    defaults, used by :func:`icarena.pretraining.train_planner` unless told otherwise): 3,000
    steps of batch 256, lr 1e-3 with 150 warm-up steps and cosine decay to 1e-4, weight decay
    0.1, AdamW betas (0.9, 0.95) -- nanoGPT's settings in ALPINE's code (Wang et al. 2024,
    arXiv 2405.09220) with a CPU-sized budget (the paper: 10k iterations of batch 1024, lr
    5e-4). A fresh object on every call."""
    return TrainConfig(steps=3000, batch_size=256, lr=1e-3, min_lr=1e-4, warmup_steps=150,
                       weight_decay=0.1, beta2=0.95, ckpt_every=500, log_every=25)


def fit_path_model(
    train_tokens: np.ndarray, n: int, block_size: int, *, model: ModelSpec | None = None,
    train: TrainConfig | None = None, seed: int = 0, out_dir: str | os.PathLike | None = None,
    val_tokens: np.ndarray | None = None, evaluate_fn: Any = None,
    config: dict[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
) -> tuple[SequenceModel, TrainResult]:
    """Build a path model (:func:`path_model_config`) for a graph on ``n`` nodes and train it
    next-token on ``train_tokens`` (uint16/int (L, block_size + 1) ALPINE rows): the one
    training recipe behind :func:`icarena.pretraining.train_planner`, ``icarena pretrain
    path`` and the alpine / blocksworld experiments.

    ``seed`` seeds the initialisation and the batches (it replaces ``train.seed``);
    ``out_dir=None`` trains in memory. ``config`` is recorded in the run's config.json beside
    the model config. Returns the model (eval mode) and the Trainer's result.
    """
    from icarena.pretraining.model import SequenceModel
    from icarena.pretraining.train import seed_everything
    from icarena.pretraining.train import train as run_train

    spec = alpine_model() if model is None else model
    train_cfg = dataclasses.replace(path_train_config() if train is None else train, seed=seed)
    train_cfg.validate()
    seed_everything(seed)
    mcfg = path_model_config(spec, n + 2, block_size)
    net = SequenceModel(mcfg)
    task = PathLMTask(np.asarray(train_tokens), evaluate_fn=evaluate_fn,
                      val_tokens=None if val_tokens is None else np.asarray(val_tokens))
    full = {**(config or {}), "model": dataclasses.asdict(mcfg)}
    result = run_train(net, task, train_cfg, out_dir, config=full, resume=resume,
                       overwrite=overwrite)
    return net.eval(), result


def path_model_config(spec: ModelSpec, vocab: int, block_size: int) -> ModelConfig:
    """The ModelConfig of a path model: ``spec``'s backbone and size, causal over
    ``block_size`` tokens, as nanoGPT in ALPINE (tied embeddings, no biases, learned positions,
    GELU MLP 4x).

    ``bias=False`` is only passed to backbones that have it (the GPT family); ``spec.options``
    override everything.
    """
    from icarena.pretraining import backbones

    spec.backbone_cfg()  # a clear error for an unknown backbone name
    fields = backbones.config_class(spec.backbone).__dataclass_fields__
    no_bias = {"bias": False} if "bias" in fields else {}
    cfg = spec.backbone_cfg(causal=True, max_len=block_size, **no_bias)
    return ModelConfig(backbone=spec.backbone, backbone_cfg=cfg, input_kind="tokens",
                       input_dim=vocab, output_dim=vocab, tie_weights=True)


def alpine_model_config(
    vocab: int, block_size: int, *, d_model: int = 120, n_layers: int = 1, n_heads: int = 1,
    backbone: str = "gpt", backbone_cfg: dict | None = None,
) -> ModelConfig:
    """:func:`path_model_config` with the model as keywords; extra ``backbone_cfg`` keys
    override the defaults."""
    return path_model_config(ModelSpec(backbone=backbone, d_model=d_model, n_layers=n_layers,
                                       n_heads=n_heads, options=dict(backbone_cfg or {})),
                             vocab, block_size)


class PathLMTask:
    """Trainer task over padded token rows (L, block_size + 1).

    Args:
        tokens: uint16/int array (L, block_size + 1) of training lines.
        evaluate_fn: optional ``model -> dict`` called by ``evaluate`` (probes, accuracy).
        val_tokens: optional rows for a held-out next-token loss (``eval/val_loss``).
    """

    def __init__(self, tokens: np.ndarray, evaluate_fn=None, val_tokens: np.ndarray | None = None):
        tokens = np.asarray(tokens)
        check(tokens.ndim == 2 and tokens.shape[0] >= 1 and tokens.shape[1] >= 2,
              f"token rows must be (L >= 1, block_size + 1 >= 2), got {tokens.shape}")
        # Columns after the longest line's newline hold only PAD; a causal model's loss does not
        # depend on them, so they are dropped (ALPINE's block_size 32 vs lines of ~17 at n=100).
        used = np.flatnonzero((tokens != PAD).any(axis=0))
        width = max(int(used[-1]) + 1 if len(used) else 2, 2)
        self.tokens = np.ascontiguousarray(tokens[:, :width])
        self.block_size = width - 1
        self.tokens_per_sample = self.block_size
        self.evaluate_fn = evaluate_fn
        self.val_tokens = None if val_tokens is None else np.asarray(val_tokens)
        self.device_tokens: torch.Tensor | None = None  # set by ``to``

    def to(self, device: torch.device | str) -> PathLMTask:
        """Keep the training rows on ``device`` (int32); batches are gathered there."""
        self.device_tokens = torch.from_numpy(self.tokens.astype(np.int32)).to(device)
        return self

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.tokens.shape[0], size=batch_size)
        rows_on = self.device_tokens
        if rows_on is None:
            rows = torch.from_numpy(self.tokens[idx].astype(np.int64))
        else:  # the same rows, gathered on the device
            idx_t = torch.from_numpy(idx).to(rows_on.device, non_blocking=True)
            rows = rows_on[idx_t].long()
        return {"x": rows[:, :-1], "y": rows[:, 1:]}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return next_token_loss(model, batch["x"], batch["y"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.val_tokens is not None and len(self.val_tokens):
            device = next(model.parameters()).device
            rows = torch.from_numpy(self.val_tokens[:2048].astype(np.int64)).to(device)
            out["val_loss"] = float(next_token_loss(model, rows[:, :-1], rows[:, 1:]))
        if self.evaluate_fn is not None:
            out.update(self.evaluate_fn(model))
        return out


def next_token_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over targets that are not PAD."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           ignore_index=PAD)


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    prompts: np.ndarray,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    greedy: bool = False,
    seed: int = 0,
    batch_size: int = 2048,
    incremental: bool = True,
) -> np.ndarray:
    """Continue each prompt until a newline or ``max_new_tokens``.

    Args:
        model: a causal token model returning (B, T, vocab) logits.
        prompts: int (M, P) prompt tokens (``s t`` rows: P = 2).
        max_new_tokens: most tokens to generate (the prompt + generation must fit max_len).
        temperature: softmax temperature (> 0) for sampling.
        greedy: take the arg-max instead of sampling.
        seed: seed of the sampling generator (same seed, same completions).
        batch_size: prompts per forward batch.
        incremental: decode one new token per step through ``model.decode`` when the model
            keeps a decoding state (``model.incremental``); False, or a model without one:
            recompute the whole prefix every step.

    Returns:
        int64 (M, P + max_new_tokens): prompt, generated tokens, PAD after the first newline.
    """
    check(temperature > 0, f"temperature must be > 0, got {temperature}")
    check(max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {max_new_tokens}")
    prompts = np.asarray(prompts, dtype=np.int64)
    check(prompts.ndim == 2, f"prompts must be (M, P), got {prompts.shape}")
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = np.full((prompts.shape[0], prompts.shape[1] + max_new_tokens), PAD, dtype=np.int64)
    out[:, : prompts.shape[1]] = prompts
    for start in range(0, prompts.shape[0], batch_size):
        seq = torch.from_numpy(prompts[start : start + batch_size]).to(device)
        done = torch.zeros(seq.shape[0], dtype=torch.bool, device=device)
        decode = incremental and bool(getattr(model, "incremental", False))
        if decode:
            logits, state = model.decode(seq)
        for i in range(max_new_tokens):
            if not decode:
                logits = model(seq)
            last = logits[:, -1, :].float()
            last[:, PAD] = float("-inf")
            if greedy:
                nxt = last.argmax(-1)
            else:
                probs = F.softmax(last / temperature, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(-1).to(device)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            done |= nxt == NEWLINE
            if bool(done.all()):
                break
            if decode and i + 1 < max_new_tokens:
                logits, state = model.decode(nxt[:, None], state)
        out[start : start + seq.shape[0], : seq.shape[1]] = seq.cpu().numpy()
    return out


@dataclass
class PretrainConfig:
    """Next-token pretraining on an ALPINE-format path dataset (alpine or blocksworld)."""

    out_dir: str = "runs/path"
    """Run directory."""
    seed: int = 0
    """Seed of the initialisation and the batches."""
    overwrite: bool = False
    """Replace the icarena run already in out_dir (anything else there is never deleted)."""
    resume: bool = False
    """Continue the run in out_dir (killed or finished) from its checkpoint, same settings."""
    data: str = "data/alpine"
    """Dataset dir from `icarena generate alpine|blocksworld`."""
    model: ModelSpec = field(default_factory=alpine_model)
    """The model (ALPINE: 1 layer, 1 head, width 120; up to 6 layers / heads), built causal over
    the dataset's block size with tied embeddings and no biases."""
    train: TrainConfig = field(default_factory=path_train_config)
    """Optimisation (ALPINE's code: lr 5e-4, batch 1024, 10k iterations)."""


@writes_run
def pretrain(cfg: PretrainConfig) -> dict:
    """``icarena pretrain path``: train on ``train/tokens`` and write the run dir (through
    :func:`fit_path_model`, as :func:`icarena.pretraining.train_planner` does); the run records
    the graph, so :meth:`icarena.pretraining.PathPlanner.load` reads it without the dataset."""
    from icarena.envs.planning.dag import graph_from_edges
    from icarena.pretraining.data.store import dataset_identity, load_dataset
    from icarena.pretraining.planner import graph_record

    ds = load_dataset(cfg.data)
    check(ds.generator in ("alpine", "blocksworld"),
          f"{cfg.data} was made by {ds.generator!r}; pass an alpine or blocksworld dataset as "
          "{data}", fields="data")
    n, block = int(ds.config["n"]), int(ds.config["block_size"])
    graph = graph_from_edges(n, np.asarray(ds["graph/edges"]))
    _, result = fit_path_model(
        np.asarray(ds["train/tokens"]), n, block, model=cfg.model, train=cfg.train,
        seed=cfg.seed, out_dir=cfg.out_dir, val_tokens=np.asarray(ds["test/tokens"]),
        resume=cfg.resume, config={"pretrain": dataclasses.asdict(cfg),
                                   "dataset": dataset_identity(ds), "graph": graph_record(graph)})
    return {"report": "", "rows": [{"steps": cfg.train.steps,
                                    "final loss": round(float(np.mean(result.losses[-50:])), 4),
                                    **{k: round(v, 4) for k, v in result.final_eval.items()},
                                    "run dir": cfg.out_dir}]}

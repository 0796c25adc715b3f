"""Trainer: AdamW + warm-up/cosine schedule + clipping, TensorBoard, checkpoints, resume, DDP.

``train(model, task, cfg, out_dir, config=...)`` runs ``cfg.steps`` optimisation steps
(``out_dir=None``: in memory, nothing written). The
batch of step ``i`` on rank ``r`` is ``task.sample_batch(np.random.default_rng([seed, r, i]),
batch_size)``, so the data stream is a pure function of (seed, rank, step): a resumed run sees
exactly the batches an uninterrupted run would, and reaches the same weights.

The step loop never waits for the device between log steps: a task with a ``to(device)`` hook
puts its dataset on the training device once and gathers the rows of each batch there (the row
indices still come from the rng above, so the batches are the same); each step's loss stays on
the device and is read back, with a non-finite flag and the first step it was raised at, every
``log_every`` steps (and at checkpoint, evaluation and final steps). A non-finite loss stops
the run at that read-back, before anything is written, naming its first bad step. Optional
``precision="bf16"`` (autocast) and ``compile=True`` (``torch.compile``); the training
throughput lands in the run's ``metrics.json`` (``train.tokens_per_s``).

A task implements::

    sample_batch(rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]
    loss(model, batch) -> scalar tensor
    evaluate(model) -> dict[str, float]        # logged as eval/<key>
    tokens_per_sample: int                     # optional, for the tokens/s figure
    to(device) -> None                         # optional: keep the dataset on the training
                                               # device; sample_batch then returns tensors there
    set_step(step: int) -> None                # optional, called before each sample_batch
                                               # (curricula: a function of the step, so resume-safe)
    state_dict() -> dict / load_state_dict(d)  # optional task state kept in ckpt.pt (tensors and
                                               # plain data, e.g. early stopping's best weights)

Run dir written (rank 0 only, each file atomically; created, locked and replaced by the rules
of :mod:`icarena.lifecycle`): ``config.json`` (the caller's resolved config plus the train
config, written with the first checkpoint so that it always matches the weights beside it),
``model.safetensors`` (releasable weights), ``ckpt.pt``
(model, optimizer, scheduler, step, torch RNG state, loss history: plain data, loadable with
``torch.load(weights_only=True)``) and TensorBoard events (``train/loss``, ``train/lr``,
``eval/...``, hparams in the same run) and ``metrics.json`` (section ``train``: tokens/s,
seconds, steps, final loss, peak memory).

Distributed: under ``torchrun`` (env ``RANK`` set) the model is wrapped in DDP (gloo on CPU,
NCCL on GPU); each rank draws its own batches and gradients are averaged, so all ranks hold
identical weights after every step.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickle
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from icarena import limits
from icarena.errors import CheckpointError, IcarenaError, check
from icarena.lifecycle import atomic_write_bytes, atomic_write_json, claim_run


class Task(Protocol):
    """What the Trainer needs from a task."""

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> dict[str, float]: ...


FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_THREADS = 4096


@dataclass
class TrainConfig:
    """Optimisation settings of a pretraining run."""

    steps: int = 2000
    """Number of optimisation steps."""
    batch_size: int = 64
    """Sequences per step (per rank under DDP)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr: float = 0.0
    """Learning rate at the end of the cosine decay."""
    warmup_steps: int = 200
    """Linear warm-up steps from 0 to lr."""
    weight_decay: float = 0.0
    """AdamW weight decay (applied to matrices only, not biases/norms/embeddings' 1-D params)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.999
    """AdamW beta2."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 disables)."""
    eval_every: int = 0
    """Run task.evaluate every this many steps (0: only at the end)."""
    ckpt_every: int = 500
    """Write ckpt.pt and model.safetensors every this many steps (and at the end)."""
    log_every: int = 10
    """Log train/loss and train/lr to TensorBoard every this many steps."""
    seed: int = 0
    """Seed of the data stream (and of everything the trainer draws)."""
    threads: int = 0
    """torch CPU threads (0: leave torch's default)."""
    device: str = "auto"
    """'auto' (cuda if available, else cpu), 'cpu' or 'cuda'."""
    progress: bool = True
    """Show a tqdm progress bar (only on a terminal, rank 0)."""
    precision: str = "fp32"
    """'fp32', or 'bf16': the forward pass and loss under bfloat16 autocast (weights, gradients
    and optimizer state stay float32)."""
    compile: bool = False
    """Run the model through torch.compile (the weights written are the same module's)."""

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied and checked, e.g.
        ``path_train_config().replace(steps=500)`` (a task's recommended settings, shorter)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        check(not unknown, f"unknown TrainConfig field(s) {unknown}; valid: {sorted(names)}",
              fields="train")
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self, prefix: str = "train") -> None:
        """Raise a ConfigError naming the field (``train.lr`` in Python, ``--train.lr`` on the
        command line) of the first invalid setting."""
        def need(ok: bool, name: str, rule: str) -> None:
            path = f"{prefix}.{name}" if prefix else name
            check(ok, f"{{{path}}} {rule}, got {getattr(self, name)!r}", fields=path)

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int):
                need(isinstance(v, int) and not isinstance(v, bool), f.name, "must be an integer")
            elif f.type in ("float", float):
                need(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                     and abs(v) <= FLOAT32_MAX, f.name, "must be a finite number that fits "
                     "float32")
        need(0 <= self.threads <= MAX_THREADS, "threads",
             f"must be in 0..{MAX_THREADS} (0: torch's default)")
        need(self.seed >= 0, "seed", "must be >= 0")

        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "must be > 0")
        need(0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]")
        need(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(0 <= self.beta1 < 1, "beta1", "must be in [0, 1)")
        need(0 <= self.beta2 < 1, "beta2", "must be in [0, 1)")
        need(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)")
        need(self.ckpt_every >= 1, "ckpt_every", "must be >= 1")
        need(self.log_every >= 1, "log_every", "must be >= 1")
        need(self.eval_every >= 0, "eval_every", "must be >= 0 (0: only at the end)")
        need(self.device in ("auto", "cpu", "cuda"), "device", "must be 'auto', 'cpu' or 'cuda'")
        need(self.precision in ("fp32", "bf16"), "precision", "must be 'fp32' or 'bf16'")


@dataclass
class TrainResult:
    """What a run produced."""

    losses: list[float]
    """Training loss at every step (rank 0's batches)."""
    eval_history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    final_eval: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float = float("nan")
    """Training throughput (rank 0, this process's steps, excluding evaluation)."""
    peak_mem_bytes: int = 0
    """Peak memory: CUDA max allocated, or the process's max RSS on CPU."""
    seconds: float = 0.0
    out_dir: Path | None = None
    """The run dir (None for an in-memory run)."""
    config: dict[str, Any] = field(default_factory=dict)
    """The run's full config (what config.json holds, also for an in-memory run)."""


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay to ``min_lr``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global RNG (for third-party code)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on tensors of rank >= 2 only (nanoGPT convention)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group when ``RANK`` is set (gloo on CPU, NCCL on GPU)."""
    if "RANK" not in os.environ:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise IcarenaError("device='cuda' but no CUDA device is available; set "
                               "{train.device} to 'cpu' or 'auto'", fields="train.device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


@contextmanager
def host_sync_point(device: torch.device) -> Iterator[None]:
    """Mark a place where the Trainer waits for the device on purpose (read-back, evaluation,
    checkpoint): CUDA's sync debug mode (``torch.cuda.set_sync_debug_mode``) is off inside."""
    if device.type != "cuda":
        yield
        return
    mode = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(0)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(mode)


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return inner.state_dict()


def save_weights(model: nn.Module, path: Path) -> None:
    """Write ``model``'s weights (unwrapped from DDP) as safetensors, atomically."""
    from safetensors.torch import save_model

    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    tmp = path.with_name(f".{path.name}.tmp")
    save_model(inner, str(tmp))
    os.replace(tmp, path)


def _save_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, step: int,
    losses: list[float], eval_history: list, config: dict[str, Any], task: Any = None,
) -> None:
    state = {
        "model": _state_dict(model),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "losses": list(losses),
        "eval_history": [[s, dict(m)] for s, m in eval_history],
        "config": json.loads(json.dumps(config)),
    }
    if hasattr(task, "state_dict"):
        state["task"] = task.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def training_bytes(model: nn.Module, tokens_per_sample: int, batch_size: int,
                   steps: int = 0) -> int:
    """Estimated bytes of a training step: weights, gradients and the two AdamW moments
    (4 x float32 per parameter) plus the activations kept for the backward pass, about
    ``16 d`` floats per token per layer and one ``T x T`` attention map per head per layer."""
    params = sum(p.numel() for p in model.parameters())
    bcfg = getattr(getattr(model, "cfg", None), "backbone_cfg", {}) or {}
    d = int(bcfg.get("d_model", 0) or 0)
    layers = int(bcfg.get("n_layers", 1) or 1)
    heads = int(bcfg.get("n_heads", 1) or 1)
    T = int(tokens_per_sample)
    acts = int(batch_size) * layers * (16 * T * d + heads * T * T)
    return 16 * params + 4 * acts + 32 * int(steps)  # + the per-step loss history


def require_training_fits(model: nn.Module, task: Any, cfg: TrainConfig) -> None:
    """Refuse (before the run dir is touched) a run whose training step or loss history would
    exceed the memory ceiling (:mod:`icarena.limits`)."""
    T = int(getattr(task, "tokens_per_sample", 0) or 0)
    limits.require(training_bytes(model, T, cfg.batch_size, cfg.steps),
                   f"training {cfg.steps} steps with batch size {cfg.batch_size} of {T} "
                   "positions",
                   "--train.batch-size or --train.steps (or --model.d-model / "
                   "--model.n-layers / the sequence length)")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``ckpt.pt`` with ``weights_only=True`` (no pickle of arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; start a new run instead of resuming")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it holds objects other than tensors and plain data "
            "(icarena loads checkpoints with weights_only=True, never arbitrary pickle); use a "
            "ckpt.pt written by icarena"
        ) from e
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path} ({first}); it is corrupt") from e
    return check_checkpoint(state, path)


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "step", "torch_rng", "losses",
                   "eval_history", "config")


def check_checkpoint(state: Any, path: Path, steps: int | None = None) -> dict[str, Any]:
    """Validate a loaded checkpoint: every key present with its type, the step in
    ``0..steps``, finite weights. Raises CheckpointError naming the first problem."""

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path} {what}; resume from an intact ckpt.pt "
                               "written by icarena, or start a new run without --resume")

    if not isinstance(state, dict):
        raise bad(f"holds a {type(state).__name__}, not a checkpoint dict")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise bad(f"lacks {', '.join(missing)}")
    step = state["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise bad(f"has an invalid step {step!r}")
    if steps is not None and step > steps:
        raise CheckpointError(
            f"checkpoint {path} is at step {step}, beyond --train.steps {steps}; resume with "
            f"--train.steps >= {step}"
        )
    weights = state["model"]
    if not isinstance(weights, dict) or not all(
            isinstance(v, torch.Tensor) for v in weights.values()):
        raise bad("has no state dict of tensors under 'model'")
    for name, t in weights.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise bad(f"has non-finite (NaN or inf) weights in {name!r}")
    if not isinstance(state["torch_rng"], torch.Tensor) or state["torch_rng"].dtype != torch.uint8:
        raise bad("has no torch RNG state (a uint8 tensor) under 'torch_rng'")
    for key, kind in (("optimizer", dict), ("scheduler", dict), ("losses", list),
                      ("eval_history", list), ("config", dict)):
        if not isinstance(state[key], kind):
            raise bad(f"has a {type(state[key]).__name__} under {key!r}, not a {kind.__name__}")
    try:
        json.dumps(state["config"])
    except (TypeError, ValueError):
        raise bad("has a 'config' that is not plain JSON data") from None
    return state


# The TrainConfig fields that define a run; steps, logging, checkpointing, threads and device may
# change between a run and its resume.
DEFINING_TRAIN_KEYS = ("seed", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay",
                       "beta1", "beta2", "grad_clip")
# The sections of a run config that define the run: the model, the task (what the batches are
# drawn from) and the dataset's identity (its manifest hash), besides the settings above.
DEFINING_SECTIONS = ("model", "task", "dataset")


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run config that must match for a resume, flattened (``a.b.c`` keys)."""
    ident = {k: config[k] for k in DEFINING_SECTIONS if k in config}
    train_cfg = config.get("train", {})
    ident["train"] = {k: train_cfg.get(k) for k in DEFINING_TRAIN_KEYS}
    return _flatten(json.loads(json.dumps(ident)), raw=True)


def identity_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: checkpoint value -> requested value`` for every defining setting that differs."""
    a, b = run_identity(saved), run_identity(now)
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")]


def provenance(device: torch.device | str) -> dict[str, Any]:
    """Where a run came from: icarena version, git commit of the icarena checkout (when it is
    one), torch version and device. Recorded in every run's config.json; not part of the
    settings a resume compares."""
    import subprocess

    from icarena.version import __version__

    commit = None
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, timeout=10, check=False)
            commit = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"icarena": __version__, "git_commit": commit, "torch": torch.__version__,
            "device": str(device)}


def train(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    out_dir: str | os.PathLike | None,
    *,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` on ``task`` and write the run dir ``out_dir``; see the module docstring.

    Args:
        model: the task model (its parameters already initialised from the seed).
        task: object implementing the Task protocol.
        cfg: optimisation settings.
        out_dir: the run directory (:mod:`icarena.lifecycle`: created, refused if it holds
            anything else, locked while training); None trains in memory and writes nothing
            (no run dir, checkpoints or TensorBoard events; ``resume`` must then be False).
        config: the caller's resolved config, saved in config.json together with ``train``
            (and, when it has no ``model`` section and ``model`` is a
            :class:`~icarena.pretraining.model.SequenceModel`, with the model's config, so that
            :func:`~icarena.pretraining.model.load_model` rebuilds it from the run dir). Its
            ``model``, ``task`` and ``dataset`` sections and the optimiser / schedule settings
            define the run (:func:`run_identity`): a resume refuses a checkpoint that differs in
            them and names the keys.
        resume: continue from ``out_dir/ckpt.pt`` (a run dir without a checkpoint yet starts at
            step 0). With a larger ``cfg.steps`` than the checkpoint's run, trains the extra
            steps; the schedule follows the new total, so that is not the same as an
            uninterrupted run of the new length.
        overwrite: replace an icarena run already in ``out_dir``.
    """
    cfg.validate()
    require_training_fits(model, task, cfg)
    if out_dir is None:
        check(not resume, "resume=True needs an out_dir holding the run to continue",
              fields="resume")
        return _train(model, task, cfg, None, config, resume=False)
    out_dir = Path(out_dir)
    with claim_run(out_dir, overwrite=overwrite, resume=resume, require_existing=False) as mode:
        return _train(model, task, cfg, out_dir, config, resume=mode == "resume")


def _train(
    model: nn.Module, task: Task, cfg: TrainConfig, out_dir: Path | None,
    config: dict[str, Any] | None, *, resume: bool,
) -> TrainResult:
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    info = init_distributed(device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    full_config = dict(config or {})
    from icarena.pretraining.model import SequenceModel

    if "model" not in full_config and isinstance(model, SequenceModel):
        full_config["model"] = dataclasses.asdict(model.cfg)  # load_model rebuilds it from this
    full_config["train"] = dataclasses.asdict(cfg)
    full_config["provenance"] = provenance(device)
    write = info.is_main and out_dir is not None  # rank 0 of a run with a run dir writes files
    ckpt_path = out_dir / "ckpt.pt" if out_dir is not None else None

    start_step, losses, eval_history = 0, [], []
    state = None
    if resume and ckpt_path.exists():
        state = check_checkpoint(load_checkpoint(ckpt_path), ckpt_path, steps=cfg.steps)
        diff = identity_differences(state.get("config", {}), full_config)
        if diff:
            raise CheckpointError(
                f"cannot resume {out_dir}: settings that define the run differ from its "
                f"checkpoint's ({'; '.join(diff)}); resume with the same settings, or start a "
                "new run in another --out-dir"
            )
    elif not resume and ckpt_path is not None and (
            ckpt_path.exists() or (out_dir / "model.safetensors").exists()):
        raise CheckpointError(
            f"{out_dir} already holds a run; pass {{resume}} to continue it, {{overwrite}} to "
            "replace it, or choose another {out_dir}", fields=("resume", "overwrite", "out_dir")
        )

    model.to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg) / cfg.lr)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt_path} does not fit this model: "
                                  f"{str(e).splitlines()[0]}") from e
        try:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            losses = [float(x) for x in state["losses"]]
            eval_history = [(int(s), dict(m)) for s, m in state["eval_history"]]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as e:
            # the file is untrusted input: any malformed optimizer state is the file's problem
            raise CheckpointError(
                f"{ckpt_path} has an optimizer/scheduler state of another layout than this "
                f"model's ({str(e).splitlines()[0] if str(e) else type(e).__name__}); resume "
                "from a checkpoint of the same model, or start a new run"
            ) from e
        start_step = int(state["step"])
        if "task" in state and hasattr(task, "load_state_dict"):
            task.load_state_dict(state["task"])

    if hasattr(task, "to"):  # the dataset on the training device, once
        task.to(device)
    inner = model
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        model = torch.compile(model)

    writer = None
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir))
        if start_step == 0:
            rows = "\n".join(f"|{k}|{v}|" for k, v in _flatten(full_config).items())
            writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")

    try:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps, initial=start_step, desc="train", dynamic_ncols=True,
            disable=not (cfg.progress and info.is_main and sys.stderr.isatty()),
        )
        tokens_per_sample = int(getattr(task, "tokens_per_sample", 0) or 0)
        other_seconds = 0.0  # evaluation and checkpoints inside the loop (not training time)
        pending: list[torch.Tensor] = []  # losses of the steps since the last read-back (device)
        first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # first non-finite step
        autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                                  enabled=cfg.precision == "bf16")

        def read_back() -> None:
            """Append the pending losses to ``losses`` (one device sync); stop on a bad loss."""
            if not pending:
                return
            with host_sync_point(device):
                values = torch.cat([torch.stack(pending).double(), first_bad[None].double()]).cpu()
            bad = int(values[-1])
            if bad >= 0:
                value = float(values[bad - len(losses)])
                raise IcarenaError(
                    f"training loss became {value} at step {bad}; the batches hold non-finite "
                    "values or rows with no target (check the dataset), or the optimisation "
                    "diverged (lower {train.lr}, raise {train.warmup_steps}, set "
                    "{train.grad_clip})",
                    fields=("train.lr", "train.warmup_steps", "train.grad_clip"))
            losses.extend(values[:-1].tolist())
            pending.clear()

        def run_eval(step: int) -> dict[str, float]:
            inner.eval()
            with torch.no_grad(), autocast:
                metrics = {k: float(v) for k, v in task.evaluate(inner).items()}
            inner.train()
            eval_history.append((step, metrics))
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(f"eval/{k}", v, step)
            return metrics

        t_start = time.perf_counter()
        config_written = False
        model.train()
        t_loop = time.perf_counter()
        for step in range(start_step, cfg.steps):
            rng = np.random.default_rng([cfg.seed, info.rank, step])
            if hasattr(task, "set_step"):
                task.set_step(step)
            batch = {k: v.to(device, non_blocking=True)
                     for k, v in task.sample_batch(rng, cfg.batch_size).items()}
            with autocast:
                loss = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            loss = loss.detach()
            pending.append(loss)
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            bar.update(1)
            done = step + 1
            log_now = done % cfg.log_every == 0 or done == cfg.steps
            eval_now = bool(cfg.eval_every) and done % cfg.eval_every == 0 and done < cfg.steps
            ckpt_now = done % cfg.ckpt_every == 0 or done == cfg.steps
            if not (log_now or eval_now or ckpt_now):
                continue  # no host sync between these steps
            read_back()
            t0 = time.perf_counter()
            with host_sync_point(device):
                if writer is not None and log_now:
                    writer.add_scalar("train/loss", losses[-1], done)
                    writer.add_scalar("train/lr", opt.param_groups[0]["lr"], done)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if eval_now and info.is_main:
                    run_eval(done)
                if write and ckpt_now:
                    if not config_written:  # config.json is written with the first weights
                        atomic_write_json(out_dir / "config.json", full_config)
                        config_written = True
                    save_weights(inner, out_dir / "model.safetensors")
                    _save_checkpoint(ckpt_path, inner, opt, sched, done, losses, eval_history,
                                     full_config, task)
            other_seconds += time.perf_counter() - t0
        read_back()
        with host_sync_point(device):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds = time.perf_counter() - t_loop - other_seconds
            steps_timed = cfg.steps - start_step
            bar.close()

            final_eval = run_eval(cfg.steps) if info.is_main else {}
            if device.type == "cuda":
                peak = int(torch.cuda.max_memory_allocated(device))
            else:
                peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
            tps = (tokens_per_sample * cfg.batch_size * steps_timed / train_seconds
                   if tokens_per_sample and steps_timed and train_seconds > 0 else float("nan"))
            if writer is not None:
                hparams = {k: v for k, v in _flatten(full_config).items()
                           if isinstance(v, int | float | str | bool)}
                writer.add_hparams(hparams, {f"hparam/{k}": v for k, v in final_eval.items()},
                                   run_name=".")
                writer.close()
            if write and not config_written:  # a resumed run that had no steps left
                atomic_write_json(out_dir / "config.json", full_config)
            if write and final_eval:
                _save_checkpoint(ckpt_path, inner, opt, sched, cfg.steps, losses, eval_history,
                                 full_config, task)
            if write:
                _write_train_metrics(out_dir / "metrics.json", {
                    "tokens_per_s": tps, "steps": cfg.steps, "steps_timed": steps_timed,
                    "train_seconds": train_seconds, "final_loss": losses[-1] if losses else None,
                    "peak_mem_bytes": peak, "device": str(device), "precision": cfg.precision,
                    "compile": cfg.compile, "final_eval": final_eval})
            if info.enabled:
                dist.barrier()
        return TrainResult(
            losses=losses, eval_history=eval_history, final_eval=final_eval, tokens_per_s=tps,
            peak_mem_bytes=peak, seconds=time.perf_counter() - t_start, out_dir=out_dir,
            config=full_config,
        )
    finally:  # the event writer's thread must not outlive a failed run (nor its directory)
        if writer is not None:
            writer.close()


def _write_train_metrics(path: Path, train_metrics: dict[str, Any]) -> None:
    """Set the ``train`` section of ``metrics.json`` (other sections are kept)."""
    metrics: dict[str, Any] = {}
    if path.is_file():
        try:
            metrics = json.loads(path.read_text())
        except ValueError:
            metrics = {}
        metrics = metrics if isinstance(metrics, dict) else {}
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in train_metrics.items()}
    atomic_write_json(path, {**metrics, "train": clean})


def _flatten(d: dict[str, Any], prefix: str = "", raw: bool = False) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become JSON text unless ``raw``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + ".", raw))
        elif isinstance(v, list | tuple) and not raw:
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out

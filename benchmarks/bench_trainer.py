"""Trainer step vs a bare training loop of the same model and batches (ALPINE default size).

Model: the ALPINE default (``alpine_model_config``: GPT, d_model 120, 1 layer, 1 head, tied
embeddings, no biases, vocabulary n + 2 = 102), batch 256, on ALPINE-shaped token rows (random
paths ``s t s v ... t \\n`` of 2 to 17 hops, PAD after the newline).

* ``trainer``: :func:`icarena.pretraining.train.train` (AdamW, warm-up/cosine schedule, clipping,
  loss read back every ``log_every`` = 25 steps, TensorBoard, a checkpoint at the end); its
  tokens/s from the run's ``metrics.json`` (training steps only: evaluation and checkpoint time
  excluded).
* ``bare``: the reference loop below -- the same batches (the same row indices from
  ``np.random.default_rng([seed, 0, step])``, gathered from the same rows already on the
  device), the same optimizer, schedule and clipping, nothing else; losses read once at the end.
* ``hf-gpt2`` (optional peer): HF transformers' ``GPT2LMHeadModel`` of the same size (n_embd
  120, 1 layer, 1 head, context 32) in the bare loop; skipped with a message when transformers
  is not installed.

The runs alternate in rounds so machine noise hits them alike; the best round of each counts.

    python benchmarks/bench_trainer.py [--steps 60 --rounds 3 --threads 2]

Prints tokens/s of each and the ratios trainer / bare (goal >= 0.97) and icarena / HF GPT-2.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from icarena.envs.planning.tokens import NEWLINE, PAD
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import PathLMTask, alpine_model_config
from icarena.pretraining.train import TrainConfig, lr_at, make_optimizer, train

N = 100  # graph nodes: tokens 2 .. N + 1


def alpine_rows(n_rows: int, seed: int = 0) -> np.ndarray:
    """(n_rows, 33) uint16 rows shaped like ALPINE's: s t s v1 ... t \\n PAD ..."""
    rng = np.random.default_rng(seed)
    rows = np.full((n_rows, 33), PAD, dtype=np.uint16)
    for r in range(n_rows):
        hops = int(rng.integers(2, 18))
        path = rng.integers(2, N + 2, size=hops + 1)
        line = [path[0], path[-1], *path, NEWLINE]
        rows[r, : len(line)] = line
    return rows


def train_cfg(steps: int, threads: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=256, lr=1e-3, min_lr=1e-4, warmup_steps=10,
                       weight_decay=0.1, beta2=0.95, ckpt_every=10**9, log_every=25,
                       progress=False, device="cpu", threads=threads)


def model(seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(alpine_model_config(N + 2, 32))


def trainer_tokens_per_s(rows: np.ndarray, cfg: TrainConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        train(model(), PathLMTask(rows), cfg, Path(tmp) / "run")
        return float(json.loads((Path(tmp) / "run" / "metrics.json").read_text())
                     ["train"]["tokens_per_s"])


def bare_tokens_per_s(net: torch.nn.Module, rows: np.ndarray, cfg: TrainConfig,
                      logits_of=lambda net, x: net(x)) -> float:
    """The reference loop: same batches, optimizer, schedule and clipping, nothing else."""
    task = PathLMTask(rows).to("cpu")
    batches = [task.sample_batch(np.random.default_rng([cfg.seed, 0, s]), cfg.batch_size)
               for s in range(cfg.steps)]
    opt = make_optimizer(net, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg) / cfg.lr)
    net.train()
    losses = []
    t0 = time.perf_counter()
    for batch in batches:
        logits = logits_of(net, batch["x"])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["y"].reshape(-1),
                               ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.detach())
    torch.stack(losses).tolist()
    seconds = time.perf_counter() - t0
    return task.tokens_per_sample * cfg.batch_size * cfg.steps / seconds


def hf_gpt2():
    """HF transformers' GPT-2 of the ALPINE default size, or None when not installed."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=N + 2, n_positions=32, n_embd=120, n_layer=1, n_head=1,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
                     eos_token_id=None)
    return GPT2LMHeadModel(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = alpine_rows(a.rows)
    cfg = train_cfg(a.steps, a.threads)
    peer = hf_gpt2()
    rates: dict[str, list[float]] = {"trainer": [], "bare": []}
    if peer is not None:
        rates["hf-gpt2"] = []
    trainer_tokens_per_s(rows, train_cfg(5, a.threads))  # warm-up
    for _ in range(a.rounds):
        rates["trainer"].append(trainer_tokens_per_s(rows, cfg))
        rates["bare"].append(bare_tokens_per_s(model(), rows, cfg))
        if peer is not None:
            rates["hf-gpt2"].append(bare_tokens_per_s(
                peer, rows, cfg, lambda net, x: net(input_ids=x).logits))
    print(f"ALPINE default model: d_model=120 n_layers=1 n_heads=1 vocab={N + 2} batch=256 "
          f"steps={a.steps} threads={a.threads}")
    best = {k: max(v) for k, v in rates.items()}
    print("rounds:", {k: [round(x) for x in v] for k, v in rates.items()})
    for k, v in best.items():
        print(f"{k:8s} {v:12,.0f} training tokens/s (best of {a.rounds} rounds)")
    print(f"ratio trainer/bare: {best['trainer'] / best['bare']:.3f} (goal >= 0.97)")
    if peer is None:
        print("hf-gpt2: skipped (transformers is not installed; pip install transformers to "
              "compare with HF GPT-2 of the same size)")
    else:
        print(f"ratio icarena-bare/hf-gpt2: {best['bare'] / best['hf-gpt2']:.2f} "
              "(> 1: icarena's GPT trains faster)")


if __name__ == "__main__":
    main()

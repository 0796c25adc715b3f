"""Causal BiXT training step vs sequence length: latent_scan, prefix_reencode and GPT.

BiXT (Hiller et al. 2024, arXiv 2402.12138) has no causal form; icarena offers two
(icarena/pretraining/backbones/bixt.py): ``prefix_reencode`` (exact, every prefix encoded on
its own, O(T^2) per sequence) and ``latent_scan`` (one latent set per position, O(T)). This
times one training step -- forward, backward and an AdamW step on a random batch -- of each and
of the ``gpt`` backbone of the same width and depth, at several sequence lengths T, in one
process. For every T the three models take turns within a round, so machine noise hits them
alike; a model's timed steps in a round are as many as fill ``--min-ms`` (at least one; the
warm-up step sets the count), and the figure kept is the best (smallest) of the rounds.

    python benchmarks/bench_bixt_causal.py [--seqs 32,64,128,256 --batch 32 --d-model 64
                                            --n-layers 2 --n-latents 16 --rounds 2
                                            --min-ms 1500]

Prints ms per step of each model at each T, the ratios to GPT and scan / re-encode, and how
each grows when T doubles (2 = linear, 4 = quadratic) with the exponent fitted over the range,
for the wall-clock time and for the process's user CPU time. The two differ mostly by system
time spent on page faults: the C library's malloc hands blocks above its mmap threshold (at most
32 MB) back to the system when torch frees them, so every step touches fresh pages again, and
the share of tensors that large grows with T.
Threads: 1 by default (on the shared 2-core machine a second OpenMP thread mostly adds waits).
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import torch
from torch import nn

from icarena.pretraining import backbones

MODELS = ("gpt", "latent_scan", "prefix_reencode")


def build(name: str, a: argparse.Namespace, max_len: int) -> nn.Module:
    """The GPT backbone or a causal BiXT in mode ``name``, all of the same width and depth."""
    kw = dict(d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads, causal=True,
              max_len=max_len)
    if name == "gpt":
        return backbones.build("gpt", **kw)
    return backbones.build("bixt", mode=name, n_latents=a.n_latents, **kw)


def ms_per_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                steps: int) -> tuple[float, float]:
    """(wall-clock ms, user-CPU ms) per training step (forward + backward + optimizer step),
    the mean of ``steps`` steps."""
    u0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
    for _ in range(steps):
        loss = model(x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    wall = time.perf_counter() - t0
    user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - u0
    return wall * 1e3 / steps, user * 1e3 / steps


def growth(ms: dict[int, float]) -> tuple[list[str], float]:
    """(time ratio for each doubling of T, exponent p of ms ~ T^p fitted over the range)."""
    seqs = sorted(ms)
    steps = [f"{ms[b] / ms[a]:.2f}" for a, b in zip(seqs, seqs[1:], strict=False)]
    p = math.log(ms[seqs[-1]] / ms[seqs[0]]) / math.log(seqs[-1] / seqs[0])
    return steps, p


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seqs", default="32,64,128,256", help="comma-separated sequence lengths")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--n-latents", type=int, default=16)
    p.add_argument("--min-ms", type=float, default=1500.0,
                   help="time each model, T and round at least this long (in whole steps)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    seqs = sorted(int(s) for s in a.seqs.split(","))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    models = {n: build(n, a, seqs[-1]) for n in MODELS}
    opts = {n: torch.optim.AdamW(m.parameters(), lr=1e-4) for n, m in models.items()}
    print(f"config: batch={a.batch} d_model={a.d_model} n_layers={a.n_layers} "
          f"n_heads={a.n_heads} n_latents={a.n_latents} threads={a.threads} "
          f"min_ms={a.min_ms:g} rounds={a.rounds}")
    print("params: " + " ".join(f"{n}={m.num_params():,}" for n, m in models.items()))
    best: dict[str, dict[int, float]] = {n: {} for n in MODELS}  # wall ms, best round
    user: dict[str, dict[int, float]] = {n: {} for n in MODELS}  # user-CPU ms, best round
    for T in seqs:
        x = torch.randn(a.batch, T, a.d_model)
        steps = {}
        for n in MODELS:  # warm-up at this length; it sets the number of timed steps
            steps[n] = max(1, math.ceil(a.min_ms / ms_per_step(models[n], opts[n], x, 1)[0]))
        for _ in range(a.rounds):
            for n in MODELS:
                t, u = ms_per_step(models[n], opts[n], x, steps[n])
                best[n][T] = min(best[n].get(T, math.inf), t)
                user[n][T] = min(user[n].get(T, math.inf), u)
        g, s, r = (best[n][T] for n in MODELS)
        print(f"T={T:4d}  ms/step  gpt {g:8.1f}  latent_scan {s:8.1f}  prefix_reencode "
              f"{r:8.1f}  |  scan/gpt {s / g:5.1f}  reencode/gpt {r / g:6.1f}  "
              f"reencode/scan {r / s:5.2f}  (user CPU ms: "
              f"{' '.join(f'{user[n][T]:.1f}' for n in MODELS)})", flush=True)
    if len(seqs) > 1:
        print("growth per doubling of T (2 = linear, 4 = quadratic) and fitted exponent p "
              "(ms ~ T^p):")
        for n in MODELS:
            (w, pw), (c, pc) = growth(best[n]), growth(user[n])
            print(f"  {n:16s} wall {' '.join(w):20s} p = {pw:.2f}   "
                  f"user CPU {' '.join(c):20s} p = {pc:.2f}")


if __name__ == "__main__":
    main()

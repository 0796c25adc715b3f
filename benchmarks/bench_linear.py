"""The ``linear`` backbone at the ALPINE default vs GPT: training step time and sampling memory.

Model: ``alpine_model_config`` (d_model 120, 1 layer, 1 head: head_dim 120, vocabulary 102,
context 32) with ``backbone="linear"`` or ``"gpt"``; batch 256 of random token rows of 31
positions, forward + backward + AdamW.

Memory: each backbone samples 2,000 ALPINE prompts (30 new tokens, batch 2,048, incremental
decoding) in a fresh child process (``--child``), which reads its resident set (VmRSS) after
building the model, resets the kernel's high-water mark (writing 5 to /proc/self/clear_refs)
and reports VmHWM - VmRSS: the extra memory sampling needed (allocator caching included), and
VmHWM itself. Where clear_refs cannot be written, ru_maxrss stands in (an overestimate).

    python benchmarks/bench_linear.py [--steps 10 --threads 2]

Prints ms/step of each, the ratio linear / GPT (goal <= 2) and the sampling peak (goal < 1 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import alpine_model_config, sample_completions

VOCAB = 102


def model(backbone: str) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(alpine_model_config(VOCAB, 32, backbone=backbone))


def ms_per_step(net: SequenceModel, x: torch.Tensor, steps: int) -> float:
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = net(x).logsumexp(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps * 1000


def _status_kb(field: str) -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def child(backbone: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    net = model(backbone)
    prompts = np.random.default_rng(0).integers(2, VOCAB, size=(2000, 2))
    sample_completions(net, prompts[:8], 2)  # warm-up
    before = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    sample_completions(net, prompts, 30, seed=0)
    peak = _status_kb("VmHWM") if reset else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"extra_mb": (peak - (before or 0)) / 1024, "peak_mb": peak / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.threads)))
        return
    torch.set_num_threads(a.threads)
    x = torch.randint(0, VOCAB, (256, 31), generator=torch.Generator().manual_seed(0))
    nets = {name: model(name) for name in ("gpt", "linear")}
    for net in nets.values():
        ms_per_step(net, x, 2)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(a.rounds):
        for name, net in nets.items():
            times[name].append(ms_per_step(net, x, a.steps))
    best = {k: min(v) for k, v in times.items()}
    print(f"ALPINE default size, batch 256, threads={a.threads}")
    for k, v in best.items():
        print(f"{k:7s} {v:8.1f} ms/step (best of {a.rounds} rounds of {a.steps})")
    print(f"ratio linear/gpt per step: {best['linear'] / best['gpt']:.2f} (goal <= 2)")
    for name in nets:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--threads",
                              str(a.threads)], capture_output=True, text=True, check=True)
        mem = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:7s} sampling 2,000 prompts x 30 tokens: extra {mem['extra_mb']:.0f} MB, "
              f"process peak {mem['peak_mb']:.0f} MB (goal < 1024 MB)")


if __name__ == "__main__":
    main()

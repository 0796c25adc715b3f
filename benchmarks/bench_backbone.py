"""Training throughput of the GPT backbone vs a plain PyTorch reference of the same size.

Reference: ``nn.TransformerEncoder`` (pre-LN, GELU, causal mask) with the same width, depth,
heads, MLP ratio and learned positions. Both do forward + backward + AdamW on the same random
batches, in the same process, alternating in rounds so machine noise hits both alike.

    python benchmarks/bench_backbone.py [--d-model 64 --n-layers 3 --n-heads 2 --seq 22 --batch 64]

Prints tokens/s of each and the ratio GPT / reference (> 1 means the GPT backbone is faster).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from icarena.pretraining import backbones


class ReferenceEncoder(nn.Module):
    """nn.TransformerEncoder with learned positions and a causal mask."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, max_len: int):
        super().__init__()
        self.wpe = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        x = x + self.wpe(torch.arange(T))[None]
        return self.ln_f(self.encoder(x, mask=mask, is_causal=True))


def steps_per_second(model: nn.Module, x: torch.Tensor, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = model(x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=3)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--seq", type=int, default=22)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gpt = backbones.build("gpt", d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads,
                          max_len=a.seq)
    ref = ReferenceEncoder(a.d_model, a.n_layers, a.n_heads, a.seq)
    x = torch.randn(a.batch, a.seq, a.d_model)
    for m in (gpt, ref):  # warm-up
        steps_per_second(m, x, 5)
    rates = {"gpt": [], "reference": []}
    for _ in range(a.rounds):
        rates["gpt"].append(steps_per_second(gpt, x, a.steps))
        rates["reference"].append(steps_per_second(ref, x, a.steps))
    tokens = a.batch * a.seq
    print(f"config: d_model={a.d_model} n_layers={a.n_layers} n_heads={a.n_heads} "
          f"seq={a.seq} batch={a.batch} threads={a.threads}")
    n_ref = sum(p.numel() for p in ref.parameters())
    print(f"params: gpt={gpt.num_params():,} reference={n_ref:,}")
    best = {k: max(v) * tokens for k, v in rates.items()}
    for k, v in best.items():
        print(f"{k:10s} {v:12,.0f} training tokens/s (best of {a.rounds} rounds)")
    print(f"ratio gpt/reference: {best['gpt'] / best['reference']:.2f}")


if __name__ == "__main__":
    main()

"""Incremental decoding vs recomputing the prefix: ALPINE sampling and in-context game play.

1. ALPINE evaluation: ``sample_completions`` of ``--pairs`` x ``--samples`` prompts ``s t`` of the
   ALPINE default model (GPT, d_model 120, 1 layer, 1 head, vocabulary n + 2, context 32), up to
   30 new tokens each, with the key/value cache vs the plain loop that recomputes the whole
   prefix for every new token (``incremental=False``).
2. In-context game play: :class:`~icarena.pretraining.game_player.InContextGamePlayer` (ICGP
   default model: GPT, d_model 32, 4 layers, 4 heads) playing ``--games`` games of H = 2 for
   K = ``--episodes`` episodes (T = K·H tokens), the policy re-read before every step, with both
   read-outs. Incremental: the whole play (queries and game steps) is timed. Recompute: the
   queries of a player without the decoding state on the same histories, every
   ``--stride``-th step timed and multiplied by the stride (the sum over t of an O(t) forward;
   ``--stride 1`` times every query). The ratio leaves out the recomputing play's game steps,
   so it understates the gain.

Threads: 1 by default. Decoding is many small operations; on the shared 2-core machine a
second OpenMP thread mostly adds barrier waits (the reference loops get the same setting).

The models are untrained (random weights): the time per token does not depend on the weights,
and with random weights nearly every completion runs the full 30 tokens (the worst case).

    python benchmarks/bench_decoding.py [--pairs 200 --samples 10 --episodes 300 --games 16]

The default 200 pairs x 10 samples are one sampling batch (2,000 prompts); the ALPINE evaluation
of 1,000 pairs x 10 samples is five such batches, so its ratio is the same.

Prints seconds of each and the ratio recompute / incremental (> 1: decoding is faster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from icarena.envs.games import TabularGame
from icarena.pretraining.game_lm import STREAMS, icgp_model_config
from icarena.pretraining.game_player import InContextGamePlayer
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import alpine_model_config, sample_completions


def bench_sampling(pairs: int, samples: int, n: int, backbone: str
                   ) -> tuple[float, float, int]:
    """(seconds incremental, seconds recomputing, completions that differ between the two)."""
    torch.manual_seed(0)
    model = SequenceModel(alpine_model_config(n + 2, 32, backbone=backbone))
    prompts = np.repeat(np.random.default_rng(0).integers(2, n + 2, size=(pairs, 2)), samples, 0)
    times, outs = [], []
    for incremental in (True, False):
        t0 = time.perf_counter()
        outs.append(sample_completions(model, prompts, 30, seed=0, incremental=incremental))
        times.append(time.perf_counter() - t0)
    differ = int((outs[0] != outs[1]).any(axis=1).sum())
    return times[0], times[1], differ


def bench_play(episodes: int, games: int, read_out: str, stride: int) -> tuple[float, float]:
    """(seconds of the incremental play, seconds of the recomputing player's queries)."""
    H, S, A, B = 2, 2, 3, 3
    game = TabularGame.random(H, S, A, B, seed=0, n_games=games)
    players = []
    for incremental in (True, False):
        torch.manual_seed(0)
        models = {s: SequenceModel(icgp_model_config(s, (H, S, A, B), episodes * H,
                                                     read_out=read_out))
                  for s in STREAMS["decentralized"]}
        meta = {"setting": "decentralized", "H": H, "S": S, "A": A, "B": B,
                "episodes": episodes, "streams": list(STREAMS["decentralized"]),
                "embedding": "slot"}
        players.append(InContextGamePlayer(models, meta, incremental=incremental))
    t0 = time.perf_counter()
    rec = players[0].play(game, episodes, seed=0, query="step")
    t_inc = time.perf_counter() - t0
    # The recomputing player's queries on the same histories (every stride-th, times stride).
    t0 = time.perf_counter()
    for t in range(0, episodes * H, stride):
        players[1].policies({k: v[:, :t] for k, v in rec.items()})
    return t_inc, (time.perf_counter() - t0) * stride

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--n", type=int, default=100, help="ALPINE graph nodes (vocabulary n + 2)")
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--games", type=int, default=16)
    p.add_argument("--stride", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"threads={a.threads}")
    for backbone in ("gpt", "linear"):
        inc, full, differ = bench_sampling(a.pairs, a.samples, a.n, backbone)
        print(f"ALPINE sampling ({backbone}, {a.pairs} pairs x {a.samples} samples, 30 tokens): "
              f"incremental {inc:.2f} s, recompute {full:.2f} s, ratio {full / inc:.2f} "
              f"(goal >= 3); float32 completions that differ: {differ} of "
              f"{a.pairs * a.samples}")
    for read_out in ("linear", "query"):
        inc, full = bench_play(a.episodes, a.games, read_out, a.stride)
        print(f"game play ({read_out} read-out, K={a.episodes}, T={2 * a.episodes}, "
              f"{a.games} games, query every step): incremental {inc:.2f} s, recompute "
              f"{full:.2f} s (stride {a.stride}), ratio {full / inc:.2f} (goal >= 10)")


if __name__ == "__main__":
    main()

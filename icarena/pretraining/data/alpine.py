"""``icarena generate alpine``: ALPINE path-finding token datasets on a random DAG.

Reference: ALPINE (Wang et al. 2024, arXiv 2405.09220) Sec. 3 and Alg. 1.

Recipe (one seed; the stages draw from independent streams ``[seed, k]``):

1. graph ``random_dag(nodes, p, seed=seed)`` (rebuild it with the same call);
2. split of the reachable pairs (:func:`icarena.envs.planning.alpine_split`): edge pairs and, for
   every target, its smallest-index reachable source always in train; every other pair in train
   with probability ``train_fraction`` (0.5), else in test;
3. ``paths_per_pair`` (20) random walks per train pair (ALPINE Alg. 1: each step goes to a
   uniformly random out-neighbour that can still reach the target), in pair order, then (if
   ``edge_lines``) every edge once more as the line ``s t s t``; so every edge is seen;
4. one random walk per test pair (only its ``s t`` prompt is used for evaluation);
5. (``chain_lines`` > 0, not in ALPINE) that many *chained* training lines, appended last
   (:func:`chained_paths`): a walk s -> u joined to a walk u -> t whose prompt (s, t) is a
   train pair, so no test pair is ever a training prompt, but the nodes of the s -> u part are
   seen on a line towards t. It writes into the data concatenations of observed reachability,
   which ALPINE finds the model cannot infer. ``chain_mode`` picks u: ``uniform`` joins two train
   pairs (s, u), (u, t); ``cover`` takes u from the reachable pairs (u, t) that no line of
   steps 3-4 observes (u on a line towards t), each once before any repeats, with s a train
   source of t that reaches u; it uses the graph, never the split of (u, t).

Arrays written (see :mod:`icarena.envs.planning.tokens` for the token format):
``train/tokens`` uint16 (L, block_size + 1), ``train/pairs`` int64 (P, 2), ``test/pairs`` int64
(M, 2), ``test/tokens`` uint16 (M, block_size + 1), ``graph/edges`` int64 (E, 2). The manifest
config records ``n``, ``vocab_size`` (n + 2), ``block_size`` and the graph statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from icarena import limits
from icarena.envs.planning.dag import (
    alpine_split,
    edges_array,
    is_dag,
    longest_path_edges,
    random_dag,
    reachability,
    sample_paths,
)
from icarena.envs.planning.tokens import block_size_for, encode_paths, vocab_size
from icarena.errors import check
from icarena.lifecycle import recorded_config, writes_dataset
from icarena.pretraining.data.store import write_dataset


@dataclass
class Spec:
    """What an alpine dataset holds (everything but where it goes and its seed)."""

    nodes: int = 100
    """Number of graph nodes n (ALPINE: 100..500); the vocabulary has n + 2 tokens."""
    p: float = 0.1
    """Edge probability of the random DAG (ALPINE: 0.1)."""
    paths_per_pair: int = 20
    """Random-walk training lines per train pair (ALPINE: 20)."""
    train_fraction: float = 0.5
    """Probability that a non-forced reachable pair goes to train (ALPINE: 0.5)."""
    first_source_in_train: bool = True
    """Always put each target's smallest-index reachable source in train (authors' code)."""
    edge_lines: bool = True
    """Add every edge once more as the line 's t s t' (ALPINE)."""
    chain_lines: int = 0
    """Chained training lines appended after ALPINE's (0: none, as in ALPINE): a walk s -> u
    joined to a walk u -> t, the prompt (s, t) a train pair."""
    chain_mode: str = "uniform"
    """How a chained line picks u: 'uniform' ((s, u), (u, t) train pairs) or 'cover' (u, t
    reachable but on no training line yet, each such pair once before repeats)."""
    shard_rows: int | None = None
    """Rows per shard of each array (None: one shard)."""


@dataclass
class Config(Spec):
    """Write an ALPINE path-finding dataset (random DAG, train/test pairs, token lines)."""

    out_dir: str = "data/alpine"
    """Output dataset directory."""
    seed: int = 0
    """Seed of the graph (random_dag(nodes, p, seed=seed)), the split and the paths."""
    overwrite: bool = False
    """Replace an existing icarena dataset at ``out_dir``."""


def graph_bytes(nodes: int) -> int:
    """Bytes of the dense n x n arrays that building an ALPINE graph and its split holds at once:
    the float64 edge (and split) draw, 8 n^2, plus three n x n bool masks (draw < p,
    reachability, forced pairs)."""
    return 11 * int(nodes) ** 2


def require_graph_fits(nodes: int) -> None:
    """Refuse (before ``random_dag`` allocates) a node count whose dense arrays exceed the
    memory ceiling (:mod:`icarena.limits`)."""
    n = int(nodes)
    limits.require(
        graph_bytes(n),
        f"a graph of {n} nodes (its n x n float64 edge draw alone is "
        f"{limits.format_bytes(8 * n * n)}, plus the reachability and split masks)",
        "--nodes",
    )


def lines_bytes(rows: int, width: int) -> int:
    """Bytes of ``rows`` sampled walks of at most ``width`` nodes: int32 paths plus the uint16
    token rows (width + 3 tokens) of the same lines."""
    return int(rows) * (4 * int(width) + 2 * (int(width) + 4))


def chained_paths(
    graph: nx.DiGraph, train_pairs: np.ndarray, count: int, *, seed: int,
    reach: np.ndarray | None = None, mode: str = "uniform",
    observed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` walks s -> ... -> u -> ... -> t joined at u, each prompt (s, t) a train pair.

    ``mode='uniform'``: (s, t) uniform among the train pairs with an intermediate u such that
    (s, u) and (u, t) are train pairs too, then u uniform among those. ``mode='cover'``: (u, t)
    runs through the reachable pairs that ``observed`` (bool (n, n), ``observed[t, u]``: u on a
    training line towards t) lacks and that some train pair (s, t) with s reaching u can carry,
    in a random order, each once before any repeats; s uniform among those sources. Then a walk
    s -> u and a walk u -> t (:func:`icarena.envs.planning.dag.sample_paths`, streams
    ``[seed, 5]``, ``[seed, 6]``), joined at u: on a DAG a path from s to t.

    Returns ``(paths, lengths)``: int32 (count, W) padded with -1 and int64 (count,).
    """
    check(mode in ("uniform", "cover"), f"--chain-mode must be 'uniform' or 'cover', got {mode!r}")
    n = graph.number_of_nodes()
    R = reachability(graph) if reach is None else reach
    train = np.zeros((n, n), dtype=bool)
    train[train_pairs[:, 0], train_pairs[:, 1]] = True
    rng = np.random.default_rng([seed, 4])
    if mode == "uniform":
        via = train.astype(np.int64) @ train.astype(np.int64)  # (s, t) -> how many u
        eligible = np.argwhere(train & (via > 0))
        what = "a train pair (s, t) with an intermediate u where (s, u) and (u, t) are train pairs"
    else:
        assert observed is not None, "mode='cover' needs the observed reachability"
        # (u, t) reachable, not yet observed, and carried by a train pair (s, t) with s -> u
        carriers = R.T.astype(np.int64) @ train.astype(np.int64)  # (u, t) -> how many s
        eligible = np.argwhere(R & ~observed.T & (carriers > 0))
        what = "a reachable pair (u, t) on no training line that a train pair (s, t) can carry"
    check(len(eligible) > 0, f"--chain-lines needs {what}, and this dataset has none; pass "
                             "--chain-lines 0, another --chain-mode, or raise --train-fraction")
    if mode == "uniform":
        s, t = eligible[rng.integers(0, len(eligible), size=count)].T
        candidates = train[s] & train[:, t].T  # (count, n): u with (s, u) and (u, t) in train
        u = np.argmax(np.where(candidates, rng.random(candidates.shape), -1.0), axis=1)
    else:
        order = np.concatenate([rng.permutation(len(eligible))
                                for _ in range(-(-count // len(eligible)))])[:count]
        u, t = eligible[order].T
        candidates = R[:, u].T & train[:, t].T  # (count, n): s with s -> u and (s, t) in train
        s = np.argmax(np.where(candidates, rng.random(candidates.shape), -1.0), axis=1)
    first, len1 = sample_paths(graph, np.stack([s, u], 1), seed=[seed, 5], reach=R)
    second, len2 = sample_paths(graph, np.stack([u, t], 1), seed=[seed, 6], reach=R)
    lengths = len1 + len2 - 1
    paths = np.full((count, int(lengths.max(initial=1))), -1, dtype=np.int32)
    paths[:, :first.shape[1]] = first
    tail = second[:, 1:]  # u is already the last node of the first walk
    keep = np.arange(tail.shape[1])[None, :] < (len2 - 1)[:, None]
    rows = np.broadcast_to(np.arange(count)[:, None], tail.shape)
    cols = len1[:, None] + np.arange(tail.shape[1])[None, :]
    paths[rows[keep], cols[keep]] = tail[keep]
    return paths, lengths


def observed_reachability(paths: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """(n, n) bool ``O[t, v]``: v is a node after the start of some line ending at t (ALPINE's
    observed reachability of a training line ``s t s ... t``, from its node paths)."""
    paths = np.asarray(paths)
    lengths = np.asarray(lengths)
    O = np.zeros((n, n), dtype=bool)
    if len(paths) == 0:
        return O
    target = paths[np.arange(len(paths)), lengths - 1]
    col = np.arange(paths.shape[1])[None, :]
    on = (col >= 1) & (col < lengths[:, None])
    O[np.broadcast_to(target[:, None], paths.shape)[on], paths[on]] = True
    return O


def _stack_paths(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate padded (paths, lengths) blocks, padding every block to the widest."""
    width = max(max(p.shape[1] for p, _ in parts), 2)
    paths = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-1)
                            for p, _ in parts])
    return paths, np.concatenate([ln for _, ln in parts])


def build_lines(
    graph: nx.DiGraph, train_pairs: np.ndarray, test_pairs: np.ndarray, *, paths_per_pair: int,
    edge_lines: bool, seed: int, reach: np.ndarray | None = None, chain_lines: int = 0,
    chain_mode: str = "uniform",
) -> dict[str, Any]:
    """Sample the training and test paths of an ALPINE dataset and encode them as tokens.

    Returns ``{"train/tokens", "test/tokens", "block_size"}`` (tokens uint16, shared width); the
    ``chain_lines`` chained lines (:func:`chained_paths`) are the last rows of train/tokens.
    """
    check(paths_per_pair >= 0, f"paths_per_pair must be >= 0, got {paths_per_pair}")
    check(isinstance(chain_lines, int) and chain_lines >= 0,
          f"--chain-lines must be an int >= 0, got {chain_lines!r}")
    n = graph.number_of_nodes()
    # A walk visits each node at most once: on a DAG at most longest-path + 1 nodes.
    width = longest_path_edges(graph) + 1 if is_dag(graph) else n
    rows = len(train_pairs) * paths_per_pair + len(test_pairs)
    rows += (graph.number_of_edges() if edge_lines else 0) + chain_lines
    limits.require(lines_bytes(rows, width),
                   f"{rows} path lines of up to {width} nodes",
                   "--paths-per-pair (or --lines), --nodes / --blocks")
    R = reachability(graph) if reach is None else reach
    walk_pairs = np.repeat(train_pairs, paths_per_pair, axis=0)
    tr_paths, tr_len = sample_paths(graph, walk_pairs, seed=[seed, 2], reach=R)
    parts = [(tr_paths, tr_len)]
    if edge_lines:
        e = edges_array(graph)
        parts.append((e.astype(np.int32), np.full(len(e), 2, dtype=np.int64)))
    if chain_lines:
        seen = (observed_reachability(*_stack_paths(parts), n) if chain_mode == "cover"
                else None)
        parts.append(chained_paths(graph, train_pairs, chain_lines, seed=seed, reach=R,
                                   mode=chain_mode, observed=seen))
    if len(parts) > 1:
        tr_paths, tr_len = _stack_paths(parts)
    te_paths, te_len = sample_paths(graph, test_pairs, seed=[seed, 3], reach=R)
    longest = int(max(tr_len.max(initial=1), te_len.max(initial=1))) + 3
    bs = block_size_for(longest)
    train_tokens, _ = encode_paths(tr_paths, tr_len, n, bs)
    test_tokens, _ = encode_paths(te_paths, te_len, n, bs)
    return {"train/tokens": train_tokens, "test/tokens": test_tokens, "block_size": bs}


def write_path_dataset(
    out: str | Path, graph: nx.DiGraph, train_pairs: np.ndarray, test_pairs: np.ndarray,
    lines: dict[str, Any], *, generator: str, config: dict[str, Any], seed: int,
    shard_rows: int | None, overwrite: bool, files: dict[str, bytes] | None = None,
) -> Path:
    """Write the arrays of a path dataset (shared by the alpine and blocksworld generators)."""
    n = graph.number_of_nodes()
    edges = edges_array(graph)
    cfg = dict(config)
    cfg.update(
        n=n, vocab_size=vocab_size(n), block_size=int(lines["block_size"]),
        num_edges=len(edges), reachable_pairs=len(train_pairs) + len(test_pairs),
        train_pairs=len(train_pairs), test_pairs=len(test_pairs),
        train_lines=len(lines["train/tokens"]),
    )
    arrays = {
        "train/tokens": lines["train/tokens"],
        "train/pairs": np.asarray(train_pairs, dtype=np.int64),
        "test/pairs": np.asarray(test_pairs, dtype=np.int64),
        "test/tokens": lines["test/tokens"],
        "graph/edges": edges,
    }
    return write_dataset(out, arrays, generator=generator, config=cfg, seed=seed,
                         shard_rows=shard_rows, files=files, overwrite=overwrite)


@writes_dataset
def generate(cfg: Config) -> Path:
    """Generate the dataset described by ``cfg`` and return its directory."""
    check(isinstance(cfg.paths_per_pair, int) and cfg.paths_per_pair >= 1,
          f"--paths-per-pair must be >= 1, got {cfg.paths_per_pair}")
    require_graph_fits(cfg.nodes)
    graph = random_dag(cfg.nodes, cfg.p, seed=cfg.seed)
    R = reachability(graph)
    train_pairs, test_pairs = alpine_split(
        graph, train_fraction=cfg.train_fraction, first_source_in_train=cfg.first_source_in_train,
        seed=[cfg.seed, 1], reach=R,
    )
    check(len(test_pairs) > 0,
          f"the split of a {cfg.nodes}-node graph (p = {cfg.p}) left no test pairs to evaluate "
          "on; raise --nodes or --p, or lower --train-fraction")
    lines = build_lines(graph, train_pairs, test_pairs, paths_per_pair=cfg.paths_per_pair,
                        edge_lines=cfg.edge_lines, seed=cfg.seed, reach=R,
                        chain_lines=cfg.chain_lines, chain_mode=cfg.chain_mode)
    return write_path_dataset(cfg.out_dir, graph, train_pairs, test_pairs, lines,
                              generator="alpine", config=recorded_config(cfg), seed=cfg.seed,
                              shard_rows=cfg.shard_rows, overwrite=cfg.overwrite)

"""``icarena generate blocksworld``: ALPINE-format path datasets on the Blocksworld state graph.

Reference: ALPINE App. F (Wang et al. 2024, arXiv 2405.09220). The authors'
Blocksworld generator is not public; this is the documented reconstruction:

1. graph ``blocksworld_graph(blocks, ops)`` (4 blocks, ``move``: 73 states, 240 edges; towers
   are nodes 0..23);
2. split of all ordered reachable pairs (s != t) with ``exact=True``: edge pairs always in train
   (``edges_in_train``), then a uniformly random subset of the other pairs so that exactly
   ``round(train_fraction * P)`` pairs (80%) are in train, the rest in test;
3. training lines, ``sampling="lines"`` (ALPINE): ``lines`` (50,000) lines; each picks a train
   pair uniformly at random (with replacement) and a self-avoiding random walk from s to t
   (:func:`icarena.envs.planning.sample_paths` with ``simple=True``: each step goes to a uniformly
   random unvisited out-neighbour that can reach t; a walk that gets stuck restarts from s), so
   every training path is acyclic. ``sampling="per_pair"`` instead takes ``paths_per_pair``
   such walks for every train pair, in pair order (the DAG recipe). With ``edge_lines`` every edge
   is added once more as ``s t s t`` (default off for ``lines``, as in the paper's 50k lines);
4. one self-avoiding walk per test pair.

Arrays as in :mod:`icarena.pretraining.data.alpine`, plus the file ``states.json`` (node id ->
state label, e.g. ``[ab][c][d]`` = towers bottom -> top).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icarena.envs.planning.blocksworld import OPS, blocksworld_graph
from icarena.envs.planning.dag import alpine_split, reachability
from icarena.errors import check
from icarena.lifecycle import recorded_config, writes_dataset
from icarena.pretraining.data.alpine import build_lines, write_path_dataset


@dataclass
class Spec:
    """What an blocksworld dataset holds (everything but where it goes and its seed)."""

    blocks: int = 4
    """Number of blocks (1..6); 4 blocks give 73 states (ops=move)."""
    ops: str = "move"
    """State graph: 'move' (ALPINE, hand always empty) or '4ops' (PDDL actions, hand states)."""
    train_fraction: float = 0.8
    """Fraction of the ordered reachable pairs that go to train (ALPINE: 0.8)."""
    edges_in_train: bool = True
    """Always put edge pairs (one-move problems) in train."""
    sampling: str = "lines"
    """'lines': `lines` walks on uniformly drawn train pairs; 'per_pair': `paths_per_pair` walks
    for every train pair."""
    lines: int = 50_000
    """Training lines for sampling='lines' (ALPINE: 50,000)."""
    paths_per_pair: int = 20
    """Walks per train pair for sampling='per_pair'."""
    edge_lines: bool = False
    """Add every edge once more as the line 's t s t'."""
    shard_rows: int | None = None
    """Rows per shard of each array (None: one shard)."""


@dataclass
class Config(Spec):
    """Write an ALPINE-format dataset of paths between Blocksworld states."""

    out_dir: str = "data/blocksworld"
    """Output dataset directory."""
    seed: int = 0
    """Seed of the split and of the paths."""
    overwrite: bool = False
    """Replace an existing icarena dataset at ``out_dir``."""


@writes_dataset
def generate(cfg: Config) -> Path:
    """Generate the dataset described by ``cfg`` and return its directory."""
    check(cfg.ops in OPS, f"--ops must be one of {OPS}, got {cfg.ops!r}")
    check(cfg.sampling in ("lines", "per_pair"),
          f"--sampling must be 'lines' or 'per_pair', got {cfg.sampling!r}")
    check(cfg.lines >= 1, f"--lines must be >= 1, got {cfg.lines}")
    check(cfg.paths_per_pair >= 1, f"--paths-per-pair must be >= 1, got {cfg.paths_per_pair}")
    graph = blocksworld_graph(cfg.blocks, cfg.ops)
    check(graph.number_of_nodes() >= 2, "Blocksworld with 1 block has a single state; use >= 2")
    R = reachability(graph)
    train_pairs, test_pairs = alpine_split(
        graph, train_fraction=cfg.train_fraction, exact=True, edges_in_train=cfg.edges_in_train,
        first_source_in_train=False, seed=[cfg.seed, 1], reach=R,
    )
    check(len(train_pairs) > 0, "the split left no train pairs; raise --train-fraction")
    if cfg.sampling == "lines":
        rng = np.random.default_rng([cfg.seed, 4])
        walk_pairs, per_pair = train_pairs[rng.integers(len(train_pairs), size=cfg.lines)], 1
    else:
        walk_pairs, per_pair = train_pairs, cfg.paths_per_pair
    lines = build_lines(graph, walk_pairs, test_pairs, paths_per_pair=per_pair,
                        edge_lines=cfg.edge_lines, seed=cfg.seed, reach=R)
    labels = {str(i): graph.nodes[i]["label"] for i in graph.nodes}
    files = {"states.json": (json.dumps(labels, indent=1, sort_keys=True) + "\n").encode()}
    return write_path_dataset(cfg.out_dir, graph, train_pairs, test_pairs, lines,
                              generator="blocksworld", config=recorded_config(cfg), seed=cfg.seed,
                              shard_rows=cfg.shard_rows, overwrite=cfg.overwrite, files=files)

"""Path planning from Python: train a path model on your own graph and plan with it.

:func:`train_planner` takes a networkx DiGraph on the nodes ``0..n-1`` (no dataset on disk),
draws ALPINE training lines on it (Wang et al. 2024, arXiv 2405.09220, Alg. 1: random walks
from each training pair's source that only step to nodes that can still reach its target, plus
every edge as a line) and trains a causal next-token model with the path track's recommended
settings (:func:`~icarena.pretraining.path_lm.path_train_config`) through the same recipe as
``icarena pretrain path`` (:func:`~icarena.pretraining.path_lm.fit_path_model`). It returns a
:class:`PathPlanner`: ``plan(source, target)`` decodes one path, ``complete(pairs)`` gives token
rows scored like any planner's (:func:`icarena.evaluation.evaluate_planners`), and
``save(dir)`` / ``PathPlanner.load(dir)`` use the run-dir format of the command line (a run of
``icarena pretrain path`` or ``icarena run alpine`` loads too).

Example::

    from icarena.envs.planning import random_dag
    from icarena.pretraining import PathPlanner, TrainConfig, train_planner
    g = random_dag(30, 0.15, seed=0)                # or any DiGraph on nodes 0..n-1
    planner = train_planner(g, train=TrainConfig(steps=300, batch_size=64))
    planner.plan(0, 5)                              # [0, ..., 5] (or a wrong guess)
    planner.save("runs/my-planner"); PathPlanner.load("runs/my-planner")
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from icarena.envs.planning.dag import (
    alpine_split,
    edges_array,
    graph_from_edges,
    num_nodes,
    reachability,
)
from icarena.envs.planning.tokens import NODE_OFFSET, decode_path
from icarena.errors import CheckpointError, ConfigError, check
from icarena.pretraining.model import ModelSpec, SequenceModel, load_model
from icarena.pretraining.path_lm import fit_path_model, sample_completions
from icarena.pretraining.train import TrainConfig


def graph_record(graph: nx.DiGraph) -> dict[str, Any]:
    """What a path run records of its graph (config.json ``graph``): ``{"n", "edges"}``."""
    return {"n": num_nodes(graph), "edges": edges_array(graph).tolist()}


class PathPlanner:
    """A trained path model on a graph: plans by sampling ``s t -> path \\n``.

    Args:
        model: a causal token model over the vocabulary ``n + 2`` (PAD, newline, one token per
            node), e.g. from :func:`train_planner` or :func:`~icarena.pretraining.load_model`.
        graph: the DiGraph on ``0..n-1`` it plans on.
        config: the run's config (what ``save`` writes to config.json).

    Attributes: ``model``, ``graph``, ``n`` (nodes), ``max_len`` (longest row the model reads:
    prompt, path and newline), ``config``, ``result`` (the Trainer's
    :class:`~icarena.pretraining.TrainResult` after :func:`train_planner`, else None).
    """

    def __init__(self, model: SequenceModel, graph: nx.DiGraph,
                 config: dict[str, Any] | None = None) -> None:
        self.n = num_nodes(graph)
        check(model.cfg.input_dim == self.n + NODE_OFFSET,
              f"the model's vocabulary ({model.cfg.input_dim}) does not fit a graph on {self.n} "
              f"nodes (needs {self.n + NODE_OFFSET}); pass the graph it was trained on",
              fields="graph")
        self.model = model.eval()
        self.graph = graph
        self.config = dict(config or {})
        self.max_len = int(model.backbone.config.max_len)
        self.result = None

    def complete(self, pairs: np.ndarray, width: int | None = None, *, greedy: bool = False,
                 temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        """Token rows ``s t path \\n PAD...`` (int64 (M, width)) for (M, 2) (source, target)
        pairs, as :meth:`icarena.agents.planning.BFSPlanner.complete` gives them: sampled at
        ``temperature`` (ALPINE's protocol: 1) or greedy; the same seed gives the same rows.
        ``width`` (default and maximum: the model's context ``max_len``) cuts the rows."""
        pairs = np.asarray(pairs)
        check(pairs.ndim == 2 and pairs.shape[1] == 2 and np.issubdtype(pairs.dtype, np.integer),
              f"pairs must be an int (M, 2) array of (source, target), got {pairs.shape} "
              f"{pairs.dtype}", fields="pairs")
        check(pairs.size == 0 or (int(pairs.min()) >= 0 and int(pairs.max()) < self.n),
              f"pairs name unknown nodes; node ids must lie in 0..{self.n - 1}", fields="pairs")
        width = self.max_len if width is None else min(int(width), self.max_len)
        check(width >= 3, f"width must be >= 3 (prompt + a node), got {width}", fields="width")
        rows = sample_completions(self.model, pairs.astype(np.int64) + NODE_OFFSET, width - 2,
                                  temperature=temperature, greedy=greedy, seed=seed)
        return rows[:, :width]

    def plan(self, source: int, target: int, *, greedy: bool = True,
             seed: int = 0) -> list[int] | None:
        """The model's path ``[source, ..., target]`` as a list of nodes (greedy by default;
        ``greedy=False`` samples at temperature 1 with ``seed``). The path is the model's
        guess and may be invalid (check it with :func:`icarena.evaluation.path_is_valid`);
        None when the completion is not a node sequence (a PAD or no newline in the context)."""
        for name, v in (("source", source), ("target", target)):
            check(isinstance(v, int | np.integer) and 0 <= int(v) < self.n,
                  f"{name}={v!r} is not a node of the graph (0..{self.n - 1})", fields=name)
        row = self.complete(np.array([[int(source), int(target)]]), greedy=greedy, seed=seed)[0]
        return decode_path(row, self.n)

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the run dir ``out_dir`` (``config.json`` + ``model.safetensors``, the format of
        ``icarena pretrain path``; created, or replacing an icarena run with ``overwrite``);
        returns its path."""
        return save_run(out_dir, self.model, {**self.config, "graph": graph_record(self.graph)},
                        overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike, graph: nx.DiGraph | None = None) -> PathPlanner:
        """Load a planner saved by :meth:`save`, a run of ``icarena pretrain path`` or of
        ``icarena run alpine`` / ``blocksworld``. The graph comes from the run (its recorded
        graph, else the dataset it recorded) unless given."""
        model, config = load_model(run_dir)
        if graph is None:
            graph = run_graph(run_dir, config)
        return cls(model, graph, config)


def save_run(out_dir: str | os.PathLike, model: SequenceModel, config: dict[str, Any], *,
             overwrite: bool = False) -> Path:
    """Write a model run dir (marker, ``config.json`` with the model's config, and
    ``model.safetensors``) by the lifecycle rules: refused if ``out_dir`` holds anything else,
    an icarena run replaced only with ``overwrite``; each file written atomically."""
    from icarena.lifecycle import atomic_write_json, claim_run
    from icarena.pretraining.train import save_weights

    out = Path(out_dir)
    with claim_run(out, overwrite=overwrite, resumable=False):
        atomic_write_json(out / "config.json",
                          {**config, "model": dataclasses.asdict(model.cfg)})
        save_weights(model, out / "model.safetensors")
    return out


def run_graph(run_dir: str | os.PathLike, config: dict[str, Any]) -> nx.DiGraph:
    """The graph a path run was trained on: its config's ``graph``, else the dataset it
    recorded (``pretrain.data``, or ``RUN/data`` of an experiment)."""
    from icarena.pretraining.data.store import load_dataset

    rec = config.get("graph")
    if isinstance(rec, dict) and "n" in rec and "edges" in rec:
        return graph_from_edges(int(rec["n"]), np.asarray(rec["edges"], dtype=np.int64))
    recorded = config.get("pretrain", {}).get("data")
    path = Path(recorded) if recorded else Path(run_dir) / "data"
    if not path.exists():
        raise CheckpointError(f"{run_dir} records no graph and its dataset {path} is gone; pass "
                              "the graph: PathPlanner.load(run_dir, graph)")
    ds = load_dataset(path)
    return graph_from_edges(int(ds.config["n"]), np.asarray(ds["graph/edges"]))


def training_lines(graph: nx.DiGraph, pairs: np.ndarray | None = None, *,
                   paths_per_pair: int = 20, edge_lines: bool = True,
                   seed: int = 0) -> tuple[np.ndarray, int]:
    """ALPINE training rows of ``graph``: ``paths_per_pair`` random walks per pair of ``pairs``
    (default: the train side of :func:`icarena.envs.planning.alpine_split` with ``seed``) and,
    with ``edge_lines``, every edge once as ``s t s t``. Returns (uint16 rows (L, block + 1),
    block size)."""
    from icarena.envs.planning.dag import sample_paths
    from icarena.envs.planning.tokens import block_size_for, encode_paths

    n = num_nodes(graph)
    check(graph.number_of_edges() > 0, "the graph has no edges: there is no path to learn",
          fields="graph")
    check(isinstance(paths_per_pair, int) and paths_per_pair >= 0,
          f"paths_per_pair must be an int >= 0, got {paths_per_pair!r}", fields="paths_per_pair")
    R = reachability(graph)
    if pairs is None:
        pairs, _ = alpine_split(graph, seed=[seed, 1], reach=R)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        check(int(pairs.min()) >= 0 and int(pairs.max()) < n,
              f"pairs name unknown nodes; node ids must lie in 0..{n - 1}", fields="pairs")
        bad = ~R[pairs[:, 0], pairs[:, 1]]
        if bad.any():
            raise ConfigError(f"pairs hold unreachable (source, target), e.g. "
                              f"{pairs[bad][0].tolist()}; train only on reachable pairs",
                              fields="pairs")
    walks = np.repeat(pairs, paths_per_pair, axis=0)
    paths, lengths = sample_paths(graph, walks, seed=[seed, 2], reach=R)
    if edge_lines:
        e = edges_array(graph)
        width = max(paths.shape[1], 2)
        paths = np.concatenate([
            np.pad(paths, ((0, 0), (0, width - paths.shape[1])), constant_values=-1),
            np.pad(e.astype(paths.dtype), ((0, 0), (0, width - 2)), constant_values=-1)])
        lengths = np.concatenate([lengths, np.full(len(e), 2, dtype=np.int64)])
    check(len(lengths) > 0, "no training lines: pass pairs, paths_per_pair >= 1 or edge_lines",
          fields="pairs")
    block = block_size_for(int(lengths.max()) + 3)
    tokens, _ = encode_paths(paths, lengths, n, block)
    return tokens, block


def train_planner(
    graph: nx.DiGraph,
    *,
    pairs: np.ndarray | None = None,
    paths_per_pair: int = 20,
    edge_lines: bool = True,
    model: ModelSpec | None = None,
    train: TrainConfig | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> PathPlanner:
    """Train a path model on ``graph`` and return it as a :class:`PathPlanner`.

    Args:
        graph: networkx DiGraph on the nodes ``0..n-1`` (relabel others with
            ``nx.convert_node_labels_to_integers``); cycles are allowed (walks are then
            self-avoiding).
        pairs: int (P, 2) reachable (source, target) pairs to train on; default: the train side
            of ALPINE's split (:func:`icarena.envs.planning.alpine_split`, ``seed``), so the
            rest of the reachable pairs are held out.
        paths_per_pair: random-walk training lines per pair (ALPINE: 20).
        edge_lines: add every edge once as the line ``s t s t`` (ALPINE).
        model: backbone and size (default: ALPINE's 1 layer, 1 head, width 120,
            :func:`~icarena.pretraining.path_lm.alpine_model`); any registered backbone.
        train: optimisation (default :func:`~icarena.pretraining.path_train_config`); its
            ``seed`` is replaced by ``seed``.
        seed: seed of the split, the walks, the initialisation and the batches.
        out_dir: also write the run dir there (checkpoints, TensorBoard, config.json as
            ``icarena pretrain path``); None trains in memory.
        overwrite: replace an icarena run in ``out_dir``.

    Returns:
        the :class:`PathPlanner` (its ``result``: the Trainer's losses and evaluation).
    """
    if not isinstance(graph, nx.DiGraph):
        raise ConfigError(f"graph must be a networkx DiGraph, got {type(graph).__name__}",
                          fields="graph")
    tokens, block = training_lines(graph, pairs, paths_per_pair=paths_per_pair,
                                   edge_lines=edge_lines, seed=seed)
    config = {"planner": {"paths_per_pair": paths_per_pair, "edge_lines": edge_lines,
                          "seed": seed, "pairs": None if pairs is None else len(np.asarray(pairs))},
              "graph": graph_record(graph)}
    net, result = fit_path_model(tokens, num_nodes(graph), block, model=model, train=train,
                                 seed=seed, out_dir=out_dir, config=config, overwrite=overwrite)
    planner = PathPlanner(net, graph, result.config)
    planner.result = result
    return planner

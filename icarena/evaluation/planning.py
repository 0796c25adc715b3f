"""Path validity, accuracy over sampled completions and the ALPINE degree (transitivity) breakdown.

Reference: ALPINE (Wang et al. 2024, arXiv 2405.09220) Secs. 3-4 and the authors' evaluation
code; the per-degree protocol of the multi-token-prediction follow-up ("Understanding and
Enhancing the Planning Capability of Language Models via Multi-Token Prediction", 2025,
arXiv 2509.23186).

Validity of a node path ``v_1 .. v_m`` for the pair (s, t) (:func:`path_is_valid`):
``m >= 2``, ``v_1 = s``, ``v_m = t`` and ``(v_{i-1}, v_i)`` is an edge for every i. For a sampled
token row ``s t v_1 ... v_m \\n`` this is ALPINE's rule (>= 4 node tokens, token 3 = s, last = t,
every consecutive pair from token 3 on an edge).

Observed matrices of a training set of lines ``u = (u_1 = s, u_2 = t, u_3 = s, ..., u_N = t)``
(1-based, as in ALPINE):

* ``A_obs[i, k] = 1`` iff some line has ``u_n = i, u_{n+1} = k`` for some ``n in [3, N-1]``;
* ``R_obs[t, k] = 1`` iff some line has ``u_2 = t`` and ``u_n = k`` for some ``n in [4, N]``.

Degree of a test pair (s, t): 0 if ``R_obs[t, s]``; 1 if not 0 and some u with ``A_obs[s, u]``
has (u, t) of degree 0; 2 if neither and some such u has (u, t) of degree 1; 3 (meaning ">= 3")
otherwise. With ``D_0[s, t] = R_obs[t, s]`` and boolean products,
``D_{<=1} = D_0 | A_obs D_0`` and ``D_{<=2} = D_{<=1} | A_obs D_{<=1}``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from icarena.envs.planning.dag import adjacency, graph_from_edges, num_nodes
from icarena.envs.planning.tokens import NEWLINE, NODE_OFFSET, PAD, line_lengths, vocab_size
from icarena.errors import ConfigError, DatasetError, check

#: Error labels of :func:`path_error` / :func:`score_completions` (index = code).
LABELS = ("ok", "syntax", "wrong_start", "non_edge", "wrong_end")
OK, SYNTAX, WRONG_START, NON_EDGE, WRONG_END = range(len(LABELS))
DEGREE_NAMES = ("0", "1", "2", ">=3")


@dataclass(frozen=True)
class PathError:
    """Why a path is (in)valid: ``step`` is the index in the path of the first offending node
    (``len(path)`` when the path stops before the target; -1 when valid)."""

    valid: bool
    step: int
    label: str
    detail: str


def _check_node(graph: nx.DiGraph, v: Any, name: str) -> None:
    check(isinstance(v, Hashable) and v in graph,
          f"{name}={v!r} is not a node of the graph ({graph.number_of_nodes()} nodes)")


def _as_path(path: Any) -> list:
    check(isinstance(path, Sequence | np.ndarray) and not isinstance(path, str | bytes),
          f"path must be a sequence of nodes, got {type(path).__name__}")
    arr = list(np.asarray(path).tolist()) if isinstance(path, np.ndarray) else list(path)
    check(all(isinstance(v, Hashable) and not isinstance(v, list | tuple | dict) for v in arr),
          "path must be a flat sequence of node ids")
    return arr


def path_error(graph: nx.DiGraph, source: Any, target: Any,
               path: Sequence | None) -> PathError:
    """Check a node path from ``source`` to ``target``; report the first invalid step.

    Labels: ``ok``; ``syntax`` (fewer than 2 nodes, or a node not in the graph; step = its
    index); ``wrong_start`` (step 0); ``non_edge`` (step i: ``(path[i-1], path[i])`` is not an
    edge); ``wrong_end`` (every step is an edge but the last node is not the target; step =
    ``len(path)``). ``path=None`` (what :meth:`~icarena.agents.planning.BFSPlanner.plan`
    returns for an unreachable pair, a planner's "no path") is invalid: label ``syntax``,
    step 0. Unknown ``source``/``target`` or a malformed path raise ConfigError.
    """
    _check_node(graph, source, "source")
    _check_node(graph, target, "target")
    if path is None:
        return PathError(False, 0, "syntax", "no path (None)")
    nodes = _as_path(path)
    for i, v in enumerate(nodes):
        if v not in graph:
            return PathError(False, i, "syntax", f"node {v!r} at step {i} is not in the graph")
    if len(nodes) < 2:
        return PathError(False, len(nodes), "syntax",
                         f"a path needs at least 2 nodes, got {len(nodes)}")
    if nodes[0] != source:
        return PathError(False, 0, "wrong_start", f"starts at {nodes[0]!r}, not {source!r}")
    for i in range(1, len(nodes)):
        if not graph.has_edge(nodes[i - 1], nodes[i]):
            return PathError(False, i, "non_edge",
                             f"non-existence path ({nodes[i - 1]!r}, {nodes[i]!r})")
    if nodes[-1] != target:
        return PathError(False, len(nodes), "wrong_end", f"ends at {nodes[-1]!r}, not {target!r}")
    return PathError(True, -1, "ok", "valid path")


def path_is_valid(graph: nx.DiGraph, source: Any, target: Any, path: Sequence | None) -> bool:
    """True iff ``path`` has >= 2 nodes, starts at ``source``, ends at ``target`` and each
    consecutive pair is an edge of ``graph`` (the validity rule used everywhere in icarena);
    False for ``path=None`` (no path, e.g. BFS on an unreachable pair)."""
    return path_error(graph, source, target, path).valid


@dataclass(frozen=True)
class CompletionScores:
    """Per-row scores of sampled completions (all arrays have shape (M,)).

    ``path_valid`` / ``syntax_ok`` / ``start_end_ok`` / ``all_edges_ok`` / ``is_simple`` are the
    metrics of ALPINE's evaluation (start_end_ok, all_edges_ok and is_simple are False on rows
    with a syntax error); ``code`` indexes :data:`LABELS`; ``step`` is the path index of the first
    invalid node (-1 if valid); ``length`` the number of decoded path nodes.
    """

    path_valid: np.ndarray
    syntax_ok: np.ndarray
    start_end_ok: np.ndarray
    all_edges_ok: np.ndarray
    is_simple: np.ndarray
    code: np.ndarray
    step: np.ndarray
    length: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [LABELS[c] for c in self.code.tolist()]

    def summary(self) -> dict[str, float]:
        """Mean of each metric over rows, plus the error-label fractions."""
        out = {k: float(getattr(self, k).mean()) if len(self.code) else float("nan")
               for k in ("path_valid", "syntax_ok", "start_end_ok", "all_edges_ok",
                         "is_simple")}
        for c, name in enumerate(LABELS[1:], start=1):
            out[f"error/{name}"] = float((self.code == c).mean()) if len(self.code) else 0.0
        out["n"] = len(self.code)
        return out


def score_completions(
    adj: np.ndarray | nx.DiGraph, pairs: np.ndarray, rows: np.ndarray, *, prompt_len: int = 2
) -> CompletionScores:
    """Score sampled token rows against the graph, vectorised over the batch.

    Args:
        adj: (n, n) bool adjacency or a DiGraph on 0..n-1.
        pairs: int (M, 2) (source, target) of each row.
        rows: int (M, T) tokens. With ``prompt_len=2`` each row starts with its prompt ``s t``
            (as returned by sampling from the prompt; checked against ``pairs``); with
            ``prompt_len=0`` rows hold only the completion. The completion is cut at its first
            newline (kept whole if it has none); a PAD or out-of-vocabulary token before the cut
            is a syntax error, as is a completion with fewer than 2 nodes.
    """
    A = adjacency(adj) if isinstance(adj, nx.DiGraph) else np.asarray(adj, dtype=bool)
    check(A.ndim == 2 and A.shape[0] == A.shape[1], f"adjacency must be (n, n), got {A.shape}")
    n = A.shape[0]
    vocab = vocab_size(n)
    pairs = np.asarray(pairs)
    rows = np.asarray(rows)
    check(pairs.ndim == 2 and pairs.shape[1] == 2, f"pairs must be (M, 2), got {pairs.shape}")
    check(rows.ndim == 2 and rows.shape[0] == pairs.shape[0],
          f"rows must be (M, T) with M = {pairs.shape[0]}, got {rows.shape}")
    check(np.issubdtype(rows.dtype, np.integer) or rows.size == 0,
          f"rows must hold integer tokens, got {rows.dtype}")
    check(prompt_len in (0, 2), f"prompt_len must be 0 or 2, got {prompt_len}")
    pairs = pairs.astype(np.int64)
    if pairs.size:
        check(int(pairs.min()) >= 0 and int(pairs.max()) < n,
              f"pairs name unknown nodes; node ids must lie in 0..{n - 1}")
    rows = rows.astype(np.int64)
    if prompt_len:
        check(rows.shape[1] >= 2 and bool((rows[:, :2] == pairs + NODE_OFFSET).all()),
              "rows must start with their prompt tokens (s + 2, t + 2); pass prompt_len=0 if "
              "the rows hold only the completions")
    body = rows[:, prompt_len:]
    M, T = body.shape
    cut = line_lengths(body) if T else np.zeros(M, dtype=np.int64)
    pos = np.arange(T)[None, :]
    inside = pos < cut[:, None]
    bad_tok = inside & ((body == PAD) | (body < 0) | (body >= vocab) | (body == NEWLINE))
    has_bad = bad_tok.any(axis=1)
    first_bad = np.where(has_bad, np.argmax(bad_tok, axis=1), -1)
    syntax_ok = ~has_bad & (cut >= 2)
    nodes = np.where(inside & ~bad_tok, body - NODE_OFFSET, 0)
    s, t = pairs[:, 0], pairs[:, 1]
    ar = np.arange(M)
    start_ok = syntax_ok & (nodes[:, 0] == s) if T else np.zeros(M, dtype=bool)
    last = nodes[ar, np.maximum(cut - 1, 0)] if T else np.zeros(M, dtype=np.int64)
    end_ok = syntax_ok & (last == t)
    if T >= 2:
        step_in = inside[:, 1:]
        is_edge = A[nodes[:, :-1], nodes[:, 1:]] | ~step_in
        all_edges = syntax_ok & is_edge.all(axis=1)
        first_non_edge = np.argmax(~is_edge, axis=1) + 1
        srt = np.sort(np.where(inside, nodes, -1 - pos), axis=1)
        simple = syntax_ok & ~(srt[:, 1:] == srt[:, :-1]).any(axis=1)
    else:
        all_edges = simple = np.zeros(M, dtype=bool)
        first_non_edge = np.zeros(M, dtype=np.int64)
    code = np.select(
        [~syntax_ok, ~start_ok, ~all_edges, ~end_ok],
        [SYNTAX, WRONG_START, NON_EDGE, WRONG_END], default=OK,
    )
    step = np.select(
        [code == SYNTAX, code == WRONG_START, code == NON_EDGE, code == WRONG_END],
        [np.where(has_bad, first_bad, cut), 0, first_non_edge, cut], default=-1,
    )
    return CompletionScores(
        path_valid=code == OK, syntax_ok=syntax_ok, start_end_ok=start_ok & end_ok,
        all_edges_ok=all_edges, is_simple=simple, code=code.astype(np.int64),
        step=step.astype(np.int64), length=np.where(has_bad, first_bad, cut).astype(np.int64),
    )


def accuracy(valid: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Fraction of valid completions; with ``groups`` (e.g. test-graph ids) the mean over groups
    of the per-group accuracy ("graph-level", MTP follow-up)."""
    valid = np.asarray(valid, dtype=bool)
    check(valid.size > 0, "accuracy needs at least one completion")
    if groups is None:
        return float(valid.mean())
    groups = np.asarray(groups)
    check(groups.shape == valid.shape, "groups must have the same shape as valid")
    _, inv = np.unique(groups, return_inverse=True)
    per = np.bincount(inv, weights=valid) / np.bincount(inv)
    return float(per.mean())


def observed_matrices(train_tokens: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A_obs, R_obs)`` (n, n) bool from training token rows (see the module docstring).

    ``R_obs`` is indexed target-first, ``R_obs[t, k]``, as in the paper.
    """
    tok = np.asarray(train_tokens).astype(np.int64)
    check(tok.ndim == 2 and tok.shape[1] >= 4 or tok.size == 0,
          f"train tokens must be (L, T >= 4), got {tok.shape}")
    vocab = vocab_size(n)
    A_obs = np.zeros((n, n), dtype=bool)
    R_obs = np.zeros((n, n), dtype=bool)
    if tok.size == 0:
        return A_obs, R_obs
    before_nl = np.cumsum(tok == NEWLINE, axis=1) == 0
    node = before_nl & (tok >= NODE_OFFSET)
    check(bool(((tok < vocab) | ~before_nl).all()), f"tokens exceed the vocabulary of {vocab}")
    check(bool(node[:, :3].all()), "every training line must start with 's t s'")
    # A_obs: consecutive pairs (u_n, u_{n+1}) with n in [3, N-1] (0-based columns 2.. on).
    m = node[:, 2:-1] & node[:, 3:]
    A_obs[tok[:, 2:-1][m] - NODE_OFFSET, tok[:, 3:][m] - NODE_OFFSET] = True
    # R_obs: target u_2 with every u_n, n in [4, N] (0-based columns 3.. on).
    m = node[:, 3:]
    tgt = np.broadcast_to(tok[:, 1:2], m.shape)
    R_obs[tgt[m] - NODE_OFFSET, tok[:, 3:][m] - NODE_OFFSET] = True
    return A_obs, R_obs


def degree_matrix(A_obs: np.ndarray, R_obs: np.ndarray) -> np.ndarray:
    """Degree of every pair, ``deg[s, t]`` in {0, 1, 2, 3} (3 = ">= 3"); int8 (n, n)."""
    A = np.asarray(A_obs, dtype=bool)
    D0 = np.asarray(R_obs, dtype=bool).T
    check(A.shape == D0.shape and A.ndim == 2, "A_obs and R_obs must both be (n, n)")
    Af = A.astype(np.float32)
    D1 = D0 | ((Af @ D0.astype(np.float32)) > 0)
    D2 = D1 | ((Af @ D1.astype(np.float32)) > 0)
    deg = np.full(A.shape, 3, dtype=np.int8)
    deg[D2] = 2
    deg[D1] = 1
    deg[D0] = 0
    return deg


def degrees(A_obs: np.ndarray, R_obs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Degree (0, 1, 2, 3 = ">= 3") of each (s, t) of ``pairs`` (M, 2); int64 (M,)."""
    pairs = np.asarray(pairs, dtype=np.int64)
    check(pairs.ndim == 2 and pairs.shape[1] == 2, f"pairs must be (M, 2), got {pairs.shape}")
    return degree_matrix(A_obs, R_obs)[pairs[:, 0], pairs[:, 1]].astype(np.int64)


def per_degree_accuracy(valid: np.ndarray, degree: np.ndarray) -> dict[str, dict[str, float]]:
    """``{"0": {"accuracy": a, "count": c}, "1": ..., "2": ..., ">=3": ...}`` (NaN if empty)."""
    valid = np.asarray(valid, dtype=bool)
    degree = np.asarray(degree)
    check(valid.shape == degree.shape, "valid and degree must have the same shape")
    out = {}
    for d, name in enumerate(DEGREE_NAMES):
        sel = degree == d
        out[name] = {"accuracy": float(valid[sel].mean()) if sel.any() else float("nan"),
                     "count": int(sel.sum())}
    return out


@dataclass
class PlannerScores:
    """Scores of several planners on the same (source, target) pairs
    (:func:`evaluate_planners`).

    ``pairs`` int (M, 2) are the scored trials (each requested pair repeated
    ``samples_per_pair`` times); per planner name: ``rows[name]`` the token rows it produced,
    ``scores[name]`` their :class:`CompletionScores`, ``summary[name]`` the mean metrics
    (``path_valid`` = accuracy, error-label fractions, and ``per_degree`` when degrees were
    given). ``distance`` (M,) is each pair's shortest-path hop count (``inf``: unreachable);
    :meth:`accuracy_by_distance` is the accuracy curve over it.
    """

    pairs: np.ndarray
    distance: np.ndarray
    rows: dict[str, np.ndarray]
    scores: dict[str, CompletionScores]
    summary: dict[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return list(self.summary)

    def accuracy_by_distance(self) -> dict[str, dict[str, float]]:
        """``{planner: {"1": acc, "2": acc, ..., "unreachable": acc}}``: path validity by the
        pair's shortest-path hop distance (keys in increasing distance; only distances
        present)."""
        d = self.distance
        keys = [(str(int(v)), d == v) for v in np.unique(d[np.isfinite(d)])]
        if (~np.isfinite(d)).any():
            keys.append(("unreachable", ~np.isfinite(d)))
        return {name: {k: float(s.path_valid[m].mean()) for k, m in keys}
                for name, s in self.scores.items()}

    def table(self, digits: int = 3) -> str:
        """Markdown table: planner x (accuracy, accuracy at each shortest-path distance)."""
        from icarena.evaluation.report import markdown_table

        curves = self.accuracy_by_distance()
        cols = list(next(iter(curves.values()))) if curves else []
        counts = {k: int((self.distance == float(k)).sum()) if k != "unreachable"
                  else int((~np.isfinite(self.distance)).sum()) for k in cols}
        headers = ["planner", "path valid"] + [
            f"{'dist ' + k if k != 'unreachable' else k} (n={counts[k]})" for k in cols]
        rows = [[name, self.summary[name]["path_valid"]] + [curves[name][k] for k in cols]
                for name in self.names]
        return markdown_table(headers, rows, digits=digits)


def _planner_rows(planner: Any, pairs: np.ndarray, n: int, *, greedy: bool,
                  temperature: float, seed: int, name: str) -> np.ndarray:
    """Token rows ``s t path \\n`` of one planner on ``pairs`` (M, 2)."""
    from icarena.agents.planning.planners import RandomWalkPlanner
    from icarena.pretraining.planner import PathPlanner

    if isinstance(planner, PathPlanner):
        check(planner.n == n, f"planner {name!r} plans on a graph of {planner.n} nodes, not "
                              f"{n}", fields="planners")
        return planner.complete(pairs, greedy=greedy, temperature=temperature, seed=seed)
    if isinstance(planner, RandomWalkPlanner):
        return planner.complete(pairs, max(planner.max_steps + 4, 4))
    if hasattr(planner, "complete"):
        return np.asarray(planner.complete(pairs))
    if not callable(planner):
        raise ConfigError(f"planner {name!r} is a {type(planner).__name__}: pass a PathPlanner, "
                          "BFSPlanner, RandomWalkPlanner or a callable (source, target) -> "
                          "list of nodes or None", fields="planners")
    paths = [planner(int(s), int(t)) for s, t in pairs.tolist()]
    width = 3 + max((len(p) for p in paths if p is not None), default=0)
    rows = np.zeros((len(pairs), width), dtype=np.int64)
    rows[:, :2] = pairs + NODE_OFFSET
    for i, p in enumerate(paths):
        nodes = [] if p is None else list(p)
        ok = all(isinstance(v, int | np.integer) and 0 <= int(v) < n for v in nodes)
        check(ok, f"planner {name!r} returned {nodes!r} for {tuple(pairs[i])}: a path must be "
                  f"a list of node ids in 0..{n - 1} (or None)", fields="planners")
        rows[i, 2:2 + len(nodes)] = np.asarray(nodes, dtype=np.int64) + NODE_OFFSET
        rows[i, 2 + len(nodes)] = NEWLINE
    return rows


def evaluate_planners(
    graph: nx.DiGraph,
    pairs: np.ndarray,
    planners: dict[str, Any],
    *,
    samples_per_pair: int = 1,
    greedy: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    degree: np.ndarray | None = None,
) -> PlannerScores:
    """Score any mix of planners on the same (source, target) pairs by path validity.

    Args:
        graph: DiGraph on ``0..n-1``.
        pairs: int (M, 2) (source, target) pairs (repeats allowed; e.g. held-out pairs).
        planners: name -> a trained :class:`icarena.pretraining.PathPlanner` (sampled at
            ``temperature``, or greedy), a :class:`icarena.agents.planning.BFSPlanner` /
            :class:`~icarena.agents.planning.RandomWalkPlanner`, any object with
            ``complete(pairs) -> token rows``, or a plain callable ``(source, target) -> list
            of nodes or None`` (None: no path, scored invalid).
        samples_per_pair: trials per pair (ALPINE: 10 samples at temperature 1).
        greedy / temperature / seed: how trained planners sample (same seed, same scores).
        degree: optional int (M,) ALPINE degree of each pair
            (:func:`icarena.evaluation.planning.degrees`, needs the training lines): adds a
            ``per_degree`` breakdown to each summary.

    Returns:
        :class:`PlannerScores` (``.summary``, ``.accuracy_by_distance()``, ``.table()``).
    """
    from icarena.envs.planning.dag import distances

    n = num_nodes(graph)
    check(isinstance(planners, dict) and len(planners) > 0,
          "planners must be a non-empty dict name -> planner", fields="planners")
    check(isinstance(samples_per_pair, int) and samples_per_pair >= 1,
          f"samples_per_pair must be an int >= 1, got {samples_per_pair!r}",
          fields="samples_per_pair")
    pairs = np.asarray(pairs)
    check(pairs.ndim == 2 and pairs.shape[1] == 2 and len(pairs) > 0
          and np.issubdtype(pairs.dtype, np.integer),
          f"pairs must be a non-empty int (M, 2) array, got {pairs.shape} {pairs.dtype}",
          fields="pairs")
    check(int(pairs.min()) >= 0 and int(pairs.max()) < n,
          f"pairs name unknown nodes; node ids must lie in 0..{n - 1}", fields="pairs")
    pairs = np.repeat(pairs.astype(np.int64), samples_per_pair, axis=0)
    if degree is not None:
        degree = np.repeat(np.asarray(degree), samples_per_pair)
        check(degree.shape == (len(pairs),), "degree must hold one value per pair",
              fields="degree")
    A = adjacency(graph)
    rows, scores, summary = {}, {}, {}
    for name, planner in planners.items():
        r = _planner_rows(planner, pairs, n, greedy=greedy, temperature=temperature, seed=seed,
                          name=str(name))
        s = score_completions(A, pairs, r)
        rows[name], scores[name] = r, s
        summary[name] = {"planner": str(name), **s.summary()}
        if degree is not None:
            summary[name]["per_degree"] = per_degree_accuracy(s.path_valid, degree)
    D = distances(graph)
    return PlannerScores(pairs=pairs, distance=D[pairs[:, 0], pairs[:, 1]], rows=rows,
                         scores=scores, summary=summary)


@dataclass
class PathDataset:
    """A loaded ALPINE-format dataset (``icarena generate alpine|blocksworld``)."""

    graph: nx.DiGraph
    n: int
    block_size: int
    train_tokens: np.ndarray
    test_pairs: np.ndarray
    test_tokens: np.ndarray
    config: dict[str, Any]
    identity: dict[str, Any] = field(default_factory=dict)
    """What a run records of this dataset (manifest hash, generator)."""

    @property
    def adjacency(self) -> np.ndarray:
        return adjacency(self.graph)

    def observed(self) -> tuple[np.ndarray, np.ndarray]:
        return observed_matrices(self.train_tokens, self.n)

    def test_degrees(self) -> np.ndarray:
        return degrees(*self.observed(), self.test_pairs)


def load_path_dataset(path: str | Path) -> PathDataset:
    """Load an ``alpine`` or ``blocksworld`` dataset and rebuild its graph."""
    from icarena.pretraining.data.store import dataset_identity, load_dataset

    ds = load_dataset(path)
    if ds.generator not in ("alpine", "blocksworld"):
        raise DatasetError(f"{path} was made by generator {ds.generator!r}; expected a path "
                           "dataset from `icarena generate alpine` or `... blocksworld`")
    n = int(ds.config["n"])
    graph = graph_from_edges(n, np.asarray(ds["graph/edges"]))
    return PathDataset(graph=graph, n=n, block_size=int(ds.config["block_size"]),
                       train_tokens=ds["train/tokens"], test_pairs=np.asarray(ds["test/pairs"]),
                       test_tokens=ds["test/tokens"], config=ds.config,
                       identity=dataset_identity(ds))


def evaluate_completions(
    graph: nx.DiGraph, pairs: np.ndarray, rows: np.ndarray, *, degree: np.ndarray | None = None,
    prompt_len: int = 2,
) -> dict[str, Any]:
    """Score completions and return ``summary()`` metrics plus ``per_degree`` when given."""
    n = num_nodes(graph)
    scores = score_completions(adjacency(graph), pairs, rows, prompt_len=prompt_len)
    out: dict[str, Any] = scores.summary()
    out["vocab_size"] = vocab_size(n)
    if degree is not None:
        out["per_degree"] = per_degree_accuracy(scores.path_valid, degree)
    return out


__all__ = [
    "LABELS", "CompletionScores", "PathDataset", "PathError", "PlannerScores", "accuracy",
    "degree_matrix", "degrees", "evaluate_completions", "evaluate_planners",
    "load_path_dataset", "observed_matrices", "path_error", "path_is_valid",
    "per_degree_accuracy", "score_completions",
]

"""Random DAGs, reachability, the ALPINE train/test split and random-walk path sampling.

Reference: Wang et al., "ALPINE: Unveiling the Planning Capability of Autoregressive Learning in
Language Models", NeurIPS 2024 (arXiv 2405.09220), Sec. 3 and Alg. 1.

Every graph handled here has the integer nodes ``0..n-1`` (``nx.convert_node_labels_to_integers``
turns any graph into one). Matrices are numpy bool arrays indexed ``[source, target]``:

* ``adjacency(G)[i, k]``  = 1 iff ``i -> k`` is an edge (ALPINE's ``A_true``);
* ``reachability(G)[s, t]`` = 1 iff ``s != t`` and a directed path leads from ``s`` to ``t``.
  ALPINE's target-first ``R_true[t, k]`` is ``reachability(G).T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from icarena.errors import ConfigError, check

#: Walks are sampled in chunks of this many walks (fixed: the same seed gives the same bytes).
WALK_CHUNK = 1 << 15


def random_dag(n: int, p: float, seed: int | None = None) -> nx.DiGraph:
    """ALPINE's random DAG: nodes ``0..n-1``; each edge ``i -> j`` with ``i < j`` kept w.p. ``p``.

    The edge indicators are i.i.d. Bernoulli(p) (ALPINE Sec. 3.1, p = 0.1, n = 100..500), so the
    expected number of edges is ``p * n * (n - 1) / 2`` (495 at n = 100, p = 0.1). Nodes keep the
    index order (no permutation), so ``range(n)`` is a topological order.

    Args:
        n: number of nodes, >= 2.
        p: edge probability in [0, 1].
        seed: seed of ``np.random.default_rng``; the same seed gives the same graph.
    """
    check(isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 2,
          f"random_dag needs an integer n >= 2 nodes, got n={n!r}")
    check(isinstance(p, float | int | np.floating) and 0.0 <= float(p) <= 1.0,
          f"random_dag needs an edge probability p in [0, 1], got p={p!r}")
    check(seed is None or (isinstance(seed, int | np.integer) and seed >= 0),
          f"random_dag needs a seed >= 0 (or None), got seed={seed!r}")
    rng = np.random.default_rng(seed)
    keep = np.triu(rng.random((int(n), int(n))) < float(p), k=1)
    graph = nx.DiGraph(kind="random_dag", n=int(n), p=float(p))
    graph.add_nodes_from(range(int(n)))
    graph.add_edges_from(zip(*(a.tolist() for a in np.nonzero(keep)), strict=True))
    return graph


def num_nodes(graph: nx.DiGraph) -> int:
    """Number of nodes, after checking that the nodes are exactly the integers ``0..n-1``."""
    check(isinstance(graph, nx.DiGraph),
          f"expected a networkx DiGraph, got {type(graph).__name__}")
    n = graph.number_of_nodes()
    check(n >= 1, "the graph has no nodes")
    check(set(graph.nodes) == set(range(n)),
          "graph nodes must be the integers 0..n-1; relabel with "
          "nx.convert_node_labels_to_integers(graph)")
    return n


def adjacency(graph: nx.DiGraph) -> np.ndarray:
    """Adjacency matrix ``A[i, k] = 1 iff i -> k``, shape (n, n), bool (self-loops dropped)."""
    n = num_nodes(graph)
    A = np.zeros((n, n), dtype=bool)
    if graph.number_of_edges():
        e = np.asarray(list(graph.edges), dtype=np.int64)
        A[e[:, 0], e[:, 1]] = True
    np.fill_diagonal(A, False)
    return A


def edges_array(graph: nx.DiGraph) -> np.ndarray:
    """The edges as an int64 array of shape (E, 2), sorted by (source, target)."""
    A = adjacency(graph)
    return np.argwhere(A).astype(np.int64)


def graph_from_edges(n: int, edges: np.ndarray) -> nx.DiGraph:
    """Rebuild a DiGraph on nodes ``0..n-1`` from an (E, 2) edge array (inverse of edges_array)."""
    edges = np.asarray(edges)
    check(edges.ndim == 2 and edges.shape[1] == 2 if edges.size else True,
          f"edges must have shape (E, 2), got {edges.shape}")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(int(n)))
    if edges.size:
        check(int(edges.min()) >= 0 and int(edges.max()) < n,
              f"edge endpoints must lie in 0..{n - 1}")
        graph.add_edges_from(map(tuple, edges.tolist()))
    return graph


def is_dag(graph: nx.DiGraph) -> bool:
    """Whether the graph has no directed cycle."""
    return nx.is_directed_acyclic_graph(graph)


def require_dag(graph: nx.DiGraph, what: str) -> None:
    """Raise ConfigError naming ``what`` unless ``graph`` is a DAG."""
    if not is_dag(graph):
        cycle = nx.find_cycle(graph)
        raise ConfigError(
            f"{what} needs a DAG but the graph has the cycle {cycle[:6]}; pass a DAG "
            "(e.g. random_dag(n, p)) or use a method for general graphs"
        )


def distances(graph: nx.DiGraph) -> np.ndarray:
    """Hop distances ``D[s, t]`` (float64, ``inf`` where t is unreachable, 0 on the diagonal)."""
    n = num_nodes(graph)
    A = adjacency(graph)
    return shortest_path(csr_matrix(A.astype(np.int8)), method="D", unweighted=True,
                         directed=True).reshape(n, n)


def reachability(graph: nx.DiGraph) -> np.ndarray:
    """Reachability ``R[s, t] = 1 iff s != t and t can be reached from s``; (n, n) bool.

    On a DAG: one sweep in reverse topological order, ``R[i] = A[i] | OR_{k: A[i,k]} R[k]``
    (O(E n) bit operations). On other graphs: BFS hop distances. The diagonal is always 0 (only
    pairs s != t are ever used).
    """
    n = num_nodes(graph)
    A = adjacency(graph)
    if is_dag(graph):
        R = np.zeros((n, n), dtype=bool)
        for i in reversed(list(nx.topological_sort(graph))):
            succ = np.flatnonzero(A[i])
            if succ.size:
                R[i] = A[i] | R[succ].any(axis=0)
    else:
        R = np.isfinite(distances(graph))
    np.fill_diagonal(R, False)
    return R


def reachable_pairs(graph: nx.DiGraph, reach: np.ndarray | None = None) -> np.ndarray:
    """All reachable ordered pairs (s, t), s != t, as an int64 (P, 2) array sorted by (s, t)."""
    R = reachability(graph) if reach is None else reach
    return np.argwhere(R).astype(np.int64)


def longest_path_edges(graph: nx.DiGraph) -> int:
    """Number of edges of the longest path of a DAG."""
    require_dag(graph, "longest_path_edges")
    return int(nx.dag_longest_path_length(graph))


def dag_statistics(graph: nx.DiGraph) -> dict[str, int]:
    """Edges, reachable pairs and longest path of a DAG (as ALPINE reports per graph)."""
    R = reachability(graph)
    return {
        "nodes": num_nodes(graph),
        "edges": graph.number_of_edges(),
        "reachable_pairs": int(R.sum()),
        "longest_path_edges": longest_path_edges(graph),
    }


def alpine_split(
    graph: nx.DiGraph,
    *,
    train_fraction: float = 0.5,
    exact: bool = False,
    edges_in_train: bool = True,
    first_source_in_train: bool = True,
    seed: int | Sequence[int] = 0,
    reach: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split the reachable pairs (s, t), s != t, into train and test (ALPINE Sec. 3.1).

    Rules, applied to every reachable pair:

    1. if ``edges_in_train``: a pair that is an edge ``s -> t`` always goes to train (paper);
    2. if ``first_source_in_train``: for every target t, the reachable source with the smallest
       index always goes to train, so every target is seen in training (authors' code);
    3. every other pair goes to train independently with probability ``train_fraction``
       (``exact=False``, the ALPINE DAG rule, ``chance_in_train = 0.5``), or (``exact=True``) a
       uniformly random subset of the other pairs is moved to train so that the train set holds
       exactly ``round(train_fraction * P)`` of the P pairs (or all forced pairs, if more) - the
       ALPINE Blocksworld 80/20 split.

    Unreachable pairs are never used. ``seed`` (default 0) seeds ``np.random.default_rng``: the
    same seed gives the same split. One ``rng.random`` draw per (s, t) of the n x n grid
    (``exact=False``) or one permutation of the free pairs (``exact=True``) is consumed.

    Returns:
        ``(train_pairs, test_pairs)``: int64 arrays of shape (P_train, 2) and (P_test, 2), each
        sorted by (source, target).
    """
    check(0.0 <= float(train_fraction) <= 1.0,
          f"train_fraction must be in [0, 1], got {train_fraction}")
    n = num_nodes(graph)
    R = reachability(graph) if reach is None else np.asarray(reach, dtype=bool)
    check(R.shape == (n, n), f"reach must have shape ({n}, {n}), got {R.shape}")
    rng = np.random.default_rng(seed)
    forced = np.zeros((n, n), dtype=bool)
    if edges_in_train:
        forced |= adjacency(graph)
    if first_source_in_train:
        has_source = R.any(axis=0)
        first = np.argmax(R, axis=0)
        t_idx = np.flatnonzero(has_source)
        forced[first[t_idx], t_idx] = True
    forced &= R
    if not exact:
        train = R & (forced | (rng.random((n, n)) < float(train_fraction)))
    else:
        free = np.argwhere(R & ~forced)
        n_train = max(int(round(float(train_fraction) * int(R.sum()))), int(forced.sum()))
        extra = n_train - int(forced.sum())
        chosen = free[rng.permutation(len(free))[:extra]]
        train = forced.copy()
        train[chosen[:, 0], chosen[:, 1]] = True
    test = R & ~train
    return np.argwhere(train).astype(np.int64), np.argwhere(test).astype(np.int64)


def successor_table(A: np.ndarray) -> np.ndarray:
    """Padded out-neighbour lists, shape (n, max_out_degree), padded with ``n`` (a sentinel)."""
    n = A.shape[0]
    deg = A.sum(axis=1)
    width = max(int(deg.max()) if n else 0, 1)
    table = np.full((n, width), n, dtype=np.int64)
    rows, cols = np.nonzero(A)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(deg) - deg, deg)
    table[rows, pos] = cols
    return table


def sample_paths(
    graph: nx.DiGraph,
    pairs: np.ndarray,
    *,
    seed: int | Sequence[int] | None = None,
    simple: bool | None = None,
    reach: np.ndarray | None = None,
    max_restarts: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Random walks from each pair's source to its target (ALPINE Alg. 1), batched.

    From the current node i (target t) the walk steps to a node drawn uniformly from
    ``{k : A[i, k] = 1 and (k = t or R[k, t] = 1)}``, so every walk ends at t; on a DAG it is
    exactly ALPINE Alg. 1 and always a simple path.

    On graphs with cycles (Blocksworld) pass ``simple=True``: the walk additionally never steps to
    a node it has already visited (a self-avoiding walk); if it gets stuck (no admissible
    neighbour left) it restarts from the source, so the result is a uniformly drawn step-by-step
    self-avoiding walk conditioned on reaching t. ``simple=None`` picks False on a DAG and True
    otherwise; ``simple=False`` on a graph with cycles raises ConfigError (the walk could loop).

    The walks are vectorised over chunks of ``WALK_CHUNK`` walks: each step draws one uniform key
    per out-neighbour slot and takes the admissible slot with the largest key.

    Args:
        graph: DiGraph on ``0..n-1``.
        pairs: int array (W, 2) of (source, target), each reachable with source != target.
        seed: seed of the walk RNG.
        simple: see above.
        reach: optional precomputed ``reachability(graph)``.
        max_restarts: give up (ConfigError) if one chunk needs more restarts than this per walk.

    Returns:
        ``(paths, lengths)``: int32 array (W, Lmax) of node ids padded with -1 (row w holds
        ``source, ..., target``), and int64 (W,) numbers of nodes per path.
    """
    n = num_nodes(graph)
    pairs = _check_pairs(pairs, n)
    dag = is_dag(graph)
    if simple is None:
        simple = not dag
    if not simple and not dag:
        require_dag(graph, "sample_paths(simple=False)")
    A = adjacency(graph)
    R = reachability(graph) if reach is None else np.asarray(reach, dtype=bool)
    bad = ~R[pairs[:, 0], pairs[:, 1]]
    if bad.any():
        s, t = pairs[np.argmax(bad)]
        raise ConfigError(f"pair ({s}, {t}) is not reachable (or s == t); sample only "
                          "reachable pairs, e.g. from reachable_pairs(graph)")
    # ok_to[k, t] = 1 iff stepping to k keeps t reachable (k = t or k reaches t); row n = sentinel.
    ok_to = np.zeros((n + 1, n), dtype=bool)
    ok_to[:n] = R | np.eye(n, dtype=bool)
    succ = successor_table(A)
    rng = np.random.default_rng(seed)
    W = len(pairs)
    chunks, lengths = [], np.zeros(W, dtype=np.int64)
    # A walk visits each node at most once (on a DAG: at most longest-path + 1 nodes).
    max_len = int(nx.dag_longest_path_length(graph)) + 1 if dag else n
    for start in range(0, W, WALK_CHUNK):
        p, l = _walk_chunk(succ, ok_to, pairs[start:start + WALK_CHUNK], rng, simple, n,
                           max_len, max_restarts)
        chunks.append(p)
        lengths[start:start + len(p)] = l
    width = max((c.shape[1] for c in chunks), default=0)
    paths = np.full((W, width), -1, dtype=np.int32)
    row = 0
    for c in chunks:
        paths[row:row + len(c), :c.shape[1]] = c
        row += len(c)
    return paths, lengths


def _walk_chunk(succ, ok_to, pairs, rng, simple, n, max_len, max_restarts):
    """Walk one chunk of pairs; returns (paths (w, Lmax) int32 padded with -1, lengths (w,))."""
    w = len(pairs)
    src, tgt = pairs[:, 0], pairs[:, 1]
    out = np.full((w, max_len), -1, dtype=np.int32)
    out[:, 0] = src
    length = np.ones(w, dtype=np.int64)
    cur = src.copy()
    if simple:
        visited = np.zeros((w, n + 1), dtype=bool)
        visited[:, n] = True  # the padding sentinel is never admissible
        visited[np.arange(w), src] = True
    alive = np.flatnonzero(cur != tgt)
    restarts = 0
    while alive.size:
        cand = succ[cur[alive]]
        ok = ok_to[cand, tgt[alive, None]]
        stuck_ids = alive[:0]
        if simple:
            ok &= ~visited[alive[:, None], cand]
            stuck = ~ok.any(axis=1)
            if stuck.any():
                stuck_ids = alive[stuck]
                restarts += len(stuck_ids)
                if restarts > max_restarts * w:
                    raise ConfigError(
                        "self-avoiding walks keep getting stuck before reaching their targets; "
                        "raise max_restarts or sample pairs with shorter paths"
                    )
                visited[stuck_ids] = False
                visited[stuck_ids, n] = True
                visited[stuck_ids, src[stuck_ids]] = True
                out[stuck_ids, 1:] = -1
                length[stuck_ids] = 1
                cur[stuck_ids] = src[stuck_ids]
                alive, cand, ok = alive[~stuck], cand[~stuck], ok[~stuck]
        keys = rng.random(cand.shape)
        keys[~ok] = -1.0
        nxt = cand[np.arange(len(alive)), np.argmax(keys, axis=1)]
        out[alive, length[alive]] = nxt
        length[alive] += 1
        cur[alive] = nxt
        if simple:
            visited[alive, nxt] = True
        alive = np.sort(np.concatenate([alive[nxt != tgt[alive]], stuck_ids]))
    return out[:, :int(length.max())], length


def _check_pairs(pairs: Sequence | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(pairs)
    check(arr.ndim == 2 and arr.shape[1] == 2,
          f"pairs must be an int array of shape (W, 2), got shape {arr.shape}")
    check(arr.size == 0 or np.issubdtype(arr.dtype, np.integer),
          f"pairs must hold integer node ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size:
        check(int(arr.min()) >= 0 and int(arr.max()) < n,
              f"pairs name unknown nodes: node ids must lie in 0..{n - 1}")
    return arr

import networkx as nx
import numpy as np
import pytest

from icarena.envs.planning import random_dag, reachable_pairs, sample_paths
from icarena.envs.planning.tokens import NEWLINE, encode_paths
from icarena.errors import ConfigError
from icarena.evaluation import path_error, path_is_valid, score_completions
from icarena.evaluation.planning import (
    LABELS,
    accuracy,
    degree_matrix,
    degrees,
    observed_matrices,
    per_degree_accuracy,
)

CHAIN = nx.DiGraph([(0, 1), (1, 2), (2, 3)])


def test_path_is_valid_rules():
    assert path_is_valid(CHAIN, 0, 3, [0, 1, 2, 3])
    assert path_is_valid(CHAIN, 1, 2, (1, 2))
    assert not path_is_valid(CHAIN, 0, 3, [0, 2, 3])
    assert not path_is_valid(CHAIN, 0, 3, [1, 2, 3])
    assert not path_is_valid(CHAIN, 0, 3, [0, 1, 2])
    assert not path_is_valid(CHAIN, 0, 0, [0])
    assert not path_is_valid(CHAIN, 0, 3, [0, 1, 9, 3])
    assert path_error(CHAIN, 0, 3, [0, 2, 3]).label == "non_edge"
    assert path_error(CHAIN, 0, 3, [0, 2, 3]).step == 1
    assert path_error(CHAIN, 0, 3, [0, 1, 2]).step == 3
    assert path_error(CHAIN, 0, 3, [0, 1, 9, 3]).label == "syntax"
    with pytest.raises(ConfigError, match="source"):
        path_is_valid(CHAIN, 7, 3, [7, 3])
    with pytest.raises(ConfigError, match="sequence"):
        path_is_valid(CHAIN, 0, 3, "0123")
    with pytest.raises(ConfigError, match="flat"):
        path_is_valid(CHAIN, 0, 3, [[0, 1], [1, 2]])


def _row(s, t, tokens, width=12):
    r = [s + 2, t + 2, *tokens]
    return r + [0] * (width - len(r))


def test_score_completions_labels_match_path_error():
    tok = lambda *nodes: [v + 2 for v in nodes]  # noqa: E731
    rows = np.array([
        _row(0, 3, tok(0, 1, 2, 3) + [NEWLINE]),       # ok
        _row(0, 3, tok(0, 2, 3) + [NEWLINE]),          # non-edge at step 1
        _row(0, 3, tok(1, 2, 3) + [NEWLINE]),          # wrong start
        _row(0, 3, tok(0, 1, 2) + [NEWLINE]),          # wrong end
        _row(0, 3, tok(0, 1) + [0, 5, NEWLINE]),       # PAD inside the line: syntax
        _row(0, 3, tok(0) + [NEWLINE]),                # too short: syntax
        _row(0, 3, tok(0, 1, 2, 3, 2, 3) + [NEWLINE]),  # wrong end? no: ends at 3, not simple
        _row(1, 2, tok(1, 2) + [NEWLINE, 3, 4]),       # tokens after the newline are ignored
        _row(0, 3, tok(0, 1) + [99, NEWLINE]),         # out of vocabulary
    ])
    pairs = rows[:, :2] - 2
    sc = score_completions(CHAIN, pairs, rows)
    assert sc.labels == ["ok", "non_edge", "wrong_start", "wrong_end", "syntax", "syntax",
                         "non_edge", "ok", "syntax"]
    assert sc.step.tolist() == [-1, 1, 0, 3, 2, 1, 4, -1, 2]
    assert sc.is_simple.tolist()[:2] == [True, True] and not sc.is_simple[6]
    # independent per-row check with path_error on decoded rows
    for i, row in enumerate(rows):
        body = row[2:].tolist()
        body = body[: body.index(NEWLINE)] if NEWLINE in body else body
        if any(v < 2 or v >= 6 for v in body):
            assert sc.labels[i] == "syntax"
            continue
        ref = path_error(CHAIN, int(pairs[i, 0]), int(pairs[i, 1]), [v - 2 for v in body])
        assert (ref.label, ref.step) == (sc.labels[i], int(sc.step[i]))
    summary = sc.summary()
    assert summary["path_valid"] == pytest.approx(2 / 9)
    assert summary["error/syntax"] == pytest.approx(3 / 9)
    assert set(LABELS) >= set(sc.labels)
    only = score_completions(CHAIN, pairs, rows[:, 2:], prompt_len=0)
    assert np.array_equal(only.code, sc.code)
    with pytest.raises(ConfigError, match="prompt"):
        score_completions(CHAIN, pairs[::-1], rows)


def test_score_completions_random_rows_against_path_is_valid():
    g = random_dag(25, 0.2, seed=0)
    pairs = reachable_pairs(g)
    paths, lengths = sample_paths(g, pairs, seed=0)
    tokens, _ = encode_paths(paths, lengths, 25)
    rng = np.random.default_rng(0)
    noisy = tokens.astype(np.int64).copy()
    flip = rng.random(noisy.shape) < 0.05
    flip[:, :2] = False
    noisy[flip] = rng.integers(0, 28, size=int(flip.sum()))
    sc = score_completions(g, pairs, noisy)
    for i in range(len(pairs)):
        body = noisy[i, 2:].tolist()
        body = body[: body.index(NEWLINE)] if NEWLINE in body else body
        ok = all(2 <= v < 27 for v in body) and path_is_valid(
            g, int(pairs[i, 0]), int(pairs[i, 1]), [v - 2 for v in body])
        assert ok == bool(sc.path_valid[i])
    assert 0.2 < sc.path_valid.mean() < 1.0


def test_accuracy_levels():
    valid = np.array([1, 1, 0, 0, 0, 1], dtype=bool)
    assert accuracy(valid) == pytest.approx(0.5)
    assert accuracy(valid, groups=np.array([0, 0, 1, 1, 1, 1])) == pytest.approx((1 + 0.25) / 2)


def _lines(lines, n):
    """Token rows of node lines [s, t, s, ..., t]."""
    width = max(len(x) for x in lines) + 1
    out = np.zeros((len(lines), width), dtype=np.uint16)
    for i, x in enumerate(lines):
        out[i, : len(x)] = np.array(x) + 2
        out[i, len(x)] = NEWLINE
    return out


def test_observed_matrices_and_degrees_on_chain():
    # chain 0 -> 1 -> 2 -> 3, training = the three edges only
    tok = _lines([[0, 1, 0, 1], [1, 2, 1, 2], [2, 3, 2, 3]], 4)
    A_obs, R_obs = observed_matrices(tok, 4)
    assert np.array_equal(np.argwhere(A_obs), [[0, 1], [1, 2], [2, 3]])
    assert np.array_equal(np.argwhere(R_obs), [[1, 1], [2, 2], [3, 3]])
    deg = degrees(A_obs, R_obs, np.array([[0, 1], [0, 2], [0, 3], [1, 3]]))
    assert deg.tolist() == [1, 2, 3, 2]
    # adding the line 0 3 0 1 2 3 makes (1,3), (2,3) observed (degree 0), (0,3) degree 1
    tok = _lines([[0, 1, 0, 1], [1, 2, 1, 2], [2, 3, 2, 3], [0, 3, 0, 1, 2, 3]], 4)
    A_obs, R_obs = observed_matrices(tok, 4)
    assert not R_obs[3, 0] and R_obs[3, 1] and R_obs[3, 2]  # the source u_3 is not counted
    deg = degrees(A_obs, R_obs, np.array([[0, 3], [1, 3], [2, 3], [0, 2]]))
    assert deg.tolist() == [1, 0, 0, 2]


def test_degree_diamond_and_per_degree_accuracy():
    # 0 -> 1 -> 3, 0 -> 2 -> 3, 3 -> 4; training: the edges plus the line 1 4 1 3 4
    lines = [[0, 1, 0, 1], [0, 2, 0, 2], [1, 3, 1, 3], [2, 3, 2, 3], [3, 4, 3, 4],
             [1, 4, 1, 3, 4]]
    A_obs, R_obs = observed_matrices(_lines(lines, 5), 5)
    pairs = np.array([[0, 4], [2, 4], [0, 3], [1, 4]])
    deg = degrees(A_obs, R_obs, pairs)
    # R_obs[4] = {3, 4} (1 is the source of 1 4 1 3 4, so not observed); R_obs[3] = {3}.
    # (1,4), (2,4): out-neighbour 3 with (3,4) of degree 0 -> 1;
    # (0,4): out-neighbours 1, 2 have degree 1 -> 2; (0,3): (1,3) has degree 1 -> 2.
    assert deg.tolist() == [2, 1, 2, 1]
    res = per_degree_accuracy(np.array([True, False, True, True]), deg)
    assert res["1"] == {"accuracy": 0.5, "count": 2}
    assert res["2"] == {"accuracy": 1.0, "count": 2}
    assert res[">=3"]["count"] == 0 and np.isnan(res[">=3"]["accuracy"])


def _brute_degree(A_obs, R_obs, s, t, depth=0):
    if R_obs[t, s]:
        return 0
    if depth == 2:
        return 3
    best = 3
    for u in np.flatnonzero(A_obs[s]):
        best = min(best, 1 + _brute_degree(A_obs, R_obs, u, t, depth + 1))
    return min(best, 3)


def test_degree_matrix_matches_brute_force():
    g = random_dag(30, 0.15, seed=4)
    pairs = reachable_pairs(g)
    rng = np.random.default_rng(0)
    train = pairs[rng.random(len(pairs)) < 0.15]
    paths, lengths = sample_paths(g, train, seed=1)
    tok, _ = encode_paths(paths, lengths, 30)
    A_obs, R_obs = observed_matrices(tok, 30)
    D = degree_matrix(A_obs, R_obs)
    for s, t in pairs:
        assert D[s, t] == _brute_degree(A_obs, R_obs, s, t)
    assert len(set(D[pairs[:, 0], pairs[:, 1]].tolist())) >= 3

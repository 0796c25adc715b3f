"""The ALPINE sequence format and vocabulary, shared by the dataset generators and the evaluation.

A training line for the pair (s, t) with path ``s = v_1, v_2, ..., v_m = t`` is the token row
(ALPINE, Wang et al. 2024, arXiv 2405.09220, Sec. 3.1, and the authors' nanoGPT code)::

    s t s v_2 ... t \\n PAD PAD ...

with one token per node: ``PAD = 0``, newline ``NEWLINE = 1`` and node ``i -> i + 2``, so a graph
on n nodes has ``vocab_size = n + 2``. Rows are stored as uint16 arrays of width
``block_size + 1`` where ``block_size`` = the longest line (including the newline) rounded up to a
multiple of 32; a model trained next-token on row[:-1] -> row[1:] with ``ignore_index = PAD``
sees every real target, including the final newline.
"""

from __future__ import annotations

import numpy as np

from icarena.errors import ConfigError, check

PAD = 0
NEWLINE = 1
NODE_OFFSET = 2
#: Block sizes are multiples of this (nanoGPT convention of the ALPINE code).
BLOCK_MULTIPLE = 32
#: Largest node count whose tokens fit in uint16.
MAX_NODES = int(np.iinfo(np.uint16).max) + 1 - NODE_OFFSET


def vocab_size(n: int) -> int:
    """Vocabulary size for a graph on n nodes: ``n + 2`` (PAD, newline, one token per node)."""
    check(1 <= int(n) <= MAX_NODES, f"n must be in 1..{MAX_NODES} for uint16 tokens, got {n}")
    return int(n) + NODE_OFFSET


def node_to_token(nodes: np.ndarray | int) -> np.ndarray:
    """Token ids of node ids (``i -> i + 2``)."""
    return np.asarray(nodes, dtype=np.int64) + NODE_OFFSET


def token_to_node(tokens: np.ndarray | int) -> np.ndarray:
    """Node ids of node tokens (``k -> k - 2``; PAD/newline map to -2/-1)."""
    return np.asarray(tokens, dtype=np.int64) - NODE_OFFSET


def block_size_for(longest_line: int) -> int:
    """``longest_line`` (tokens, including the newline) rounded up to a multiple of 32."""
    check(int(longest_line) >= 1, f"longest_line must be >= 1, got {longest_line}")
    return -(-int(longest_line) // BLOCK_MULTIPLE) * BLOCK_MULTIPLE


def encode_paths(
    paths: np.ndarray, lengths: np.ndarray, n: int, block_size: int | None = None
) -> tuple[np.ndarray, int]:
    """Encode padded node paths as ALPINE token rows.

    Args:
        paths: int (L, W) node ids, row l holds ``s ... t`` in its first ``lengths[l]`` entries.
        lengths: int (L,) nodes per path (>= 1).
        n: number of graph nodes (for the vocabulary check).
        block_size: row width minus one; None = longest line rounded up to a multiple of 32.

    Returns:
        ``(tokens, block_size)`` with tokens uint16 (L, block_size + 1):
        ``[s, t, path..., NEWLINE, PAD...]``.
    """
    vocab_size(n)
    paths = np.asarray(paths)
    lengths = np.asarray(lengths, dtype=np.int64)
    check(paths.ndim == 2 and lengths.shape == (paths.shape[0],),
          f"paths must be (L, W) and lengths (L,), got {paths.shape} and {lengths.shape}")
    L = paths.shape[0]
    if L:
        check(int(lengths.min()) >= 1 and int(lengths.max()) <= paths.shape[1],
              "every path needs 1..W nodes")
    line_len = lengths + 3  # s, t, path, newline
    longest = int(line_len.max()) if L else 3
    if block_size is None:
        block_size = block_size_for(longest)
    check(longest <= block_size + 1,
          f"the longest line has {longest} tokens but block_size + 1 = {block_size + 1}")
    tokens = np.zeros((L, block_size + 1), dtype=np.uint16)
    if not L:
        return tokens, block_size
    width = int(lengths.max())
    body = paths[:, :width].astype(np.int64)
    in_path = np.arange(width)[None, :] < lengths[:, None]
    check(bool(((body >= 0) & (body < n))[in_path].all()), f"path nodes must lie in 0..{n - 1}")
    rows = np.arange(L)
    tokens[:, 0] = body[:, 0] + NODE_OFFSET
    tokens[:, 1] = body[rows, lengths - 1] + NODE_OFFSET
    tokens[:, 2:2 + width] = np.where(in_path, body + NODE_OFFSET, PAD)
    tokens[rows, 2 + lengths] = NEWLINE
    return tokens, block_size


def encode_line(source: int, target: int, path: list[int] | np.ndarray, n: int) -> np.ndarray:
    """One line ``s t path... \\n`` as an int64 token vector (no padding)."""
    vocab_size(n)
    nodes = np.asarray([source, target, *list(path)], dtype=np.int64)
    check(bool(((nodes >= 0) & (nodes < n)).all()), f"nodes must lie in 0..{n - 1}")
    return np.concatenate([nodes + NODE_OFFSET, [NEWLINE]])


def prompt_tokens(pairs: np.ndarray) -> np.ndarray:
    """The evaluation prompts ``s t`` of (M, 2) pairs as int64 tokens (M, 2)."""
    pairs = np.asarray(pairs)
    check(pairs.ndim == 2 and pairs.shape[1] == 2, f"pairs must be (M, 2), got {pairs.shape}")
    return pairs.astype(np.int64) + NODE_OFFSET


def line_lengths(tokens: np.ndarray) -> np.ndarray:
    """Tokens before the first newline of each row (the whole row if it has none); int64 (L,)."""
    tokens = np.asarray(tokens)
    is_nl = tokens == NEWLINE
    return np.where(is_nl.any(axis=1), np.argmax(is_nl, axis=1), tokens.shape[1]).astype(np.int64)


def decode_row(row: np.ndarray, n: int) -> tuple[list[int], str | None]:
    """Decode one token row, prompt included, to its node list (:func:`decode_path` gives the
    path alone).

    The row is cut at the first newline (the whole row if there is none). Returns
    ``(nodes, error)`` where ``error`` is None, or a message naming the first PAD or
    out-of-vocabulary token (nodes then holds the nodes before it).
    """
    row = np.asarray(row).reshape(-1).astype(np.int64)
    vocab = vocab_size(n)
    cut = int(line_lengths(row[None])[0])
    nodes: list[int] = []
    for pos, tok in enumerate(row[:cut].tolist()):
        if tok == PAD:
            return nodes, f"PAD token at position {pos}"
        if tok < 0 or tok >= vocab:
            return nodes, f"out-of-vocabulary token {tok} at position {pos} (vocab {vocab})"
        nodes.append(tok - NODE_OFFSET)
    return nodes, None


def decode_path(row: np.ndarray, n: int, prompt_len: int = 2) -> list[int] | None:
    """The path of one sampled row ``s t v_1 ... v_m \\n ...``: the nodes ``[v_1, ..., v_m]``
    after the ``prompt_len``-token prompt, cut at the first newline; None if the completion
    holds a PAD or out-of-vocabulary token before it (not a node sequence). Compare
    :func:`decode_row`, which decodes the whole row, prompt included."""
    nodes, err = decode_row(np.asarray(row).reshape(-1)[prompt_len:], n)
    return None if err is not None else nodes


def decode_rows(tokens: np.ndarray, n: int) -> list[list[int]]:
    """Decode stored (well-formed) token rows to node lists ``[s, t, s, ..., t]``.

    Raises ConfigError on a PAD or out-of-vocabulary token before the newline.
    """
    out = []
    for i, row in enumerate(np.asarray(tokens)):
        nodes, err = decode_row(row, n)
        if err is not None:
            raise ConfigError(f"row {i}: {err}")
        out.append(nodes)
    return out

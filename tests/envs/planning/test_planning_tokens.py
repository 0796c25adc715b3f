import numpy as np
import pytest

from icarena.envs.planning.tokens import (
    NEWLINE,
    PAD,
    block_size_for,
    decode_row,
    decode_rows,
    encode_line,
    encode_paths,
    vocab_size,
)
from icarena.errors import ConfigError


def test_block_size_rounding():
    assert [block_size_for(k) for k in (1, 31, 32, 33, 64, 65)] == [32, 32, 32, 64, 64, 96]
    assert vocab_size(100) == 102


def test_encode_paths_format_and_roundtrip():
    paths = np.array([[3, 5, 9, -1], [0, 1, -1, -1], [2, 4, 6, 7]])
    lengths = np.array([3, 2, 4])
    tok, bs = encode_paths(paths, lengths, 10)
    assert bs == 32 and tok.shape == (3, 33) and tok.dtype == np.uint16
    assert tok[0, :7].tolist() == [5, 11, 5, 7, 11, NEWLINE, PAD]  # "3 9 3 5 9 \n"
    assert (tok[0, 6:] == PAD).all()
    assert decode_rows(tok, 10) == [[3, 9, 3, 5, 9], [0, 1, 0, 1], [2, 7, 2, 4, 6, 7]]
    assert np.array_equal(encode_line(3, 9, [3, 5, 9], 10), tok[0, :6])


def test_decode_reports_syntax_errors():
    assert decode_row([5, 7, 5, 6, NEWLINE, 9, 0], 10) == ([3, 5, 3, 4], None)
    nodes, err = decode_row([5, 7, 5, PAD, 6, NEWLINE], 10)
    assert nodes == [3, 5, 3] and "PAD" in err and "position 3" in err
    nodes, err = decode_row([5, 7, 12, NEWLINE], 10)
    assert "out-of-vocabulary token 12" in err
    assert decode_row([5, 7, 5, 7], 10) == ([3, 5, 3, 5], None)  # no newline: the whole row
    with pytest.raises(ConfigError, match="row 0"):
        decode_rows(np.array([[5, 0, 1]]), 10)


def test_encode_bad_input():
    with pytest.raises(ConfigError):
        encode_paths(np.array([[0, 12]]), np.array([2]), 10)
    with pytest.raises(ConfigError):
        encode_paths(np.array([[0, 1]]), np.array([2]), 10, block_size=3)
    with pytest.raises(ConfigError):
        vocab_size(70000)

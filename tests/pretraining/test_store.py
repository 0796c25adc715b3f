import json

import numpy as np
import pytest

from icarena.errors import DatasetError
from icarena.pretraining.data.store import load_dataset, write_dataset


def arrays():
    rng = np.random.default_rng(0)
    return {
        "train/tokens": rng.integers(0, 100, size=(50, 9)).astype(np.uint16),
        "train/weights": rng.random(50).astype(np.float32),
        "scalar": np.array(3),
    }


def write(path, **kw):
    return write_dataset(path, arrays(), generator="toy", config={"n": 5}, seed=1, **kw)


def test_roundtrip_memmapped_and_sharded(tmp_path):
    write(tmp_path / "ds", shard_rows=16, files={"graph.json": b'{"edges": []}'})
    ds = load_dataset(tmp_path / "ds", generator="toy")
    ref = arrays()
    assert len(ds.shards("train/tokens")) == 4
    assert isinstance(ds.shards("train/tokens")[0], np.memmap)
    for name, arr in ref.items():
        np.testing.assert_array_equal(ds[name], arr)
        assert ds[name].dtype == arr.dtype
    assert ds.config == {"n": 5} and ds.seed == 1 and ds.generator == "toy"
    assert ds.file_bytes("graph.json") == b'{"edges": []}'
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["arrays"]["train/tokens"]["shape"] == [50, 9]
    assert all(len(s["sha256"]) == 64 for s in manifest["arrays"]["train/tokens"]["shards"])


def test_same_inputs_same_bytes(tmp_path):
    write(tmp_path / "a", shard_rows=16)
    write(tmp_path / "b", shard_rows=16)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        if (tmp_path / "a" / rel).is_file():
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_corrupt_and_truncated_shards_name_the_file(tmp_path):
    write(tmp_path / "ds", shard_rows=16)
    shard = tmp_path / "ds" / "train__tokens.00001.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="train__tokens.00001.npy"):
        load_dataset(tmp_path / "ds")
    write(tmp_path / "ds2")
    shard = tmp_path / "ds2" / "train__weights.00000.npy"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="train__weights.00000.npy"):
        load_dataset(tmp_path / "ds2")


def test_missing_dataset_and_wrong_generator(tmp_path):
    with pytest.raises(DatasetError, match="icarena generate"):
        load_dataset(tmp_path / "nothing")
    write(tmp_path / "ds")
    with pytest.raises(DatasetError, match="generator 'toy'"):
        load_dataset(tmp_path / "ds", generator="alpine")


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    write(tmp_path / "ds")
    before = (tmp_path / "ds" / "manifest.json").read_bytes()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        write(tmp_path / "ds")
    assert (tmp_path / "ds" / "manifest.json").read_bytes() == before
    write_dataset(tmp_path / "ds", {"x": np.zeros(3)}, generator="toy", config={}, seed=2,
                  overwrite=True)
    assert load_dataset(tmp_path / "ds").names() == ["x"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kind", ["user_dir", "file", "under_file"])
def test_overwrite_never_replaces_what_is_not_a_dataset(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "user_dir":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif kind == "file":
        target.write_text("mine")
    else:
        (tmp_path / "f").write_text("mine")
        target = tmp_path / "f" / "ds"
    snapshot = sorted((p.relative_to(tmp_path), p.read_bytes() if p.is_file() else b"")
                      for p in tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match="refusing"):
        write_dataset(target, {"x": np.zeros(3)}, generator="toy", config={}, seed=0,
                      overwrite=True)
    assert snapshot == sorted((p.relative_to(tmp_path), p.read_bytes() if p.is_file() else b"")
                              for p in tmp_path.rglob("*"))


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(DatasetError, match="dtype object"):
        write_dataset(tmp_path / "ds", {"a": np.zeros(2), "b": np.array([{}], dtype=object)},
                      generator="toy", config={}, seed=0)
    assert list(tmp_path.iterdir()) == []

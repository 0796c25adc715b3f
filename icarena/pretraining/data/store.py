"""Dataset store: shards of flat numpy arrays plus a JSON manifest.

Layout of a dataset directory::

    manifest.json                 schema version, generator name + config, seed, arrays, files
    <array>.<shard:05d>.npy       one .npy per array per shard (rows split along axis 0)
    files/<name>                  extra payloads saved beside the arrays (a graph, games, ...)

Array names may contain ``/`` (``train/tokens``); on disk it becomes ``__``. Every shard and extra
file carries its SHA-256 in the manifest; :func:`load_dataset` verifies them and memory-maps the
shards with ``allow_pickle=False``. Writing goes to a temporary sibling directory that is renamed
into place only when complete, so an interrupted write never leaves a half-written dataset and
an existing dataset is replaced only by a complete new one.

The same arrays, config and seed give byte-identical files (``.npy`` headers are deterministic
and the manifest is written with sorted keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icarena.errors import DatasetError
from icarena.lifecycle import (  # noqa: F401  (atomic writers re-exported for older imports)
    atomic_write_bytes,
    atomic_write_json,
    claim_dataset,
)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _disk_name(name: str) -> str:
    if not name or name.startswith(".") or ".." in name or "\\" in name:
        raise DatasetError(f"invalid array name {name!r}: use letters, digits, '_' and '/'")
    return name.replace("/", "__")


def write_dataset(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    generator: str,
    config: Mapping[str, Any],
    seed: int,
    shard_rows: int | None = None,
    files: Mapping[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a dataset directory atomically and return its path.

    Args:
        path: the dataset directory to create.
        arrays: name -> array; each is split along axis 0 into shards of ``shard_rows`` rows
            (one shard when None). Object arrays are refused (they would need pickle).
        generator: name of the generator that made the data (e.g. ``"alpine"``).
        config: the generator's resolved config (JSON-serialisable).
        seed: the seed the data was generated from.
        shard_rows: rows per shard, or None for a single shard per array.
        files: extra payloads (name -> bytes) stored under ``files/`` with their checksums.
        overwrite: replace an existing dataset at ``path`` (only once the new one is complete;
            only an icarena dataset is ever replaced, see :mod:`icarena.lifecycle`).
    """
    path = Path(path)
    if shard_rows is not None and (not isinstance(shard_rows, int) or shard_rows < 1):
        raise DatasetError(f"shard_rows must be an integer >= 1, got {shard_rows!r}")
    for names, what in ((arrays, "array"), (files or {}, "file")):
        seen: dict[str, str] = {}
        for name in sorted(names):
            disk = _disk_name(name)
            if disk in seen:
                raise DatasetError(
                    f"{what} names {seen[disk]!r} and {name!r} would be stored in the same file "
                    f"{disk!r}; rename one of them"
                )
            seen[disk] = name
    with claim_dataset(path, overwrite=overwrite):
        return _write_dataset(path, arrays, generator=generator, config=config, seed=seed,
                              shard_rows=shard_rows, files=files)


def _write_dataset(
    path: Path, arrays: Mapping[str, np.ndarray], *, generator: str, config: Mapping[str, Any],
    seed: int, shard_rows: int | None, files: Mapping[str, bytes] | None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        manifest_arrays: dict[str, Any] = {}
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            if arr.dtype == object:
                raise DatasetError(f"array {name!r} has dtype object; store numeric arrays only")
            arr = np.ascontiguousarray(arr)
            rows = arr.shape[0] if arr.ndim else 1
            step = rows if (shard_rows is None or arr.ndim == 0) else shard_rows
            shards = []
            starts = range(0, max(rows, 1), max(step, 1)) if arr.ndim else [0]
            for i, start in enumerate(starts):
                part = arr if arr.ndim == 0 else arr[start : start + step]
                fname = f"{_disk_name(name)}.{i:05d}.npy"
                np.save(tmp / fname, part, allow_pickle=False)
                shards.append(
                    {"file": fname, "rows": int(part.shape[0]) if part.ndim else 1,
                     "sha256": sha256_file(tmp / fname)}
                )
            manifest_arrays[name] = {
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "shards": shards,
            }
        manifest_files = {}
        for name in sorted(files or {}):
            fpath = tmp / "files" / _disk_name(name)
            fpath.parent.mkdir(exist_ok=True)
            fpath.write_bytes(files[name])
            manifest_files[name] = {"file": f"files/{fpath.name}", "sha256": sha256_file(fpath)}
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "generator": generator,
            "config": dict(config),
            "seed": int(seed),
            "arrays": manifest_arrays,
            "files": manifest_files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / "d")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


@dataclass
class Dataset:
    """A loaded dataset: memory-mapped shards plus the manifest."""

    path: Path
    manifest: dict[str, Any]
    _shards: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def generator(self) -> str:
        return self.manifest["generator"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def seed(self) -> int:
        return self.manifest["seed"]

    @property
    def manifest_sha256(self) -> str:
        """SHA-256 of ``manifest.json``: the dataset's identity (it lists every shard's hash)."""
        return sha256_file(self.path / MANIFEST)

    def names(self) -> list[str]:
        return sorted(self.manifest["arrays"])

    def __contains__(self, name: str) -> bool:
        return name in self.manifest["arrays"]

    def shards(self, name: str) -> list[np.ndarray]:
        """The memory-mapped shards of array ``name``."""
        if name not in self.manifest["arrays"]:
            raise DatasetError(
                f"dataset {self.path} has no array {name!r}; it has: {', '.join(self.names())}"
            )
        return self._shards[name]

    def __getitem__(self, name: str) -> np.ndarray:
        """Array ``name``: the memory map itself when it has one shard, else a concatenation."""
        parts = self.shards(name)
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts, axis=0)

    def file_bytes(self, name: str) -> bytes:
        """Bytes of the extra file ``name`` (checksum verified at load time)."""
        if name not in self.manifest["files"]:
            raise DatasetError(
                f"dataset {self.path} has no file {name!r}; it has: "
                f"{', '.join(sorted(self.manifest['files'])) or 'none'}"
            )
        return _inside(self.path, self.manifest["files"][name]["file"],
                       self.path / MANIFEST).read_bytes()


def dataset_identity(ds: Dataset) -> dict[str, Any]:
    """What a run records of its dataset: the manifest hash (the identity a resume and an
    evaluation check) and the generator."""
    return {"manifest_sha256": ds.manifest_sha256, "generator": ds.generator}


def load_dataset(
    path: str | os.PathLike, *, verify: bool = True, generator: str | None = None
) -> Dataset:
    """Load a dataset directory: memory-mapped, ``allow_pickle=False``, checksums verified.

    Args:
        path: the dataset directory.
        verify: check every shard's and file's SHA-256 against the manifest.
        generator: if given, the dataset must have been made by this generator.
    """
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise DatasetError(
            f"no dataset at {path} (missing {MANIFEST}); create it with `icarena generate ...`"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{mpath} is not valid JSON ({e}); regenerate the dataset") from e
    if not isinstance(manifest, dict):
        raise DatasetError(
            f"{mpath} holds a JSON {type(manifest).__name__}, not an icarena manifest (an "
            "object); regenerate the dataset"
        )
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(
            f"{mpath} has schema version {manifest.get('schema_version')!r}, this icarena reads "
            f"{SCHEMA_VERSION}; regenerate the dataset"
        )
    if generator is not None and manifest.get("generator") != generator:
        raise DatasetError(
            f"{path} was made by generator {manifest.get('generator')!r}, expected "
            f"{generator!r}; pass a dataset from `icarena generate {generator}`"
        )
    _validate_manifest(manifest, mpath)
    ds = Dataset(path=path, manifest=manifest)
    for name, spec in manifest["arrays"].items():
        parts = []
        for shard in spec["shards"]:
            fpath = _inside(path, shard["file"], mpath)
            if not fpath.is_file():
                raise DatasetError(f"missing shard {fpath}; regenerate the dataset")
            if verify and sha256_file(fpath) != shard["sha256"]:
                raise DatasetError(
                    f"checksum mismatch in {fpath}: the shard is corrupt or truncated; "
                    "regenerate the dataset"
                )
            try:
                arr = np.load(fpath, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:
                raise DatasetError(
                    f"cannot read shard {fpath} ({e}); regenerate the dataset"
                ) from e
            shape = tuple(spec["shape"])
            want = shape[1:] if shape else ()
            if (arr.dtype.str != spec["dtype"] or arr.ndim != len(shape)
                    or (arr.ndim and (arr.shape[0] != shard["rows"] or arr.shape[1:] != want))):
                raise DatasetError(
                    f"shard {fpath} has dtype/shape {arr.dtype.str}{arr.shape}, manifest says "
                    f"{spec['dtype']} with {shard['rows']} rows of shape {list(want)}; "
                    "regenerate the dataset"
                )
            parts.append(arr)
        ds._shards[name] = parts
    for spec in manifest.get("files", {}).values():
        fpath = _inside(path, spec["file"], mpath)
        if not fpath.is_file():
            raise DatasetError(f"missing file {fpath}; regenerate the dataset")
        if verify and sha256_file(fpath) != spec["sha256"]:
            raise DatasetError(f"checksum mismatch in {fpath}; regenerate the dataset")
    return ds


_HEX = frozenset("0123456789abcdef")


def _inside(root: Path, name: str, mpath: Path) -> Path:
    """``root / name`` after checking that it resolves (symlinks included) inside ``root``."""
    base = root.resolve()
    target = (root / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(base):
        raise DatasetError(
            f"{mpath} lists the file {name!r}, which lies outside the dataset directory "
            f"{root}; a manifest may only name files inside its dataset: regenerate the dataset"
        )
    return root / name


def _validate_manifest(manifest: dict[str, Any], mpath: Path) -> None:
    """Check the manifest's structure (types, shapes vs shard rows, duplicates) before any shard
    is opened; every problem is a DatasetError naming the field."""

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{mpath}: {what}; regenerate the dataset")

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    for key, kind in (("generator", str), ("config", dict), ("arrays", dict)):
        if not isinstance(manifest.get(key), kind):
            raise bad(f"'{key}' is missing or not a {kind.__name__}")
    if not is_int(manifest.get("seed")):
        raise bad("'seed' is missing or not an integer")
    if not isinstance(manifest.get("files", {}), dict):
        raise bad("'files' is not an object")
    listed: dict[str, str] = {}

    def claim(file: Any, owner: str) -> None:
        if not isinstance(file, str) or not file:
            raise bad(f"{owner} has no 'file' name")
        key = os.path.normpath(file)
        if key in listed:
            raise bad(f"the file {file!r} is listed twice ({listed[key]} and {owner})")
        listed[key] = owner

    for name, spec in manifest["arrays"].items():
        where = f"array {name!r}"
        if not isinstance(spec, dict):
            raise bad(f"{where} is not an object")
        dtype = spec.get("dtype")
        try:
            ok = isinstance(dtype, str) and np.dtype(dtype) != np.dtype(object)
        except TypeError:
            ok = False
        if not ok:
            raise bad(f"{where} has an invalid dtype {dtype!r}")
        shape = spec.get("shape")
        if not (isinstance(shape, list) and all(is_int(d) and d >= 0 for d in shape)):
            raise bad(f"{where} has an invalid shape {shape!r}")
        shards = spec.get("shards")
        if not isinstance(shards, list) or not shards:
            raise bad(f"{where} has no shards")
        rows = 0
        for i, shard in enumerate(shards):
            owner = f"shard {i} of {where}"
            if not isinstance(shard, dict):
                raise bad(f"{owner} is not an object")
            claim(shard.get("file"), owner)
            if not is_int(shard.get("rows")) or shard["rows"] < 0:
                raise bad(f"{owner} has an invalid row count {shard.get('rows')!r}")
            if not (isinstance(shard.get("sha256"), str) and len(shard["sha256"]) == 64
                    and set(shard["sha256"]) <= _HEX):
                raise bad(f"{owner} has no valid 'sha256'")
            rows += shard["rows"]
        if shape and rows != shape[0]:
            raise bad(f"{where} has shape {shape} but its shards hold {rows} rows")
        if not shape and (len(shards) != 1 or rows != 1):
            raise bad(f"{where} is a scalar but lists {len(shards)} shards of {rows} rows")
    for name, spec in manifest.get("files", {}).items():
        where = f"file {name!r}"
        if not isinstance(spec, dict):
            raise bad(f"{where} is not an object")
        claim(spec.get("file"), where)
        if not (isinstance(spec.get("sha256"), str) and len(spec["sha256"]) == 64):
            raise bad(f"{where} has no valid 'sha256'")

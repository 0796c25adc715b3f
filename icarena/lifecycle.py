"""Lifecycle of icarena's outputs: datasets and run dirs are created, refused, replaced, resumed
and locked by the rules below, written once here and used by every stage and experiment.

* **Create**: a target that does not exist (or is an empty directory) is created. A run dir gets
  the marker file :data:`RUN_MARKER` at creation; a dataset is recognised by its manifest.
* **Refuse**: an existing target is refused unless the user says what to do with it; a plain file,
  a path under a file, or a directory that is neither an icarena dataset nor an icarena run is
  refused even with ``--overwrite`` (nothing the user owns is ever deleted).
* **Overwrite**: replaces only an icarena target of the same kind. A run dir being replaced is
  moved aside to a hidden sibling (``.NAME.replaced-PID``) and deleted when the new run ends; if
  the new run fails before it wrote any checkpoint, the old one is put back. A
  dataset is written to a temporary sibling and swapped in complete
  (:func:`icarena.pretraining.data.store.write_dataset`).
* **Resume**: continues the run in place; the Trainer compares only the settings that define the
  run (:func:`icarena.pretraining.train.run_identity`).
* **Lock**: one writer per target. The writer holds an OS-level lock (``flock``) on a lock file
  kept outside the target (in ``$ICARENA_LOCK_DIR``, default ``<tmp>/icarena-locks-<uid>``), so a
  second writer is refused at once with a one-line error, while a lock left by a killed process
  is released by the OS and never blocks a resume. Locks are re-entrant within a process (an
  experiment holds its out dir while its Trainer writes into it). Under ``torchrun`` only rank 0
  locks and writes.

* **Sweep**: what killed writers left (temporary files, a run moved aside) is deleted by the
  next claim of the same target (:func:`sweep_leftovers`).

Files are written atomically (temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from icarena.errors import CheckpointError, DatasetError, IcarenaError

RUN_MARKER = ".icarena-run"
MANIFEST = "manifest.json"
# Files whose presence identifies a run dir written before the marker existed.
_LEGACY_RUN_FILES = ("ckpt.pt", "icgp.json")
CHECKPOINT = "ckpt.pt"

State = Literal["missing", "empty", "dataset", "run", "foreign", "file"]


class BusyError(IcarenaError):
    """Another process is writing the same target."""


# ------------------------------------------------------------------------------ atomic files
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


# ------------------------------------------------------------------------------ what is there
def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding an icarena dataset manifest."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return False
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"schema_version", "generator"} <= set(manifest)


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an icarena run dir (its marker, or a checkpoint of an older run)."""
    path = Path(path)
    return path.is_dir() and any((path / f).is_file() for f in (RUN_MARKER, *_LEGACY_RUN_FILES))


def state_of(path: str | os.PathLike) -> State:
    """What sits at ``path``: missing, an empty dir, a dataset, a run, a file, or anything else."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        return "file" if not parent.is_dir() else "missing"
    if not path.is_dir():
        return "file"
    if is_dataset(path):
        return "dataset"
    if is_run(path):
        return "run"
    return "foreign" if any(path.iterdir()) else "empty"


def _what(state: State) -> str:
    return {"dataset": "an icarena dataset", "run": "an icarena run dir",
            "foreign": "a directory that is not an icarena dataset or run (no manifest.json, no "
                       f"{RUN_MARKER})", "file": "a file (or lies under one)",
            "empty": "an empty directory", "missing": "nothing"}[state]


# ------------------------------------------------------------------------------ locks
_held: dict[str, list[int]] = {}  # lock file -> [fd, depth]


def _lock_file(path: Path) -> Path:
    root = os.environ.get("ICARENA_LOCK_DIR") or os.path.join(
        tempfile.gettempdir(), f"icarena-locks-{os.getuid() if hasattr(os, 'getuid') else 0}")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return Path(root) / f"{key}.lock"


def is_writer_rank() -> bool:
    """False on the non-zero ranks of a torchrun job (only rank 0 writes)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold the write lock of ``path`` (re-entrant in this process); BusyError if another holds
    it. A no-op on the non-zero ranks of a torchrun job."""
    if not is_writer_rank():
        yield
        return
    lock = _lock_file(Path(path))
    key = str(lock)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise BusyError(f"another icarena process (pid {holder}) is writing {path}; wait for it "
                        "to finish, or choose another output path") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        _held.pop(key, None)
        os.close(fd)  # releases the flock; the lock file stays (deleting it would race)


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds the write lock of ``path`` right now."""
    lock = _lock_file(path)
    if str(lock) in _held or not lock.exists():
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock at once
    return False


_TMP_TAIL = r"[A-Za-z0-9_]{8}\.tmp"  # what tempfile.mkstemp / mkdtemp add after the prefix


def sweep_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete what killed writers of ``path`` left behind; returns what was deleted.

    That is: hidden temporary siblings ``.NAME.*.tmp`` (atomic writes, dataset staging), a run
    moved aside by an ``--overwrite`` whose process is gone (``.NAME.replaced-PID``), and hidden
    ``.*.tmp`` files and dirs inside the run dir, except in a directory another live process is
    writing (it holds that directory's lock). Call it while holding the lock of ``path``.
    """
    path = Path(path)
    doomed: list[Path] = []
    if path.parent.is_dir():
        for p in path.parent.glob(f".{glob.escape(path.name)}.*"):
            m = re.fullmatch(rf"\.{re.escape(path.name)}\.replaced-(\d+)", p.name)
            if (re.fullmatch(rf"\.{re.escape(path.name)}\.{_TMP_TAIL}", p.name)
                    or (m and not _alive(int(m.group(1))))):
                doomed.append(p)
    if path.is_dir() and not path.is_symlink():
        for p in path.rglob(".*.tmp"):
            inner = [d for d in (p.parent, *p.parent.parents) if path in d.parents]
            if (re.fullmatch(rf"\..+\.{_TMP_TAIL}", p.name)
                    and not any(_locked_elsewhere(d) for d in inner)):
                doomed.append(p)
    for p in doomed:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return doomed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------ claims
_TARGET = ("overwrite", "resume", "out_dir")  # the settings a refusal names


def check_dataset_target(path: str | os.PathLike, *, overwrite: bool) -> None:
    """Refuse a dataset target that may not be written (nothing on disk is touched)."""
    state = state_of(path)
    if state in ("missing", "empty") or (state == "dataset" and overwrite):
        return
    if state == "dataset":
        raise DatasetError(f"{path} already holds a dataset; pass {{overwrite}} to replace it, "
                           "or choose another {out_dir}", fields=_TARGET)
    raise DatasetError(f"{path} is {_what(state)}; refusing to write a dataset there"
                       f"{' ({overwrite} replaces only an icarena dataset)' if overwrite else ''}"
                       "; choose another {out_dir}", fields=_TARGET)


@contextlib.contextmanager
def claim_dataset(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Lock a dataset target and check it may be written (re-checked under the lock)."""
    path = Path(path)
    check_dataset_target(path, overwrite=overwrite)
    with locked(path):
        check_dataset_target(path, overwrite=overwrite)
        sweep_leftovers(path)
        yield path


def check_run_target(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
                     require_existing: bool = True, resumable: bool = True,
                     ) -> Literal["create", "replace", "resume"]:
    """Decide what a run writer does with ``path``, without touching the disk.

    Returns 'create' (missing or empty), 'replace' (an icarena run and ``overwrite``) or 'resume'
    (an icarena run and ``resume``; with ``require_existing=False`` also a missing or empty one).
    Raises CheckpointError naming the problem and the setting that fixes it (``overwrite`` in
    Python, ``--overwrite`` on the command line: :meth:`icarena.errors.IcarenaError.cli_message`).
    """
    if overwrite and resume:
        raise CheckpointError("use either {resume} or {overwrite}, not both", fields=_TARGET)
    path = Path(path)
    state = state_of(path)
    if state in ("missing", "empty"):
        if resume and require_existing:
            raise CheckpointError(f"nothing to resume at {path} (no run there); drop {{resume}} "
                                  "to start a new run",
                              fields=_TARGET)
        return "resume" if resume else "create"
    if state == "run":
        if resume:
            return "resume"
        if overwrite:
            return "replace"
        if resumable:
            raise CheckpointError(f"{path} already holds a run; pass {{resume}} to continue it, "
                                  "{overwrite} to replace it, or choose another {out_dir}",
                              fields=_TARGET)
        raise CheckpointError(f"{path} already holds icarena outputs; pass {{overwrite}} to "
                              "replace them, or choose another {out_dir}",
                              fields=_TARGET)
    refusal = " ({overwrite} replaces only an icarena run dir)" if overwrite else ""
    raise CheckpointError(f"{path} is {_what(state)}; refusing to write a run there{refusal}; "
                          "choose another {out_dir}",
                              fields=_TARGET)


@contextlib.contextmanager
def claim_run(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
              require_existing: bool = True, resumable: bool = True,
              ) -> Iterator[Literal["create", "replace", "resume"]]:
    """Lock run dir ``path``, check it (:func:`check_run_target`) and prepare it.

    'create' makes the directory with its marker; 'replace' moves the old run aside first and
    deletes it at the end; 'resume' leaves it as it is. If the stage fails before writing any
    checkpoint or dataset, a created or replacing dir is removed again and a replaced run put
    back, so a failed start leaves the disk as it was. Nested claims of a path this process
    already holds do not re-check it (the outer claim decided), they only report 'resume' or
    'create'.
    Yields the mode. On non-writer ranks it only reports the mode.
    """
    path = Path(path)
    if not is_writer_rank():
        yield "resume" if resume else "create"
        return
    if str(_lock_file(path)) in _held:  # an outer claim of this process owns it
        with locked(path):
            path.mkdir(parents=True, exist_ok=True)
            yield "resume" if resume else "create"
        return
    kw = dict(overwrite=overwrite, resume=resume, require_existing=require_existing,
              resumable=resumable)
    mode = check_run_target(path, **kw)
    with locked(path):
        mode = check_run_target(path, **kw)
        sweep_leftovers(path)
        was_empty_dir = path.is_dir() and mode != "replace"
        old: Path | None = None
        if mode == "replace":
            old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        if mode != "resume" or not path.exists():
            path.mkdir(parents=True, exist_ok=True)
        if not (path / RUN_MARKER).exists():
            mark_run(path)
        try:
            yield mode
        except BaseException:
            if mode != "resume" and not _holds_work(path):  # nothing worth keeping was written
                shutil.rmtree(path, ignore_errors=True)
                if old is not None:
                    os.replace(old, path)
                    old = None
                elif was_empty_dir:
                    path.mkdir()
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


def _holds_work(path: Path) -> bool:
    """Whether a run dir holds a checkpoint or a dataset (anything a resume could use)."""
    return any(path.rglob(CHECKPOINT)) or any(path.rglob(MANIFEST))


def mark_run(path: str | os.PathLike) -> None:
    """Write the run marker that lets --overwrite / --resume recognise ``path`` as a run dir."""
    from icarena.version import __version__

    atomic_write_json(Path(path) / RUN_MARKER, {"icarena": __version__, "kind": "run"})


def eval_out_dir(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None) -> Path:
    """Where an evaluation of ``run_dir`` writes: ``out_dir``, default ``run_dir/eval``."""
    return Path(out_dir) if out_dir else Path(run_dir) / "eval"


# ------------------------------------------------------------------------------ child processes
def die_with_parent(parent_pid: int) -> None:
    """Make this (child) process exit when ``parent_pid`` dies (Linux: PR_SET_PDEATHSIG; else a
    watchdog thread). Used as the initializer of every worker process icarena spawns, so a
    ``kill -9`` of the ``icarena`` process leaves nothing running."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:  # pragma: no cover - non-Linux fallback
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


def init_worker(parent_pid: int, threads: int) -> None:
    """Initializer of the processes :func:`spawn_pool` starts: die with ``parent_pid``, and run
    the compiled game kernels on ``threads`` threads unless ``ICARENA_THREADS`` is set (the
    workers share the cores instead of each taking all of them)."""
    os.environ.setdefault("ICARENA_THREADS", str(threads))
    die_with_parent(parent_pid)


def spawn_pool(workers: int):
    """A ``ProcessPoolExecutor`` of ``workers`` spawned interpreters (no torch / BLAS thread state
    inherited) that die with this process, each given an equal share of the cores for the
    compiled kernels' threads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker,
                               initargs=(os.getpid(), max(1, (cores or 1) // workers)))


# ------------------------------------------------------------------------------ stage wrappers
WHERE_FIELDS = ("out_dir", "overwrite", "resume")


def recorded_config(cfg: Any) -> dict[str, Any]:
    """A stage config as recorded in a manifest: without where it was written and the
    overwrite / resume flags (so the same settings give the same bytes at any path)."""
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in WHERE_FIELDS}


def writes_dataset(generate):
    """Decorate a generator ``generate(cfg)``: lock ``cfg.out_dir`` and refuse a target it may
    not write (``cfg.overwrite``) before any work starts."""
    import functools

    @functools.wraps(generate)
    def wrapper(cfg):
        with claim_dataset(cfg.out_dir, overwrite=cfg.overwrite):
            return generate(cfg)

    return wrapper


def writes_run(stage):
    """Decorate a stage ``stage(cfg)`` that writes the run dir ``cfg.out_dir``: claim it
    (:func:`claim_run` with ``cfg.overwrite`` / ``cfg.resume``) for the whole stage, so a second
    writer is refused at once and a refused target is left untouched."""
    import functools

    @functools.wraps(stage)
    def wrapper(cfg):
        with claim_run(cfg.out_dir, overwrite=getattr(cfg, "overwrite", False),
                       resume=getattr(cfg, "resume", False), resumable=hasattr(cfg, "resume")):
            return stage(cfg)

    return wrapper

"""Reports: markdown tables, bootstrap intervals, line plots and ``metrics.json``/``report.md``.

Every experiment writes its results through these helpers so all run dirs look alike.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from icarena.pretraining.data.store import atomic_write_bytes, atomic_write_json


def fmt(value: Any, digits: int = 4) -> str:
    """Format a table cell: floats to ``digits`` significant digits, others with str()."""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def bootstrap_ci(
    samples: np.ndarray, *, level: float = 0.9, n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over axis 0.

    Args:
        samples: (N, ...) per-sample values.
    Returns:
        (low, high), each of shape samples.shape[1:].
    """
    samples = np.asarray(samples, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, samples.shape[0], size=(n_boot, samples.shape[0]))
    means = samples[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return np.quantile(means, alpha, axis=0), np.quantile(means, 1.0 - alpha, axis=0)


def line_plot(
    path: str | os.PathLike,
    x: Sequence[float] | np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """Save a PNG with one line per curve (and optional shaded bands), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, y in curves.items():
        (line,) = ax.plot(x, y, label=name, marker="o", markersize=2.5)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Lay out a matplotlib figure, write it as PNG atomically, and close it."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def write_metrics(out_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` (numpy values converted to plain JSON; a non-finite number, such as
    the accuracy of an empty degree bucket, becomes ``null``: strict JSON has no NaN).

    The ``train`` section a Trainer run wrote there (tokens/s, ...) is kept unless ``metrics``
    has its own.
    """
    path = Path(out_dir) / "metrics.json"
    metrics = dict(metrics)
    if "train" not in metrics and path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if isinstance(old, dict) and "train" in old:
            metrics["train"] = old["train"]
    atomic_write_json(path, finite_or_null(to_jsonable(metrics)))
    return path


def finite_or_null(obj: Any) -> Any:
    """``obj`` (plain JSON types) with every NaN or infinite float replaced by None."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def summary_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """The ``rows`` (an experiment's summary table, one dict per line) and ``columns`` (their
    order: ``metrics.json`` is written with sorted keys) that ``icarena report`` reads from
    ``metrics.json`` (:mod:`icarena.evaluation.results`)."""
    return {"rows": list(rows), "columns": list(dict.fromkeys(k for r in rows for k in r))}


def write_report(out_dir: str | os.PathLike, title: str, sections: Sequence[str]) -> Path:
    """Write ``report.md``: a title and markdown sections separated by blank lines."""
    path = Path(out_dir) / "report.md"
    text = f"# {title}\n\n" + "\n\n".join(s.strip() for s in sections) + "\n"
    atomic_write_bytes(path, text.encode())
    return path


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and paths inside ``obj`` to plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj

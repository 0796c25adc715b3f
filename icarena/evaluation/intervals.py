"""Confidence intervals over seeds: the Student-t interval of a mean, and a two-level bootstrap.

The experiments repeat a measurement over a few seeds (3 to 5), each with its own data,
initialisation and held-out set, and report the mean with the two-sided Student-t interval
mean ± t_{(1+level)/2, k−1} · s / √k (s the sample standard deviation of the k values), which
is exact for normally distributed values and the standard choice at so few of them.

Where the measurement is a pooled rate over nested units (accuracy over the test pairs of
several graphs, each pair sampled a few times), :func:`two_level_bootstrap` resamples both
sources of variation: the groups (graphs) with replacement, then within each drawn group its
units (pairs) with replacement, each draw of a group independently (the nested or "cluster"
bootstrap; Davison & Hinkley 1997, *Bootstrap Methods and their Application*, Sec. 3.8).
"""

from __future__ import annotations

import math

import numpy as np


def t_interval(values: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval at ``level`` of the mean of ``values`` (k,);
    one value has no width (low = high = mean)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    assert v.ndim == 1 and v.size >= 1, "t_interval needs a non-empty 1-d array of values"
    mean = float(v.mean())
    if v.size < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def two_level_bootstrap(
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_categories: int, n_boot: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Totals of a nested bootstrap: resample groups, then units within each drawn group.

    ``groups``: one ``(category, successes, trials)`` triple per group over its P_g units
    (category int (P_g,) in [0, n_categories); successes and trials (P_g,), or (P_g, m) for m
    measurements of the same units, e.g. two models scored on the same pairs, which are then
    resampled together: a paired bootstrap). A replicate draws len(groups) groups with
    replacement and, for each draw independently, P_g of that group's units with replacement.
    Returns ``(successes, trials)``, each float (n_boot, n_categories) (or (n_boot,
    n_categories, m)): per replicate and category, the summed successes and trials; their ratio
    is the replicate's pooled rate (NaN where a replicate holds no trial of a category).
    """
    assert groups and n_categories >= 1 and n_boot >= 1
    paired = np.ndim(groups[0][1]) == 2
    m = np.shape(groups[0][1])[1] if paired else 1
    rng = np.random.default_rng([seed, 7])
    succ = np.zeros((n_boot, n_categories * m))
    trials = np.zeros((n_boot, n_categories * m))
    eye = np.eye(n_categories)
    per_group = []
    for category, s, t in groups:
        category = np.asarray(category, dtype=np.int64)
        assert category.ndim == 1 and category.size >= 1
        s = np.asarray(s, float).reshape(len(category), m)
        t = np.asarray(t, float).reshape(len(category), m)
        onehot = eye[category]  # (P_g, C)
        per_group.append(((onehot[:, :, None] * s[:, None, :]).reshape(len(category), -1),
                          (onehot[:, :, None] * t[:, None, :]).reshape(len(category), -1)))
    for _ in range(len(groups)):  # one slot of the resampled set of groups
        pick = rng.integers(0, len(groups), size=n_boot)
        for g, (s_g, t_g) in enumerate(per_group):
            rows = np.flatnonzero(pick == g)
            if rows.size:
                units = len(s_g)
                w = rng.multinomial(units, np.full(units, 1.0 / units), size=rows.size)
                succ[rows] += w @ s_g
                trials[rows] += w @ t_g
    shape = (n_boot, n_categories, m) if paired else (n_boot, n_categories)
    return succ.reshape(shape), trials.reshape(shape)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """(low, high): the percentile interval at ``level`` of bootstrap ``samples`` (B,), NaNs
    (replicates where the statistic is undefined) left out; NaN, NaN if all are."""
    v = np.asarray(samples, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)

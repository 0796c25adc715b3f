"""Confidence intervals over seeds: the Student-t interval of a mean.

The experiments repeat a measurement over a few seeds (3 to 5), each with its own data,
initialisation and held-out set, and report the mean with the two-sided Student-t interval
mean ± t_{(1+level)/2, k−1} · s / √k (s the sample standard deviation of the k values), which
is exact for normally distributed values and the standard choice at so few of them.
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

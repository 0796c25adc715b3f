import numpy as np
import pytest

from icarena.evaluation.intervals import percentile_interval, two_level_bootstrap


def naive_two_level(groups, n_categories, n_boot, rng):
    """The nested bootstrap written as plain loops: draw groups, then units, sum per category."""
    succ = np.zeros((n_boot, n_categories))
    trials = np.zeros((n_boot, n_categories))
    for b in range(n_boot):
        for _ in range(len(groups)):
            cat, s, t = groups[rng.integers(len(groups))]
            for u in rng.integers(0, len(cat), size=len(cat)):
                succ[b, cat[u]] += s[u]
                trials[b, cat[u]] += t[u]
    return succ, trials


def make_groups(seed):
    rng = np.random.default_rng(seed)
    groups = []
    for g in range(4):
        units = 30 + 10 * g
        cat = rng.integers(0, 3, size=units)
        t = rng.integers(1, 6, size=units)
        p = np.array([0.9, 0.7, 0.4])[cat] - 0.05 * g  # groups differ: graph-level variation
        groups.append((cat, rng.binomial(t, p), t))
    return groups


def test_two_level_bootstrap_matches_plain_loops_in_distribution():
    groups = make_groups(0)
    s, t = two_level_bootstrap(groups, 3, 4000, seed=1)
    s2, t2 = naive_two_level(groups, 3, 4000, np.random.default_rng(2))
    r, r2 = s / t, s2 / t2
    for c in range(3):
        assert np.mean(r[:, c]) == pytest.approx(np.mean(r2[:, c]), abs=0.005)
        assert np.std(r[:, c]) == pytest.approx(np.std(r2[:, c]), rel=0.08)
        lo, hi = percentile_interval(r[:, c])
        lo2, hi2 = percentile_interval(r2[:, c])
        assert lo == pytest.approx(lo2, abs=0.012) and hi == pytest.approx(hi2, abs=0.012)


def test_two_level_bootstrap_is_wider_than_resampling_units_only():
    # resampling groups adds the between-group spread that a pooled unit bootstrap misses
    groups = make_groups(3)
    s, t = two_level_bootstrap(groups, 3, 3000, seed=0)
    pooled = tuple(np.concatenate(parts) for parts in zip(*groups, strict=True))
    s1, t1 = two_level_bootstrap([pooled], 3, 3000, seed=0)
    assert np.std(s[:, 0] / t[:, 0]) > 1.2 * np.std(s1[:, 0] / t1[:, 0])


def test_two_level_bootstrap_deterministic_and_degenerate_cases():
    groups = make_groups(1)
    a = two_level_bootstrap(groups, 3, 50, seed=5)
    b = two_level_bootstrap(groups, 3, 50, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # every unit alike: every replicate has the same rate, the interval has no width
    same = [(np.zeros(5, int), np.full(5, 3), np.full(5, 4))] * 3
    s, t = two_level_bootstrap(same, 2, 200, seed=0)
    assert np.allclose(s[:, 0] / t[:, 0], 0.75)
    assert np.all(t[:, 1] == 0)  # category 1 is empty in every replicate
    assert np.isnan(percentile_interval(s[:, 1] / np.where(t[:, 1] > 0, t[:, 1], np.nan))[0])
    # trials are conserved on average: E[total trials] = total trials of the data
    s, t = two_level_bootstrap(groups, 3, 4000, seed=2)
    total = sum(np.bincount(c, weights=tr, minlength=3) for c, _, tr in groups)
    assert np.allclose(t.mean(axis=0), total, rtol=0.03)


def test_paired_columns_resample_the_same_units_together():
    groups = make_groups(4)
    # column 0: the data; column 1: the same units with one more success wherever possible
    paired = [(c, np.stack([s, np.minimum(s + 1, t)], 1), np.stack([t, t], 1))
              for c, s, t in groups]
    s2, t2 = two_level_bootstrap(paired, 3, 500, seed=3)
    assert s2.shape == t2.shape == (500, 3, 2)
    # the first column is exactly the unpaired bootstrap (same draws)
    s1, t1 = two_level_bootstrap(groups, 3, 500, seed=3)
    assert np.array_equal(s2[..., 0], s1) and np.array_equal(t2[..., 0], t1)
    # paired: in every replicate the second column's rate is at least the first's
    assert (s2[..., 1] / t2[..., 1] >= s2[..., 0] / t2[..., 0] - 1e-12).all()

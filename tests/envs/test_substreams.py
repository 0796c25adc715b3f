"""SubEnvStreams: buffered per-sub-env draws equal unbuffered calls on SyncVectorEnv's seeds."""

import numpy as np
from gymnasium.utils import seeding

from icarena.envs.substreams import SubEnvStreams


def test_buffered_draws_equal_unbuffered_calls_and_sync_rewinds():
    st = SubEnvStreams(3, "random", block=5)
    st.seed(10)
    ref = [seeding.np_random(10 + i)[0] for i in range(3)]
    rows = np.array([0, 2])
    for count in (2, 3, 4, 1, 5):  # crosses refills
        got = st.take(rows, count)
        np.testing.assert_array_equal(got, np.stack([ref[i].random(count) for i in rows]))
    st.sync([0, 1, 2])  # now other kinds of draws may follow, in the unbuffered order
    for i in range(3):
        assert st.gens[i].integers(1000) == ref[i].integers(1000)
    np.testing.assert_array_equal(st.take(np.array([1]), 2)[0], ref[1].random(2))


def test_bounded_integers_and_seed_lists():
    st = SubEnvStreams(2, "integers", block=7, low=0, high=73)
    st.seed([4, 9])
    ref = [seeding.np_random(4)[0], seeding.np_random(9)[0]]
    got = [st.take(np.array([0, 1]), 1)[:, 0].tolist() for _ in range(5)]
    assert got == [[int(r.integers(73)) for r in ref] for _ in range(5)]
    # None keeps a sub-env's running generator (and its buffer), as Env.reset(seed=None) does
    st.seed([None, 20])
    ref[1] = seeding.np_random(20)[0]
    got = [st.take(np.array([0, 1]), 1)[:, 0].tolist() for _ in range(20)]
    assert got == [[int(r.integers(73)) for r in ref] for _ in range(20)]

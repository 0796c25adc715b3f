"""Per-sub-env random streams for the native vector envs, with buffered draws.

Gymnasium's ``SyncVectorEnv`` gives sub-env i its own generator, seeded with ``seed + i``
(``reset(seed=s)``), and keeps it across autoresets. A native vector env that must reproduce
those sub-envs draw by draw needs the same N generators; :class:`SubEnvStreams` holds them.

Calling N generators one by one at every step would cost a Python loop per step, so the streams
draw ahead: the draws of one kind (``method`` with fixed keyword arguments, e.g. ``"random"`` or
``("integers", high=P)``) come from a per-sub-env buffer of ``block`` values, read with
:meth:`take` for many sub-envs at once. numpy draws these kinds value after value from the bit
generator, so ``g.random(5)`` followed by ``g.random(7)`` equals ``g.random(12)``: a buffered
value is exactly the one an unbuffered call would have returned. Before a sub-env draws anything
else from its generator (a different kind, or a call with other arguments), :meth:`sync` puts
that generator where it would be without the buffer (restore the snapshot taken before the
buffer was filled, redraw the values consumed so far).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from icarena.errors import check


class SubEnvStreams:
    """``num_envs`` generators (sub-env i seeded like ``SyncVectorEnv``) and one buffered kind.

    Args:
        num_envs: number of sub-envs N.
        method: the generator method of the buffered kind (``"random"``, ``"standard_normal"``,
            ``"integers"``), or None for no buffer (then only :attr:`gens` is used).
        block: values drawn per refill of one sub-env's buffer.
        kwargs: fixed keyword arguments of ``method`` (e.g. ``high=P`` for ``"integers"``).
    """

    def __init__(self, num_envs: int, method: str | None = None, block: int = 256,
                 **kwargs: Any):
        check(isinstance(num_envs, int) and num_envs >= 1,
              f"num_envs must be an int >= 1, got {num_envs!r}")
        check(block >= 1, f"block must be >= 1, got {block}")
        self.num_envs, self.method, self.block, self.kwargs = num_envs, method, block, kwargs
        self.gens = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._buf: np.ndarray | None = None
        self._pos = np.full(num_envs, block, dtype=np.int64)  # block = nothing buffered
        self._snap: list[dict | None] = [None] * num_envs

    def seed(self, seed: int | Sequence[int | None] | None) -> None:
        """Reseed as ``SyncVectorEnv.reset(seed=...)`` does: sub-env i gets ``seed + i`` (an int)
        or ``seed[i]`` (a list); None (for all, or for one sub-env in a list) keeps the running
        generator."""
        if seed is None:
            return
        if isinstance(seed, int | np.integer):
            seeds: list[int | None] = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            check(len(seeds) == self.num_envs,
                  f"a list of seeds must have num_envs = {self.num_envs} entries, got {len(seeds)}")
        for i, s in enumerate(seeds):
            if s is not None:
                self.gens[i] = seeding.np_random(s)[0]
                self._snap[i], self._pos[i] = None, self.block

    def _refill(self, i: int) -> None:
        self.sync([i])
        self._snap[i] = self.gens[i].bit_generator.state
        row = getattr(self.gens[i], self.method)(size=self.block, **self.kwargs)
        if self._buf is None:
            self._buf = np.empty((self.num_envs, self.block), dtype=row.dtype)
        self._buf[i] = row
        self._pos[i] = 0

    def take(self, rows: np.ndarray, count: int) -> np.ndarray:
        """The next ``count`` buffered values of each sub-env in ``rows``: (len(rows), count)."""
        # internal invariants: the vector envs ask only for counts they sized the buffer for
        assert self.method is not None, "these streams have no buffered kind"
        assert 1 <= count <= self.block, f"count must be in [1, block={self.block}], got {count}"
        rows = np.asarray(rows, dtype=np.int64)
        for i in rows[self._pos[rows] + count > self.block]:
            self._refill(int(i))
        flat = (rows * self.block + self._pos[rows])[:, None] + np.arange(count)
        self._pos[rows] += count
        return self._buf.reshape(-1)[flat]

    def sync(self, rows: Sequence[int] | np.ndarray) -> None:
        """Drop the buffers of ``rows``, leaving their generators as if nothing were buffered."""
        for i in rows:
            i = int(i)
            snap = self._snap[i]
            if snap is None:
                continue
            if self._pos[i] < self.block:  # else the buffer is used up: nothing to rewind
                self.gens[i].bit_generator.state = snap
                if self._pos[i]:
                    getattr(self.gens[i], self.method)(size=int(self._pos[i]), **self.kwargs)
            self._snap[i] = None
            self._pos[i] = self.block


def vector_setup(vec: Any, env_cls: type, num_envs: int, kwargs: dict[str, Any]) -> Any:
    """The set-up every native vector env shares: check ``num_envs``, build one single env from
    ``kwargs`` (it validates them), declare the single and batched spaces on ``vec``; returns the
    single env."""
    import gymnasium as gym

    check(isinstance(num_envs, int) and num_envs >= 1,
          f"num_envs must be an int >= 1, got {num_envs!r}")
    check(kwargs.get("render_mode") is None, "the vector env does not render")
    env = env_cls(**kwargs)
    vec.num_envs = num_envs
    vec.single_observation_space = env.observation_space
    vec.single_action_space = env.action_space
    vec.observation_space = gym.vector.utils.batch_space(env.observation_space, num_envs)
    vec.action_space = gym.vector.utils.batch_space(env.action_space, num_envs)
    vec.render_mode = None
    return env

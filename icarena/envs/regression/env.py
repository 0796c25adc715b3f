"""``icarena/Regression-v0``: online in-context regression as a Gymnasium env.

One episode = one function f drawn from a family (:mod:`icarena.envs.regression.families`) and k
inputs x_0..x_{k-1}. At step t the agent sees x_t (and the label of the previous point), outputs
a prediction ŷ_t, and receives reward −(ŷ_t − y_t)²; y_t is then revealed in ``info["y"]`` and in
the next observation's ``prev_y``. After k predictions the episode terminates.

Observation (``Dict``)::

    x       (d,) float32   the input to predict at this step (zeros after the last step)
    prev_y  (1,) float32   the label of the previous input (0 at t = 0)

Action: ``Box(shape=(1,))`` float32, the prediction ŷ_t (any finite number).

``info``: ``t`` (the step the observation belongs to), and after a step ``y`` (the true noisy
label), ``f`` (the noiseless value) and ``squared_error``. The reward uses the noisy label, as
the in-context learner sees it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icarena import limits
from icarena.envs.checks import strict_kwargs
from icarena.envs.regression.families import (
    draw,
    make_family,
    prompt_draws,
    prompts_from_draws,
    sample_prompts,
)
from icarena.errors import ConfigError, check


class RegressionEnv(gym.Env):
    """In-context regression episodes; see the module docstring.

    Args:
        family: function family name (``linear``, ``sparse_linear``, ``relu_2nn``,
            ``decision_tree``, ``holder``, ``manifold``).
        d: input dimension.
        k: points (= steps) per episode.
        family_kwargs: extra family options (``noise_std``, ``sparsity``, ``alpha``, ...).
        render_mode: ``None`` or ``"ansi"`` (a one-line text summary of the last step).
    """

    metadata = {"render_modes": ["ansi"]}

    @strict_kwargs
    def __init__(
        self,
        family: str = "linear",
        d: int = 5,
        k: int = 11,
        family_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        check(isinstance(k, int | np.integer) and k >= 1, f"k must be an integer >= 1, got {k!r}")
        check(render_mode in (None, "ansi"),
              f"render_mode must be None or 'ansi', got {render_mode!r}")
        check(isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1,
              f"d must be an integer >= 1, got {d!r}")
        # one prompt: x (k, d), y and f (k,), float64, plus the family's own parameters (d x d)
        limits.require(8 * int(k) * (int(d) + 2) + 8 * int(d) ** 2,
                       f"Regression prompts of k={k} points in d={d}", "d or k")
        check(family_kwargs is None or isinstance(family_kwargs, dict),
              f"family_kwargs must be a dict of family options, got {family_kwargs!r}")
        self.family = make_family(family, d, **dict(family_kwargs or {}))
        self.k = int(k)
        self.render_mode = render_mode
        box = spaces.Box(-np.inf, np.inf, shape=(self.family.d,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {"x": box, "prev_y": spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)}
        )
        self.action_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self._x: np.ndarray | None = None
        self._y = self._f = None
        self._t = 0
        self._last: tuple[float, float] | None = None

    def _obs(self) -> dict[str, np.ndarray]:
        assert self._x is not None and self._y is not None
        x = self._x[self._t] if self._t < self.k else np.zeros(self.family.d)
        prev = self._y[self._t - 1] if self._t > 0 else 0.0
        return {"x": x.astype(np.float32), "prev_y": np.array([prev], dtype=np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        prompts = sample_prompts(self.family, self.np_random, 1, self.k)
        self._x, self._y, self._f = prompts.x[0], prompts.y[0], prompts.f[0]
        self.params = {name: v[0] for name, v in prompts.params.items()}
        self._t = 0
        self._last = None
        return self._obs(), {"t": 0}

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._x is None:
            raise ConfigError("call reset() before step()")
        if self._t >= self.k:
            raise ConfigError("the episode has terminated; call reset() to start a new one")
        try:
            a = np.asarray(action)
            ok = a.dtype.kind in "iuf" and a.size == 1
            a = a.astype(np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok or a.shape != (1,) or not np.isfinite(a[0]):
            raise ConfigError(
                f"action must be one finite prediction (shape (1,) or a scalar), got {action!r}"
            )
        assert self._y is not None and self._f is not None
        y, f = float(self._y[self._t]), float(self._f[self._t])
        diff = float(a[0]) - y
        err = diff * diff  # correctly rounded, as numpy's square (float ** 2 goes through pow)
        if not np.isfinite(err):
            raise ConfigError(f"prediction {float(a[0])!r} is so far from the target that its "
                              "squared error overflows float64; predict a value of the data's "
                              "scale")
        self._last = (float(a[0]), y)
        self._t += 1
        info = {"t": self._t, "y": y, "f": f, "squared_error": err}
        return self._obs(), -err, self._t >= self.k, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return f"t={self._t}/{self.k} family={self.family.name}"
        pred, y = self._last
        return f"t={self._t}/{self.k} prediction={pred:.4g} y={y:.4g} sq_err={(pred - y) ** 2:.4g}"


class RegressionVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of :class:`RegressionEnv`, stepped in numpy.

    Same keyword arguments as :class:`RegressionEnv`. Sub-env i is the single env reset with
    seed ``seed + i`` (Gymnasium's ``SyncVectorEnv`` convention), draw for draw and across
    autoresets: prompt draws come from each sub-env's own generator, buffered when every draw of
    a prompt is of one kind (linear, relu_2nn and manifold families, up to 4,096 draws a prompt),
    one call per draw otherwise, and the functions are evaluated for all resetting sub-envs at
    once. Autoreset mode NEXT_STEP: the step after a sub-env's k-th prediction resets it (its
    action is ignored) and returns its first observation with reward 0. ``info`` holds arrays
    ``t`` and, for the sub-envs that stepped, ``y``, ``f`` and ``squared_error`` (with
    Gymnasium's ``_key`` masks).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        from icarena.envs.substreams import SubEnvStreams, vector_setup

        env = vector_setup(self, RegressionEnv, num_envs, kwargs)
        self.family, self.k = env.family, env.k
        self._plan = prompt_draws(self.family, self.k)
        kinds = {(method, tuple(sorted(kw.items()))) for method, _, kw in self._plan}
        method, kw = next(iter(kinds))
        self._per = sum(int(np.prod(shape)) for _, shape, _ in self._plan)
        # buffer ahead when one prompt is a few thousand draws of one kind (memory N x block)
        if (len(kinds) == 1 and not kw and method in ("standard_normal", "random")
                and self._per <= 4096):
            self._streams = SubEnvStreams(num_envs, method,  # whole prompts, ~8k values
                                          block=self._per * max(1, 8192 // self._per))
        else:
            self._streams = SubEnvStreams(num_envs)
        d, k = self.family.d, self.k
        self._rows = np.arange(num_envs)
        self.x = np.zeros((num_envs, k, d))
        self.y = np.zeros((num_envs, k))
        self.f = np.zeros((num_envs, k))
        self.t = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._ready = False

    def _reset_rows(self, rows: np.ndarray) -> None:
        st = self._streams
        if st.method is not None:
            flat, draws, o = st.take(rows, self._per), [], 0
            for _, shape, _ in self._plan:
                size = int(np.prod(shape))
                draws.append(flat[:, o:o + size].reshape(len(rows), *shape))
                o += size
        else:
            per_row = [draw(st.gens[i], self._plan, 1) for i in rows]
            draws = [np.concatenate(parts) for parts in zip(*per_row, strict=True)]
        prompts = prompts_from_draws(self.family, draws, self.k)
        self.x[rows], self.y[rows], self.f[rows] = prompts.x, prompts.y, prompts.f
        self.t[rows] = 0

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        check("reset_mask" not in (options or {}), "reset_mask is not supported: every reset "
              "resets all sub-envs (autoreset resets finished ones on the next step)")
        self._streams.seed(seed)
        self._reset_rows(self._rows)
        self._autoreset[:] = False
        self._ready = True
        return self._obs(), {"t": self.t.copy(), "_t": np.ones(self.num_envs, dtype=bool)}

    def step(self, actions: Any):
        if not self._ready:
            raise ConfigError("call reset() before step()")
        live = ~self._autoreset
        a = np.asarray(actions, dtype=np.float64)
        check(a.size == self.num_envs, f"actions must have shape ({self.num_envs}, 1), one "
              f"prediction per sub-env, got shape {a.shape}")
        a = a.reshape(self.num_envs)
        check(bool(np.isfinite(a[live]).all()), "every prediction must be a finite number")
        rows, t = self._rows, np.minimum(self.t, self.k - 1)
        y, f = self.y[rows, t], self.f[rows, t]
        err = (a - y) ** 2
        self.t += live
        terminated = self.t >= self.k
        reward = -err
        reset = np.flatnonzero(self._autoreset)
        if len(reset):
            self._reset_rows(reset)
            reward[reset], terminated[reset] = 0.0, False
        self._autoreset = terminated
        every = np.ones(self.num_envs, dtype=bool)
        info = {"t": self.t.copy(), "_t": every, "y": y, "_y": live, "f": f, "_f": live,
                "squared_error": err, "_squared_error": live}
        return self._obs(), reward, terminated, np.zeros(self.num_envs, dtype=bool), info

    def _obs(self) -> dict[str, np.ndarray]:
        rows, t = self._rows, self.t
        x = self.x[rows, np.minimum(t, self.k - 1)].astype(np.float32)
        x[t >= self.k] = 0.0
        prev = np.where(t > 0, self.y[rows, np.maximum(t - 1, 0)], 0.0)
        return {"x": x, "prev_y": prev.astype(np.float32)[:, None]}

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

from icarena.envs.regression.families import make_family, sample_prompts
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
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (1,) or not np.isfinite(a[0]):
            raise ConfigError(
                f"action must be one finite prediction (shape (1,) or a scalar), got {action!r}"
            )
        assert self._y is not None and self._f is not None
        y, f = float(self._y[self._t]), float(self._f[self._t])
        err = (float(a[0]) - y) ** 2
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

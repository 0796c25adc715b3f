"""Function families for in-context regression, sampled in batches.

A *family* is a distribution over functions f: R^d -> R plus an input distribution. Sampling a
prompt draws one function and k inputs; every function here is drawn independently per prompt,
and everything is vectorised over a batch of P prompts (one function per prompt).

Families (Garg et al. 2022, arXiv 2208.01066, plus the Hölder and
manifold settings of Shi & Liao 2026, arXiv 2605.08811):

=================  ==========================================================  ============
name               function f                                                  normaliser
=================  ==========================================================  ============
``linear``         f(x) = wᵀx,  w ~ N(0, I_d),  x ~ N(0, I_d)                  d
``sparse_linear``  as linear, all but ``sparsity`` = s random coords of w       s
                   set to 0
``relu_2nn``       f(x) = √(2/h) · relu(xᵀW1) W2,  W1 ∈ R^{d×h}, W2 ∈ R^h       d
                   iid N(0, 1),  h = ``hidden`` (100)
``decision_tree``  full binary tree of depth ``depth`` (4); internal node i     1
                   tests x_{j_i} > 0 (j_i ~ U{0..d-1}) and goes to child
                   2i+1+[x_{j_i} > 0]; leaves ~ N(0, 1)
``holder``         f(x) = Σ_{m<M} a_m ‖x − c_m‖^α,  a_m ~ N(0, 1/M),           1
                   c_m ~ U[0,1]^d,  x ~ U[0,1]^d,  M = ``n_bumps``; α-Hölder
                   with constant ≤ Σ|a_m| (‖·‖^α is α-Hölder for α ∈ (0, 1])
``manifold``       inputs uniform on the sphere S^m (m = ``intrinsic_dim``;     1
                   m = 1 is a circle) embedded in R^d by a random isometry
                   Q ∈ R^{d×(m+1)} (orthonormal columns, one per prompt);
                   f(x) = Σ_m a_m ‖x − c_m‖^α with centres c_m = Q u_m on
                   the manifold
=================  ==========================================================  ============

The normaliser is what the squared error is divided by when curves are reported (Garg et al.'s
convention: predicting 0 scores ≈ 1 on linear, sparse and ReLU families); for ``holder`` and
``manifold`` it is 1, i.e. raw squared error. Every family adds N(0, ``noise_std``²) label noise
(``noise_std`` defaults to 0 except for ``holder``, whose default 0.25 is the noise level of the
regression-rate experiment); :func:`sample_prompts` returns both the noisy labels and the clean
values f(x).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from icarena.errors import ConfigError, check

Draw = tuple[str, tuple[int, ...], dict[str, Any]]
"""One generator call: (method, shape per prompt, keyword arguments)."""

FAMILY_NAMES = ("linear", "sparse_linear", "relu_2nn", "decision_tree", "holder", "manifold")


@dataclass(frozen=True)
class Family:
    """A validated function family (see the module docstring for each ``name``).

    Build with :func:`make_family`, which checks every field.
    """

    name: str
    d: int
    noise_std: float = 0.0
    sparsity: int = 3
    hidden: int = 100
    depth: int = 4
    alpha: float = 1.0
    n_bumps: int = 4
    intrinsic_dim: int = 1

    @property
    def normaliser(self) -> float:
        """Divide squared errors by this to report normalised error (module docstring)."""
        if self.name in ("linear", "relu_2nn"):
            return float(self.d)
        if self.name == "sparse_linear":
            return float(self.sparsity)
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- sampling ------------------------------------------------------------------------------
    # Every draw is described once as (generator method, shape per prompt, keyword arguments):
    # sampling calls the generator with a leading batch axis n, so one prompt's draws can also
    # come from a generator of its own (the vector env draws prompt i from sub-env i's stream).

    def function_draws(self, active_dims: int | None = None) -> list[Draw]:
        """The generator calls of one function, in order (see :meth:`sample_functions`)."""
        d = self.d
        if self.name in ("linear", "sparse_linear"):
            plan: list[Draw] = [("standard_normal", (d,), {})]
            if self.name == "sparse_linear":
                plan.append(("random", (d if active_dims is None else active_dims,), {}))
            return plan
        if self.name == "relu_2nn":
            return [("standard_normal", (d, self.hidden), {}),
                    ("standard_normal", (self.hidden,), {})]
        if self.name == "decision_tree":
            return [("integers", (2**self.depth - 1,), {"low": 0, "high": d}),
                    ("standard_normal", (2**self.depth,), {})]
        plan = [("standard_normal", (self.n_bumps,), {})]
        if self.name == "holder":
            return [*plan, ("random", (self.n_bumps, d), {})]
        m1 = self.intrinsic_dim + 1
        return [*plan, ("standard_normal", (d, m1), {}),
                ("standard_normal", (self.n_bumps, m1), {})]

    def input_draws(self, k: int) -> list[Draw]:
        """The generator calls of the k inputs of one prompt (see :meth:`sample_inputs`)."""
        if self.name == "holder":
            return [("random", (k, self.d), {})]
        if self.name == "manifold":
            return [("standard_normal", (k, self.intrinsic_dim + 1), {})]
        return [("standard_normal", (k, self.d), {})]

    def functions_from_draws(
        self, draws: list[np.ndarray], active_dims: int | None = None
    ) -> dict[str, np.ndarray]:
        """Function parameters (leading axis n) from the arrays of :meth:`function_draws`."""
        if self.name in ("linear", "sparse_linear"):
            w = draws[0]
            if self.name == "sparse_linear":
                # keep `sparsity` coordinates chosen uniformly without replacement per function
                # (among the first `active_dims` ones during a curriculum)
                n, live = draws[1].shape
                order = np.argsort(draws[1], axis=1)
                keep = order[:, : min(self.sparsity, live)]
                mask = np.zeros((n, self.d), dtype=bool)
                np.put_along_axis(mask, keep, True, axis=1)
                w = np.where(mask, w, 0.0)
            return {"w": w}
        if self.name == "relu_2nn":
            return {"W1": draws[0], "W2": draws[1]}
        if self.name == "decision_tree":
            return {"features": draws[0], "leaves": draws[1]}
        a = draws[0] / np.sqrt(self.n_bumps)
        if self.name == "holder":
            return {"a": a, "centres": draws[1]}
        # manifold
        q, r = np.linalg.qr(draws[1])
        q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # Haar-distributed frame
        u = _normalise(draws[2])
        return {"a": a, "frame": q, "centres": np.einsum("ndm,nbm->nbd", q, u)}

    def inputs_from_draws(
        self, params: dict[str, np.ndarray], draws: list[np.ndarray]
    ) -> np.ndarray:
        """Inputs (n, k, d) from the arrays of :meth:`input_draws`."""
        if self.name == "manifold":
            return np.einsum("ndm,nkm->nkd", params["frame"], _normalise(draws[0]))
        return draws[0]

    def sample_functions(
        self, rng: np.random.Generator, n: int, active_dims: int | None = None
    ) -> dict[str, np.ndarray]:
        """Parameters of ``n`` independent functions (arrays with leading axis n, float64).

        ``active_dims`` (curriculum, :func:`sample_prompts`): sparse_linear draws its support
        among the first ``active_dims`` coordinates only (Garg et al.); other families ignore it.
        """
        draws = draw(rng, self.function_draws(active_dims), n)
        return self.functions_from_draws(draws, active_dims)

    def sample_inputs(
        self, rng: np.random.Generator, params: dict[str, np.ndarray], k: int
    ) -> np.ndarray:
        """Inputs (n, k, d) for the n functions in ``params``."""
        return self.inputs_from_draws(params, draw(rng, self.input_draws(k), _batch_size(params)))

    def evaluate(self, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Noiseless values f(x): x (n, k, d) -> (n, k), function i applied to x[i]."""
        x = np.asarray(x, dtype=np.float64)
        check(
            x.ndim == 3 and x.shape[0] == _batch_size(params) and x.shape[2] == self.d,
            f"x must have shape (n={_batch_size(params)}, k, d={self.d}), got {x.shape}",
        )
        if self.name in ("linear", "sparse_linear"):
            return np.einsum("nkd,nd->nk", x, params["w"])
        if self.name == "relu_2nn":
            h = np.maximum(np.einsum("nkd,ndh->nkh", x, params["W1"]), 0.0)
            return np.sqrt(2.0 / self.hidden) * np.einsum("nkh,nh->nk", h, params["W2"])
        if self.name == "decision_tree":
            node = np.zeros(x.shape[:2], dtype=np.int64)
            for _ in range(self.depth):
                feat = np.take_along_axis(params["features"], node, axis=1)  # (n, k)
                go_right = np.take_along_axis(x, feat[..., None], axis=2)[..., 0] > 0
                node = 2 * node + 1 + go_right
            leaf = node - (2**self.depth - 1)
            return np.take_along_axis(params["leaves"], leaf, axis=1)
        dist = np.linalg.norm(x[:, :, None, :] - params["centres"][:, None, :, :], axis=-1)
        return np.einsum("nkm,nm->nk", dist**self.alpha, params["a"])


@dataclass
class Prompts:
    """A batch of P prompts of k points: inputs, noisy labels, clean values, functions."""

    x: np.ndarray
    """(P, k, d) inputs."""
    y: np.ndarray
    """(P, k) labels f(x) + noise."""
    f: np.ndarray
    """(P, k) noiseless values f(x)."""
    params: dict[str, np.ndarray]
    """The sampled functions (leading axis P)."""


def make_family(name: str, d: int, **options: Any) -> Family:
    """Build and validate family ``name`` in dimension ``d``.

    Options: ``noise_std`` (all), ``sparsity`` (sparse_linear), ``hidden`` (relu_2nn), ``depth``
    (decision_tree), ``alpha`` and ``n_bumps`` (holder, manifold), ``intrinsic_dim`` (manifold).
    """
    check(
        name in FAMILY_NAMES,
        f"unknown function family {name!r}; choose one of {', '.join(FAMILY_NAMES)}",
    )
    check(isinstance(d, int | np.integer) and d >= 1, f"d must be an integer >= 1, got {d!r}")
    allowed = {"noise_std", "sparsity", "hidden", "depth", "alpha", "n_bumps", "intrinsic_dim"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for family {name!r}; valid: {sorted(allowed)}"
        )
    if name == "holder" and "noise_std" not in options:
        options["noise_std"] = 0.25
    fam = Family(name=name, d=int(d), **options)
    check(fam.noise_std >= 0 and np.isfinite(fam.noise_std),
          f"noise_std must be a finite number >= 0, got {fam.noise_std}")
    if name == "sparse_linear":
        check(1 <= fam.sparsity <= fam.d,
              f"sparsity must be in [1, d={fam.d}], got {fam.sparsity}")
    if name == "relu_2nn":
        check(fam.hidden >= 1, f"hidden must be >= 1, got {fam.hidden}")
    if name == "decision_tree":
        check(1 <= fam.depth <= 16, f"depth must be in [1, 16], got {fam.depth}")
    if name in ("holder", "manifold"):
        check(0.0 < fam.alpha <= 1.0,
              f"alpha must be in (0, 1] (Hölder exponent), got {fam.alpha}")
        check(fam.n_bumps >= 1, f"n_bumps must be >= 1, got {fam.n_bumps}")
    if name == "manifold":
        check(
            1 <= fam.intrinsic_dim <= fam.d - 1,
            f"manifold family needs 1 <= intrinsic_dim <= d - 1 (sphere S^m in R^d); got "
            f"intrinsic_dim={fam.intrinsic_dim}, d={fam.d}: raise d or lower intrinsic_dim",
        )
    return fam


CURRICULUM_FAMILIES = ("linear", "sparse_linear", "relu_2nn", "decision_tree")
"""Families with N(0, I_d) inputs, on which a dimension curriculum is defined."""


def sample_prompts(
    family: Family, rng: np.random.Generator, n: int, k: int, active_dims: int | None = None
) -> Prompts:
    """Draw ``n`` prompts of ``k`` points: one function per prompt, then its inputs and labels.

    Draw order (fixed, so a seed gives the same bytes): functions, inputs, noise.

    ``active_dims`` (Garg et al.'s dimension curriculum; families with Gaussian inputs only):
    input coordinates >= ``active_dims`` are set to 0 and sparse_linear's support lies in the
    first ``active_dims`` coordinates; ``None`` (or ``d``) draws the full-dimensional task.
    """
    check(isinstance(n, int | np.integer) and n >= 1, f"n (prompts) must be >= 1, got {n!r}")
    check(isinstance(k, int | np.integer) and k >= 1, f"k (points per prompt) must be >= 1, "
          f"got {k!r}")
    if active_dims is not None:
        check(family.name in CURRICULUM_FAMILIES,
              f"a dimension curriculum is defined for {', '.join(CURRICULUM_FAMILIES)} only, "
              f"not {family.name!r}; turn the curriculum off for this family")
        check(1 <= active_dims <= family.d,
              f"active_dims must be in [1, d={family.d}], got {active_dims}")
    return prompts_from_draws(family, draw(rng, prompt_draws(family, k, active_dims), int(n)),
                              k, active_dims)


def prompt_draws(family: Family, k: int, active_dims: int | None = None) -> list[Draw]:
    """Every generator call of one prompt of :func:`sample_prompts`, in order."""
    plan = family.function_draws(active_dims) + family.input_draws(k)
    if family.noise_std > 0:
        plan.append(("standard_normal", (k,), {}))
    return plan


def prompts_from_draws(
    family: Family, draws: list[np.ndarray], k: int, active_dims: int | None = None
) -> Prompts:
    """The prompts of :func:`sample_prompts` from the arrays of :func:`prompt_draws`."""
    n_fun = len(family.function_draws(active_dims))
    params = family.functions_from_draws(draws[:n_fun], active_dims)
    x = family.inputs_from_draws(params, draws[n_fun:n_fun + 1])
    if active_dims is not None and active_dims < family.d:
        x[:, :, active_dims:] = 0.0
    f = family.evaluate(params, x)
    y = f + family.noise_std * draws[n_fun + 1] if family.noise_std > 0 else f.copy()
    return Prompts(x=x, y=y, f=f, params=params)


def draw(rng: np.random.Generator, plan: list[Draw], n: int) -> list[np.ndarray]:
    """Make the generator calls of ``plan`` with a leading batch axis n."""
    return [getattr(rng, method)(size=(n, *shape), **kwargs) for method, shape, kwargs in plan]


def holder_target(x: np.ndarray, alpha: float, centre: float = 0.5) -> np.ndarray:
    """The fixed Hölder target of the rate experiment: f_α(x) = Σ_i |x_i − centre|^α.

    x: (..., d) -> (...). α-Hölder (α ∈ (0, 1]) with constant d^{1-α/2}.
    """
    check(0.0 < alpha <= 1.0, f"alpha must be in (0, 1], got {alpha}")
    return (np.abs(np.asarray(x, dtype=np.float64) - centre) ** alpha).sum(axis=-1)


def cusp_variance(d: int, alpha: float) -> float:
    """Var f_α(x) of :func:`holder_target` (centre ½) for x ~ U[0,1]^d, in closed form.

    With t = x_i − ½ ~ U[−½, ½]: E|t|^α = 2^{-α}/(α+1) and E|t|^{2α} = 4^{-α}/(2α+1); the d
    coordinates are independent, so Var f_α = d · 4^{-α} (1/(2α+1) − 1/(α+1)²).
    """
    return d * 4.0**-alpha * (1.0 / (2 * alpha + 1) - 1.0 / (alpha + 1) ** 2)


LACUNARY_LEVELS = 24
"""J of :func:`lacunary_target`: the finest wavelength 2^{-24} is far below the spacing n^{-1/d}
of any sample the rate experiment draws (n ≤ 2^20), and the omitted tail carries a fraction
4^{-25α} ≤ 2^{-25} of the variance, so the truncation is invisible to it."""

LACUNARY_SEED = 20_260_521
"""The constant seed of the phases of :func:`lacunary_target` (the target is one fixed function)."""


def lacunary_phases(d: int, levels: int = LACUNARY_LEVELS) -> np.ndarray:
    """The phases θ_{j,i} of :func:`lacunary_target`: (levels + 1, d), uniform on [0, 2π), drawn
    from the constant :data:`LACUNARY_SEED` (and d), the same for every α."""
    return np.random.default_rng([LACUNARY_SEED, d]).uniform(0.0, 2.0 * np.pi, (levels + 1, d))


def lacunary_target(x: np.ndarray, alpha: float, levels: int = LACUNARY_LEVELS) -> np.ndarray:
    """A lacunary (Weierstrass-type) α-Hölder target that is rough at every scale.

        W_α(x) = c_{d,α} Σ_{j=0}^{J} 2^{-jα} Π_{i<d} cos(2π 2^j x_i + θ_{j,i}),

    x: (..., d) -> (...); J = ``levels``, θ from :func:`lacunary_phases` (fixed). Each term
    oscillates at frequency 2^j in every coordinate at once (a product, not a sum of 1-D
    functions: for d ≥ 2 the target is not an additive model). The terms have integer
    frequencies ≥ 1 in every coordinate, so on [0,1]^d they have mean 0, are pairwise orthogonal
    and have mean square 2^{-d}; hence Var W_α = c² 2^{-d} Σ_j 4^{-jα} exactly, and c_{d,α} is
    chosen to make it equal :func:`cusp_variance` (d, α): the same signal-to-noise ratio as the
    cusp target of the rate experiment.

    Regularity (Weierstrass; Hardy 1916; Zygmund, "Trigonometric Series"): a term
    has sup ≤ 1, gradient ≤ 2π√d 2^j and second differences ≤ C_d (2^j h)². Splitting the sum
    at 2^j ≈ 1/h gives |W(x+h) − W(x)| ≤ C h^α for α < 1 (exactly α-Hölder) and
    |W(x+h) + W(x−h) − 2W(x)| ≤ C h^α for every α ≤ 1; at α = 1 the target lies in the Zygmund
    class Λ_* (first differences ≍ h log(1/h), not Lipschitz), the endpoint of the Hölder–Zygmund
    scale B^α_{∞,∞}, whose minimax rate is the same n^{-2α/(2α+d)}. The bounds are attained: a
    lacunary (Hadamard) series is large wherever its terms align, and its L² energy above
    frequency 2^k is ≍ 4^{-kα} at every k. That is why it attains the rate, unlike the cusp
    Σ|x_i − ½|^α, which is smooth off a null set (energy above 2^k only ≍ 2^{-k(2α+1)}): an
    estimator that resolves W only down to scale h keeps squared bias ≍ h^{2α}, and balancing
    it against the variance σ²/(n h^d) gives n^{-2α/(2α+d)}, the same balance as the standard
    lower-bound construction (independent random-sign bumps of height h^α at the sampling scale
    h; Stone 1982; Tsybakov 2009, ch. 2), here realised at every scale by one fixed function.
    """
    check(0.0 < alpha <= 1.0, f"alpha must be in (0, 1], got {alpha}")
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    theta = lacunary_phases(d, levels)
    f = np.zeros(x.shape[:-1])
    for j in range(levels + 1):
        f += 2.0 ** (-j * alpha) * np.prod(np.cos(2.0 * np.pi * 2.0**j * x + theta[j]), axis=-1)
    var = 2.0**-d * sum(4.0 ** (-j * alpha) for j in range(levels + 1))
    return math.sqrt(cusp_variance(d, alpha) / var) * f


RATE_TARGETS = {"cusp": holder_target, "lacunary": lacunary_target}
"""The fixed α-Hölder targets of the rate experiment by name: f(x (..., d), α) -> (...)."""


def rate_target(name: str, x: np.ndarray, alpha: float) -> np.ndarray:
    """Evaluate the rate experiment's target ``name`` (:data:`RATE_TARGETS`) at x (..., d)."""
    check(name in RATE_TARGETS,
          f"unknown target {name!r}; choose one of {', '.join(sorted(RATE_TARGETS))}")
    return RATE_TARGETS[name](x, alpha)


def _normalise(g: np.ndarray) -> np.ndarray:
    """Gaussian vectors along the last axis -> uniform points on the unit sphere."""
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def _batch_size(params: dict[str, np.ndarray]) -> int:
    return int(next(iter(params.values())).shape[0])

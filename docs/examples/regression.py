"""Your own prompt sampler -> in-context regressor (SepNorm backbone) vs least squares; save, load."""
import os
import numpy as np

from icarena.evaluation import evaluate_regressors
from icarena.pretraining import InContextRegressor, ModelSpec, regression_train_config, train_regressor

steps = int(os.environ.get("ICARENA_EXAMPLE_STEPS", 3000))  # tests set a tiny value
def sampler(rng, n, k):  # noisy linear functions of 3 inputs: y = w.x + 0.1 eps
    x, w = rng.standard_normal((n, k, 3)), rng.standard_normal((n, 3))
    return x, np.einsum("nkd,nd->nk", x, w) + 0.1 * rng.standard_normal((n, k))
reg = train_regressor(sampler, k=10, model=ModelSpec(backbone="sepnorm", d_model=64, n_layers=2),
                      train=regression_train_config().replace(steps=steps))
x, y = sampler(np.random.default_rng(123), 512, 10)
curves = evaluate_regressors(x, y, {"transformer": reg, "least squares": "least_squares",
                                    "ridge": ("ridge", {"lam": 0.1})}, normaliser=3)
print(curves.table())
reg.save("runs/example-regressor", overwrite=True)
xs, ys, xq = x[:, :5], y[:, :5], x[:, 5:]
assert np.array_equal(InContextRegressor.load("runs/example-regressor").predict(xs, ys, xq), reg.predict(xs, ys, xq))

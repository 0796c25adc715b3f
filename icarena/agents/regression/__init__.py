"""Classical in-context regression baselines (least squares, ridge, k-NN, averaging, Lasso, ...),
batched over prompts; see :mod:`icarena.agents.regression.baselines`."""

from icarena.agents.regression.baselines import (
    BASELINES,
    averaging,
    get_baseline,
    knn,
    lasso,
    least_squares,
    lsa_optimal,
    prefix_predictions,
    ridge,
    sparse_bayes,
    two_layer_nn,
)

__all__ = [
    "BASELINES",
    "averaging",
    "get_baseline",
    "knn",
    "lasso",
    "least_squares",
    "lsa_optimal",
    "prefix_predictions",
    "ridge",
    "sparse_bayes",
    "two_layer_nn",
]

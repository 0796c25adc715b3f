"""``icarena run search``: S3-style search over the supernet backbone (also ``icarena search``).

A preset over :func:`icarena.pretraining.search.search` (its docstring holds the pipeline:
supernet training, evolution with inherited weights, random-search control, extraction of the
winner, and S3's claim as a comparison: the winners retrained from scratch next to a hand-set GPT
under the same parameter cap), registered here so that the search is run, resumed, overwritten
and reported like every other experiment. Measured results: ``docs/results/search.md``.
"""

from __future__ import annotations

from icarena.pretraining.search import SearchConfig, quick_config, search

Config = SearchConfig
run = search

__all__ = ["Config", "quick_config", "run"]

"""Choosing the rank from evidence: train each candidate rank briefly, measure what it adds, pick.

The sweep is N smoke runs made longer (:mod:`lora_lint.runtime` builds, trains and
diagnoses each trial); this package plans the trials, runs them on a backend (in this
process, or as Ray tasks), applies the choice rule, and writes the outputs (JSON report,
plots, locked config, experiment tracker). Nothing here is imported by the static linter.
The public entry point is :func:`lora_lint.sweep`.
"""

"""Benchmarks of optuna-qlearn's samplers against Optuna's samplers.

``python -m benchmarks.run --quick`` runs a small suite; see ``docs/benchmarks.md``.
The problems are in :mod:`benchmarks.problems`, the samplers in
:mod:`benchmarks.samplers`, the harness in :mod:`benchmarks.run` and the tables,
plots and JSON in :mod:`benchmarks.report`.
"""

"""Ranks, ties, bootstrap intervals and head-to-heads of regret curves.

Rank 1 = the lowest simple regret in a (problem, seed) cell; regrets within
:data:`TIE` (relative) share their rank; 95% intervals are bootstraps over cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Regrets closer than this (relative to the larger) count as a tie.
TIE = 1e-9


class _Lookup:
    """``(flat index, rng) -> value`` of a noise-free table."""

    def __init__(self, flat_table: np.ndarray) -> None:
        self.flat_table = flat_table

    def __call__(self, flat: int, _: np.random.Generator) -> float:
        return float(self.flat_table[flat])


def ranks(row: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest), ties within :data:`TIE` sharing a rank."""
    order = np.argsort(row, kind="stable")
    ranks = np.empty(len(row))
    i = 0
    while i < len(row):
        j = i
        while j + 1 < len(row) and tied(row[order[j + 1]], row[order[i]]):
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return ranks


def tied(a: float, b: float) -> bool:
    """Whether two regrets are equal within :data:`TIE`."""
    return abs(a - b) <= TIE * max(abs(a), abs(b), 1e-300)


def bootstrap_ci(
    values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000
) -> tuple[float, float]:
    """Bootstrap 95% interval of the mean (cells resampled)."""
    means = values[rng.integers(len(values), size=(n_boot, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def compare(
    curves: dict[str, dict[str, dict[str, list[float]]]],
    families: dict[str, str],
    budget: int,
    reference: str,
) -> dict[str, Any]:
    """Ranks at ``budget`` trials of every method and ``reference``'s head-to-heads."""
    methods = list(curves)
    cells = [(p, s) for p in curves[reference] for s in curves[reference][p]]
    regret = np.array([[curves[m][p][s][budget - 1] for m in methods] for p, s in cells])
    rank_rows = np.array([ranks(r) for r in regret])
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"budget": budget, "n_cells": len(cells), "mean_rank": {}, "family": {}}
    for j, m in enumerate(methods):
        lo, hi = bootstrap_ci(rank_rows[:, j], rng)
        out["mean_rank"][m] = {"mean": float(rank_rows[:, j].mean()), "ci95": [lo, hi]}
    fams = sorted(set(families.values()))
    for fam in fams:
        sel = np.array([families[p] == fam for p, _ in cells])
        out["family"][fam] = {m: float(rank_rows[sel, j].mean()) for j, m in enumerate(methods)}
    r = methods.index(reference)
    out["head_to_head"] = {}
    for j, m in enumerate(methods):
        if j == r:
            continue
        tie = np.array([tied(a, b) for a, b in zip(regret[:, r], regret[:, j])])
        win = (regret[:, r] < regret[:, j]) & ~tie
        loss = (regret[:, r] > regret[:, j]) & ~tie
        pair_rank = 1.0 + loss + 0.5 * tie  # the reference's rank of 2
        lo, hi = bootstrap_ci(pair_rank, rng)
        out["head_to_head"][m] = {
            "wins": int(win.sum()), "ties": int(tie.sum()), "losses": int(loss.sum()),
            "pair_mean_rank": float(pair_rank.mean()), "ci95": [lo, hi],
        }  # fmt: skip
    return out

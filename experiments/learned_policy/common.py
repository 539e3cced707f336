"""Shared helpers of the learned-policy experiment: the problem list, seeds, paths."""

from __future__ import annotations

from pathlib import Path

#: Where results are written.
RESULTS = Path(__file__).resolve().parent / "results"

#: Datasets reserved as held-out test tasks (issue 14): never run here.
RESERVED = ("credit_g", "kc1", "protein_structure", "slice_localization", "cifar100", "imagenet")


def suite_problems() -> list[str]:
    """The default suite of ``benchmarks.problems`` (19 problems, all offline).

    Raises:
        RuntimeError: If a reserved dataset ever appears in it.
    """
    from benchmarks.problems import SUITE

    names = list(SUITE)
    for name in names:
        if any(r in name for r in RESERVED) and not name.startswith("nasbench201-cifar10"):
            raise RuntimeError(f"Problem {name!r} uses a reserved dataset.")
        if name.startswith("nasbench201-") and name != "nasbench201-cifar10":
            raise RuntimeError(f"Problem {name!r} uses a reserved dataset.")
    return names


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` or ``"0,3,5"`` -> list of seeds.

    Raises:
        ValueError: If ``text`` is not such a list (naming ``--seeds``).
    """
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError as err:
        raise ValueError(f"--seeds must look like '0-9' or '0,3,5', got {text!r}.") from err
    if not out:
        raise ValueError(f"--seeds is empty: {text!r}.")
    return out

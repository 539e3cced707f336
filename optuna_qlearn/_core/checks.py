"""Argument checks shared by every configuration: type and range, errors that name the argument.

Each check returns the value converted to its canonical Python type (``float``,
``int``, ``bool``, ``tuple``), so a validated configuration holds plain values
whatever the caller passed (NumPy scalars included).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

import numpy as np


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the given range.

    Args:
        name: The argument's name (for the error message).
        value: The value given.
        low: Lower bound.
        high: Upper bound.
        low_open: Whether ``low`` itself is excluded.
        high_open: Whether ``high`` itself is excluded.

    Returns:
        ``value`` as a ``float``.

    Raises:
        TypeError: If ``value`` is not a real number (``bool`` and strings included).
        ValueError: If it is NaN, infinite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}{low:g}, {high:g}{hi}, got {value!r}.")
    return x


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a ``bool``, not a float) in ``[low, high]``.

    Args:
        name: The argument's name.
        value: The value given.
        low: Smallest allowed value (``None``: no bound).
        high: Largest allowed value (``None``: no bound).

    Returns:
        ``value`` as an ``int``.

    Raises:
        TypeError: If ``value`` is not an integer.
        ValueError: If it is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value!r}.")
    return n


def check_bool(name: str, value: Any) -> bool:
    """A ``bool`` (or NumPy bool).

    Raises:
        TypeError: For anything else (``0`` and ``"yes"`` included).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """One of ``choices``.

    Raises:
        ValueError: For anything else.
    """
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")
    return value


def check_int_tuple(name: str, value: Any, low: int = 1) -> tuple[int, ...]:
    """A non-empty sequence of integers, each at least ``low``.

    Raises:
        TypeError: If ``value`` is not a sequence of integers (a string included).
        ValueError: If it is empty or an element is out of range.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers, got {value!r}.")
    items = tuple(value)
    if not items:
        raise ValueError(f"{name} must not be empty.")
    return tuple(check_int(f"{name}[{i}]", v, low) for i, v in enumerate(items))

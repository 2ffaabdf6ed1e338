"""Input validation shared by nlviz's public functions.

Every message names the argument, what was expected and what came.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np


def check_int(name: str, value, *, minimum: int | None = None, odd: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if odd and value % 2 == 0:
        raise ValueError(f"{name}: expected an odd integer, got {value}")
    return value


def check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return float(value)


def check_nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_finite(name: str, array) -> None:
    """Raise ValueError if a NumPy array or torch tensor holds NaN or inf.

    Looks torch up in ``sys.modules`` instead of importing it (about 2 s), so the
    NumPy-only modules (nlm, plot) stay light: a tensor exists only if torch is loaded.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        finite = bool(torch.isfinite(array).all())
    else:
        finite = bool(np.isfinite(array).all())
    if not finite:
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_query(query, shape: tuple[int, int], name: str = "query") -> tuple[int, int]:
    """Return ``query`` as ``(y, x)`` ints, or raise naming ``name``: a pixel of an (H, W) grid."""
    h, w = shape
    ok = (
        isinstance(query, (tuple, list, np.ndarray))
        and len(query) == 2
        and all(isinstance(q, numbers.Integral) and not isinstance(q, bool) for q in query)
    )
    if not ok:
        raise TypeError(f"{name}: expected a pair of integers (y, x), got {query!r}")
    y, x = int(query[0]), int(query[1])
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(
            f"{name}: expected (y, x) inside the image, 0 <= y < {h} and 0 <= x < {w}, got {(y, x)}"
        )
    return y, x

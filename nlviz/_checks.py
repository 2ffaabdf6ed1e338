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


def check_query(query, shape: tuple[int, ...], name: str = "query") -> tuple[int, ...]:
    """Return ``query`` as a tuple of ints, one per axis of ``shape``, or raise naming ``name``.

    ``shape`` is the grid the query indexes: (H, W) for a pixel (y, x), (T, H, W) for (t, y, x).
    """
    axes = {2: "(y, x)", 3: "(t, y, x)"}.get(len(shape), f"{len(shape)} coordinates")
    ok = (
        isinstance(query, (tuple, list, np.ndarray))
        and len(query) == len(shape)
        and all(isinstance(q, numbers.Integral) and not isinstance(q, bool) for q in query)
    )
    if not ok:
        raise TypeError(f"{name}: expected {len(shape)} integers {axes}, got {query!r}")
    q = tuple(int(v) for v in query)
    if not all(0 <= v < s for v, s in zip(q, shape, strict=True)):
        bounds = ", ".join(f"0 <= {a} < {s}" for a, s in zip(axes.strip("()").split(", "), shape))
        raise ValueError(f"{name}: expected {axes} inside the grid, {bounds}, got {q}")
    return q

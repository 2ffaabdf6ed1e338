"""The mass view (notebook 05): the smallest set of j holding a share of a query's |weight|."""

import numpy as np

from nlviz.utils import as_array, check_real

__all__ = ["mass_set"]


def mass_set(weights: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The fewest j holding ``share`` (in (0, 1]) of |weights| (T, h', w'), ties by row-major index:
    bool ``mask``, ``inside`` (T,), each frame's share of the total in it; no weight: empty, NaN."""
    share = check_real("share", share, minimum=0, maximum=1, strict=True)
    return _mass_set(as_array("weights", weights, (3,)), share)


def _mass_set(weights: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """``mass_set`` unchecked (a click in the mass view)."""
    mass = np.abs(weights).reshape(-1)
    total = mass.sum()
    if not total > 0:
        return np.zeros(weights.shape, bool), np.full(weights.shape[0], np.nan)
    order = np.argsort(-mass, kind="stable")
    running = np.cumsum(mass[order])
    # first n with running[n - 1] >= share * total (1 - 1e-12 for rounding): share=1 keeps all j > 0
    n = min(int(np.searchsorted(running, share * total * (1 - 1e-12))) + 1, mass.size)
    mask = np.isin(np.arange(mass.size), order[:n]).reshape(weights.shape)
    return mask, np.where(mask, np.abs(weights), 0).sum(axis=(1, 2)) / total


def _outline(mask: np.ndarray) -> np.ndarray:
    """The edges between cells in and out of ``mask`` (h, w): segments (n, 2, 2) of (x, y)."""
    padded = np.pad(np.asarray(mask, bool), 1)
    rows, cols = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # edge at y = r, over column c
    across = np.stack([np.c_[cols, rows], np.c_[cols + 1, rows]], axis=1)
    rows, cols = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # edge at x = c, beside row r
    down = np.stack([np.c_[cols, rows], np.c_[cols, rows + 1]], axis=1)
    return np.concatenate([across, down]).astype(np.float64).reshape(-1, 2, 2)


def _describe(mask, inside, share, signed: bool) -> str:  # in words, "" without a mass view
    if not share:
        return ""
    if not mask.any():
        return f"mass view {share:.0%}: this query has no weight (all 0), nothing shown"
    return (f"mass view: the {int(mask.sum())} of {mask.size} positions j holding {share:.0%} "
            f"of {'|w|' if signed else 'the weight'} ({inside.sum():.0%})")  # fmt: skip

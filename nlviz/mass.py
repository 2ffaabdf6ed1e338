"""The mass view (notebook 05): the smallest set of positions j holding a share of a query's
weight, drawn as a mask with its outline; it reads on a projector where a log scale does not.
Signed weights (the dot product, Eq. 4) count by |w_ij|, the size of j's term in y_i; a query
whose weights are all 0 (a dead ReLU of Eq. 5) has no mass, and an empty mask."""

from __future__ import annotations

import numpy as np

from nlviz.utils import as_array, check_real

__all__ = ["mass_set"]


def mass_set(weights: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The smallest set of positions j whose |weights| add up to ``share`` of their total.

    Parameters
    ----------
    weights : array (T, h', w'), one query's weights over the pooled grid of j, finite
    share : float in (0, 1]

    Returns
    -------
    mask : bool ndarray (T, h', w'), True on the positions of the set (ties broken by position,
        first in row-major order); all False where every weight is 0
    inside : ndarray (T,), the share of the total in each frame's part of the set (sums to at
        least ``share``), NaN where the query has no weight
    """
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
    # the first n with running[n - 1] >= share * total, a relative 1e-12 spared for the
    # rounding of the two sums (share=1 must keep every j with a weight, not fall one short)
    n = min(int(np.searchsorted(running, share * total * (1 - 1e-12))) + 1, mass.size)
    mask = np.isin(np.arange(mass.size), order[:n]).reshape(weights.shape)
    return mask, np.where(mask, np.abs(weights), 0).sum(axis=(1, 2)) / total


def _outline(mask: np.ndarray) -> np.ndarray:
    """The edges between cells in and out of a 2-D ``mask`` (h, w), as segments (n, 2, 2) of
    points (x, y) in cell units: cell (r, c) spans x in [c, c + 1], y in [r, r + 1]."""
    padded = np.pad(np.asarray(mask, bool), 1)
    rows, cols = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # edge at y = r, over column c
    across = np.stack([np.c_[cols, rows], np.c_[cols + 1, rows]], axis=1)
    rows, cols = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # edge at x = c, beside row r
    down = np.stack([np.c_[cols, rows], np.c_[cols, rows + 1]], axis=1)
    return np.concatenate([across, down]).astype(np.float64).reshape(-1, 2, 2)


def _describe(mask, inside, share, signed: bool) -> str:
    """What a mass view shows, in words ("" without one)."""
    if not share:
        return ""
    if not mask.any():
        return f"mass view {share:.0%}: this query has no weight (all 0), nothing shown"
    return (f"mass view: the {int(mask.sum())} of {mask.size} positions j holding {share:.0%} "
            f"of {'|w|' if signed else 'the weight'} ({inside.sum():.0%})")  # fmt: skip

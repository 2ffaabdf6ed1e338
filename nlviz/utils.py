"""Small shared helpers: device choice and seeding."""

from __future__ import annotations

import random

import numpy as np


def pick_device(preference: str = "auto"):
    """Return a ``torch.device``: cuda > mps > cpu for ``"auto"``, else the one named.

    Raises ValueError for an unknown name and RuntimeError when the named device is absent.
    """
    import torch

    valid = ("auto", "cpu", "cuda", "mps")
    if preference not in valid:
        raise ValueError(f"device: expected one of {valid}, got {preference!r}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (preference == "cuda" and not cuda) or (preference == "mps" and not mps):
        raise RuntimeError(f"device: {preference!r} was asked for but is not available here")
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a deterministic run."""
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - legacy global state, seeded for third-party code
    torch.manual_seed(seed)

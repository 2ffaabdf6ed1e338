"""What made a committed result: a fingerprint of a run's start, and the machine it ran on.
``fingerprint``: a string of a run's initial weights and first batch, in checkpoints and results
CSVs, recomputed by ``tests/test_fingerprints.py``. Names and sizes are hashed, floats randomly
projected, equal within a tolerance far above round-off (``matches``): one code matches on any CPU.
Format: ``fp1:<sha256 of the exact part, 12 hex>:w=<rms>,<z1>,<z2>,<z3>:x=<rms>,<z1>,<z2>,<z3>``."""

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nlviz.utils import check_type

__all__ = ["fingerprint", "matches", "machine"]
VERSION = "fp1"
PROJECTIONS = 3
TOLERANCE = 2e-3  # on each projection (about N(0, 1)) and relatively on each rms


def _summary(values: list[np.ndarray]) -> str:
    """rms, then z_k = r_k . x / |x| for ``PROJECTIONS`` fixed +-1 vectors r_k (integer: exact)."""
    x = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in values])
    norm = float(np.sqrt(x @ x))
    rng = np.random.default_rng(20180601)  # fixed: the same r_k for every fingerprint
    z = [float((rng.integers(0, 2, x.size) * 2.0 - 1.0) @ x) / max(norm, 1e-300)
         for _ in range(PROJECTIONS)]  # fmt: skip
    rms = norm / np.sqrt(max(x.size, 1))
    return ",".join([f"{rms:.6g}"] + [f"{v:+.4f}" for v in z])


def fingerprint(model: nn.Module, exact: dict, pixels: tuple[torch.Tensor, ...]) -> str:
    """A run's fingerprint from ``model`` as initialised and ``pixels`` (tensors, the first batch):
    floats projected; names, shapes, dtypes and ``exact`` (config, seed, labels) hashed."""
    check_type("model", model, nn.Module, "an nn.Module")
    check_type("exact", exact, dict, "a dict of plain values")
    if not (isinstance(pixels, tuple) and pixels and all(map(torch.is_tensor, pixels))):
        raise TypeError(f"pixels: expected a non-empty tuple of tensors, got {pixels!r:.80}")
    state = sorted(model.state_dict().items())
    h = hashlib.sha256(json.dumps(exact, sort_keys=True, default=str).encode())
    for name, t in state:
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
    weights = [t.detach().cpu().double().numpy() for _, t in state if t.is_floating_point()]
    data = [p.detach().cpu().double().numpy() for p in pixels]
    return f"{VERSION}:{h.hexdigest()[:12]}:w={_summary(weights)}:x={_summary(data)}"


def _parts(fp: str) -> tuple[str, list[list[float]]]:
    version, digest, w, x = fp.split(":")
    return f"{version}:{digest}", [[float(v) for v in s[2:].split(",")] for s in (w, x)]


def matches(a: str, b: str) -> bool:
    """Same code? Exact parts equal, rms (relative), projections (absolute) within ``TOLERANCE``."""
    try:
        (head_a, nums_a), (head_b, nums_b) = _parts(a), _parts(b)
        pairs = [(u, v) for us, vs in zip(nums_a, nums_b, strict=True)
                 for u, v in zip(us, vs, strict=True)]  # fmt: skip
    except (AttributeError, ValueError):  # not a fingerprint, or another number of values
        return False
    rms = [0, PROJECTIONS + 1]  # the rms of the weights, of the pixels: relative
    return head_a == head_b and all(
        abs(u - v) <= TOLERANCE * (max(abs(u), abs(v)) if k in rms else 1)
        for k, (u, v) in enumerate(pairs)
    )


def machine() -> str:
    """The CPU and the kernels torch dispatches on it: "AMD EPYC family 26 model 2 (AVX512)"."""
    info, cpuinfo = {}, Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), " ".join(value.split()))
    name = info.get("model name") or platform.processor() or platform.machine()
    family = f" family {info['cpu family']} model {info['model']}" if "cpu family" in info else ""
    return f"{name}{family} ({torch.backends.cpu.get_cpu_capability()})"

"""The sealed checkpoint (notebooks 04-06): ``weights_only`` types and a SHA-256 checked on read."""

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from nlviz.utils import as_path, atomic_write, check_type

__all__ = ["FORMAT", "seal", "make_checkpoint", "save_checkpoint", "read_checkpoint"]
FORMAT = "nlviz-checkpoint-2"
MAX_BYTES = 256 * 2**20  # larger files are refused before they are read
TYPES = {"format": str, "kind": str, "model": dict, "config": dict, "config_name": str,
         "seed": int, "device": str, "cpu": str, "fingerprint": str, "metrics": dict,
         "history": dict, "state_dict": dict, "digest": str}  # fmt: skip


def _digest(ckpt: dict) -> str:
    """SHA-256 of every entry but the digest: plain entries as JSON, then each tensor's bytes."""
    plain = {k: v for k, v in ckpt.items() if k not in ("state_dict", "digest")}
    h = hashlib.sha256(json.dumps(plain, sort_keys=True).encode())
    for key, t in sorted(ckpt["state_dict"].items()):
        h.update(f"{key}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def seal(checkpoint: dict) -> dict:
    """A copy of ``checkpoint`` with the digest of what it holds now."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise TypeError(f"checkpoint: expected a dict with a state_dict, got {checkpoint!r:.80}")
    checkpoint = {k: v for k, v in checkpoint.items() if k != "digest"}
    return {**checkpoint, "digest": _digest(checkpoint)}


def make_checkpoint(model: nn.Module, info: dict, history: dict) -> dict:
    """The sealed checkpoint of ``model``: ``info`` (kind, config, metrics...), history, weights."""
    check_type("model", model, nn.Module, "an nn.Module")
    if not isinstance(info, dict) or not isinstance(info.get("metrics"), dict):
        raise TypeError(f"info: expected a dict with a 'metrics' dict, got {info!r:.80}")
    check_type("history", history, dict, "a dict of lists")
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    info = {**info, "metrics": {k: float(v) for k, v in info["metrics"].items()}}
    hist = {k: [float(v) for v in vs] for k, vs in history.items()}
    return seal({"format": FORMAT, **info, "history": hist, "state_dict": state})


def save_checkpoint(checkpoint: dict, path, *, overwrite: bool = False) -> Path:
    """Write ``checkpoint`` with ``torch.save`` atomically (sealed first if it has no digest)."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise TypeError(f"checkpoint: expected a dict with a state_dict, got {checkpoint!r:.80}")
    checkpoint = checkpoint if "digest" in checkpoint else seal(checkpoint)
    return atomic_write(path, lambda fh: torch.save(checkpoint, fh), overwrite=overwrite)


def _check_fields(ckpt: dict, path) -> None:
    """Every entry of the right type, plain values in the dicts, finite weights."""
    for key, kind in TYPES.items():
        if key in ckpt and not isinstance(ckpt[key], kind):
            raise ValueError(f"path: {path} has a {key!r} of type {type(ckpt[key]).__name__}")
    if missing := [key for key in ("model", "state_dict", "digest") if key not in ckpt]:
        raise ValueError(f"path: {path} has no {missing[0]!r} entry")
    plain = (str, int, float, bool, type(None))
    for key in ("model", "config", "metrics"):
        bad = [k for k, v in ckpt.get(key, {}).items() if not isinstance(v, plain)
               and not (isinstance(v, dict) and all(isinstance(u, (*plain, tuple, list))
                                                    for u in v.values()))]  # fmt: skip
        if bad:
            raise ValueError(f"path: {path} has values of the wrong type in {key!r}: {bad[:3]}")
    for key, t in ckpt["state_dict"].items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"path: {path} state_dict[{key!r}] is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"path: {path} state_dict[{key!r}] holds NaN or inf")


def read_checkpoint(path, build) -> tuple[nn.Module, dict]:
    """Read, verify a checkpoint; ``build(ckpt)`` makes the model (CPU, eval). FileNotFoundError:
    no file; ValueError: unreadable, other format, bad fields, unlike its model or its digest."""
    check_type("build", build, Callable, "a function of a checkpoint")
    if not (path := as_path("path", path)).is_file():
        raise FileNotFoundError(f"path: no checkpoint at {path}")
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"path: {path} is larger than {MAX_BYTES} bytes: not a checkpoint")
    try:
        ckpt = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever fails to unpickle is "not readable"
        raise ValueError(f"path: {path} is not a readable checkpoint ({err!r:.200})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"path: {path} is not an nlviz checkpoint ({FORMAT}), got {got!r}")
    _check_fields(ckpt, path)
    try:
        model = build(ckpt)
    except (TypeError, ValueError) as err:
        raise ValueError(f"path: {path} describes an invalid model: {err}") from err
    if _digest(ckpt) != ckpt["digest"]:
        raise ValueError(f"path: {path}: weights and config do not match its digest (edited?)")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        msg = str(err).replace("\n", " ")[:300]
        raise ValueError(f"path: {path} weights do not match its model config: {msg}") from err
    return model.eval(), ckpt

"""Shared helpers: argument checks, device, seed, the one atomic write, the CLI parser; checks raise
TypeError or ValueError "name: expected X, got Y". Public: ``pick_device``, ``seed_everything``."""

import argparse
import contextlib
import numbers
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything"]


def check_int(name: str, value, *, minimum=None, maximum=None, odd: bool = False) -> int:
    """``value`` as an int in [minimum, maximum] (and odd)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    value, kind = int(value), "an odd integer" if check_bool("odd", odd) else "an integer"
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected {kind} >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected {kind} <= {maximum}, got {value}")
    if odd and value % 2 == 0:
        raise ValueError(f"{name}: expected an odd integer, got {value}")
    return value


def check_real(name: str, value, *, minimum=None, maximum=None, strict: bool = False) -> float:
    """``value`` as a finite float >= minimum (> if ``strict``) and <= maximum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    value, low = float(value), ">" if check_bool("strict", strict) else ">="
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name}: expected a number {low} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected a number <= {maximum}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value, choices: tuple | list):
    check_type("choices", choices, tuple | list, "a tuple or list of choices")
    if not isinstance(value, str | int) or isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_type(name: str, value, kind, what: str):
    """``value`` if an instance of ``kind`` (a class or a union), else TypeError: ``what``."""
    if not isinstance(value, kind):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")
    return value


def check_finite(name: str, array) -> None:
    """ValueError if a NumPy array or a torch tensor holds NaN or inf."""
    check_type(name, array, torch.Tensor | np.ndarray, "a NumPy array or a tensor")
    is_tensor = isinstance(array, torch.Tensor)
    if not bool(torch.isfinite(array).all() if is_tensor else np.isfinite(array).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_query(query, shape, name: str = "query") -> tuple[int, ...]:
    """``query`` as ints, one per axis of the grid ``shape``: (l,), (y, x) or (t, y, x)."""
    axes = {1: ("l",), 2: ("y", "x"), 3: ("t", "y", "x")}.get(len(shape), ("i",) * len(shape))
    want = f"({', '.join(axes)}{',' * (len(axes) == 1)})"
    if hasattr(query, "tolist") and not isinstance(query, np.generic):
        query = query.tolist()  # a NumPy array or a torch tensor
    ints = isinstance(query, tuple | list) and all(
        isinstance(q, numbers.Integral) and not isinstance(q, bool) for q in query
    )
    if not ints:
        raise TypeError(f"{name}: expected a tuple of integers {want}, got {query!r}")
    if len(query) != len(shape):
        raise ValueError(f"{name}: expected {len(shape)} coordinates {want}, got {query!r}")
    query = tuple(int(q) for q in query)
    if not all(0 <= q < s for q, s in zip(query, shape, strict=True)):
        bounds = ", ".join(f"0 <= {a} < {s}" for a, s in zip(axes, shape, strict=True))
        raise ValueError(f"{name}: expected {want} with {bounds}, got {query} (out of range)")
    return query


def as_array(name: str, value, ndims=(2,), *, channels=()) -> np.ndarray:
    """A finite non-empty real array, ndim in ``ndims`` or one more (last size in ``channels``)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    check_type(name, value, np.ndarray | list | tuple, "a NumPy array")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    colour = arr.ndim - 1 in ndims and arr.ndim > 0 and arr.shape[-1] in channels
    if arr.ndim not in ndims and not colour:
        raise ValueError(f"{name}: expected {' or '.join(map(str, ndims))} dims, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    check_finite(name, arr)
    return arr


def as_path(name: str, path) -> Path:
    """``path`` as a Path: TypeError unless a non-empty str or os.PathLike."""
    if not isinstance(path, str | os.PathLike) or str(path) == "":
        raise TypeError(f"{name}: expected a file path (str or Path), got {path!r}")
    return Path(path)


def pick_device(device: str = "auto"):
    """A ``torch.device``: for "auto" ``$NLVIZ_DEVICE`` if set, else cuda > mps > cpu."""
    if device == "auto":
        device = os.environ.get("NLVIZ_DEVICE", "auto")
    check_choice("device", device, ("auto", "cpu", "cuda", "mps"))
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise RuntimeError(f"device: {device!r} was asked for but is not available here")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global state (for third-party code) and torch."""
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def _dead(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError, ValueError) as err:  # PermissionError: alive
        return isinstance(err, ProcessLookupError)
    return False


class Output(contextlib.AbstractContextManager):
    """A file claimed at once (context manager), written atomically by ``write``; the one rule:
    FileExistsError if ``path`` exists (unless ``overwrite``) or claimed; unwritable: ValueError."""

    def __init__(self, path, *, overwrite: bool = False, name: str = "path") -> None:
        path, self.prefix = as_path(name, path), f".{Path(path).name}."
        if path.is_dir():
            raise ValueError(f"{name}: expected a file path, got the folder {path}")
        if not check_bool("overwrite", overwrite) and path.exists():
            raise FileExistsError(f"{name}: {path} exists; pass overwrite=True (--overwrite)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"{name}: cannot create the folder of {path} ({err})") from err
        for stale in path.parent.glob(self.prefix + "*"):  # .NAME.lock, .NAME.PID.xxx.tmp
            is_lock = stale.suffix == ".lock"
            pid = stale.read_text().strip() if is_lock else stale.name.split(".")[-3]
            if _dead(pid):
                stale.unlink(missing_ok=True)
        self.path, self.lock = path, path.parent / (self.prefix + "lock")
        try:
            with open(self.lock, "x") as fh:
                fh.write(str(os.getpid()))
        except FileExistsError:
            raise FileExistsError(f"{name}: {path} is being written by another process") from None
        except OSError as err:
            raise ValueError(f"{name}: the folder {path.parent} is not writable ({err})") from err

    def write(self, save) -> Path:
        if not callable(save):
            raise TypeError(f"save: expected a function of a binary file, got {save!r:.80}")
        prefix = f"{self.prefix}{os.getpid()}."
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                save(fh)
            os.chmod(tmp, 0o644)  # mkstemp makes 0o600
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path

    def close(self) -> None:
        self.lock.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        self.close()


def atomic_write(path, save, *, overwrite: bool = False, name: str = "path") -> Path:
    """Claim ``path``, write it with ``save(binary_file)`` atomically, release it."""
    with Output(path, overwrite=overwrite, name=name) as out:
        return out.write(save)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``prog: error: ...``, exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def fail(self, err: Exception, **renames):
        """Exit naming the flag (``out: ...`` -> ``--out: ...``; ``renames``: argument -> flag)."""
        msg = str(err).replace("overwrite=True (--overwrite)", "--overwrite")
        head, sep, tail = msg.partition(":")
        head = renames.get(head, head)
        self.error(f"{'--' * any(a.dest == head for a in self._actions)}{head}{sep}{tail}")

"""Where a query attends (notebook 05): weights from a block, non-local means or a checkpoint, on
the grids ``Geometry`` converts between: display pixels (T, H, W); the query grid (T, h, w) of
the block's input, H / h pixels a cell; the grid of j, (T, h', w') with h' = ceil(h / pool)."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from dataclasses import InitVar, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nlviz.block import NonLocalBlock
from nlviz.nlm import _weights_fn
from nlviz.pairwise import _affinity, _check, _check_tensor, affinity
from nlviz.plot import _text
from nlviz.train import load_checkpoint
from nlviz.utils import as_array, check_bool, check_int, check_query, check_type
from nlviz.video import VideoBatch, to_tensor, track_tensors

__all__ = ["Geometry", "Source", "attention_matrix", "cover", "masses"]


def _as_frames(frames, name: str = "frames") -> np.ndarray:
    """Frames as float (T, H, W) or (T, H, W, 3), uint8 / 255; one image is a 1-frame video."""
    arr = as_array(name, frames, (2, 3), channels=(3,))
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3):
        arr = arr[None]
    return arr.astype(np.float64) / (255.0 if arr.dtype == np.uint8 else 1.0)


def _sizes(name: str, value, n: int = 2) -> tuple[int, ...]:
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != n:
        raise ValueError(f"{name}: expected {n} integers, got {value!r}")
    sizes = (check_int(f"{name}[{i}]", v, minimum=1, maximum=2**16) for i, v in enumerate(value))
    return tuple(sizes)


def _within(name: str, value, low: float, high: float) -> float:
    """``value`` as a float in [low, high], checked here: a click's path calls no checks."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:  # NaN too
        raise ValueError(f"{name}: expected a number in [{low}, {high}], got {value} (outside)")
    return float(value)


@dataclass(frozen=True)
class Geometry:
    """Frames (T, H, W), the query grid (h, w) (default: the frames'), the pooling (py, px) of j."""

    frames_shape: tuple[int, int, int]
    grid_shape: tuple[int, int] | None = None
    pool: tuple[int, int] = (1, 1)
    name: InitVar[str] = "grid_shape"  # the grid's name in errors

    def __post_init__(self, name: str) -> None:
        _text(name=name)
        t, height, width = _sizes("frames_shape", self.frames_shape, 3)
        h, w = _sizes(name, (height, width) if self.grid_shape is None else self.grid_shape)
        if height * w != width * h or h > height:
            raise ValueError(f"{name}: expected the aspect of the {height}x{width} frames, no "
                             f"finer, got {h}x{w}: frames and features disagree")  # fmt: skip
        shapes = (t, height, width), (h, w), _sizes("pool", self.pool)
        for field, value in zip(("frames_shape", "grid_shape", "pool"), shapes, strict=True):
            object.__setattr__(self, field, value)  # frozen: set once, here

    @classmethod
    def create(cls, frames_shape, grid_shape=None, pool=(1, 1), name="grid_shape") -> Geometry:
        return cls(frames_shape, grid_shape, pool, name)

    @property
    def stride(self) -> tuple[float, float]:
        """Display pixels per query cell, (sy, sx)."""
        return self.frames_shape[1] / self.grid_shape[0], self.frames_shape[2] / self.grid_shape[1]

    @property
    def j_shape(self) -> tuple[int, int, int]:
        """(T, h', w'): the shape of the weights, the pooled grid of j."""
        (h, w), (py, px) = self.grid_shape, self.pool
        return self.frames_shape[0], math.ceil(h / py), math.ceil(w / px)

    @property
    def j_extent(self) -> tuple[float, float, float, float]:
        """imshow extent of the grid of j in display pixels (may overhang the frame)."""
        (sy, sx), (py, px), (_, hj, wj) = self.stride, self.pool, self.j_shape
        return -0.5, -0.5 + wj * px * sx, -0.5 + hj * py * sy, -0.5

    def check_query(self, query) -> tuple[int, int, int]:
        """(t, y, x) on the query grid, or TypeError / ValueError naming ``query``."""
        return check_query(query, (self.frames_shape[0], *self.grid_shape))

    def _cell(self, t, y, x) -> tuple[int, int, int]:  # each checked by name
        tops = zip("tyx", (t, y, x), (self.frames_shape[0], *self.grid_shape), strict=True)
        return tuple(check_int(n, q, minimum=0, maximum=m - 1) for n, q, m in tops)

    def cell_of_pixel(self, py: float, px: float) -> tuple[int, int]:
        """The query cell (y, x) holding display point (py, px); ValueError outside the frame."""
        _, height, width = self.frames_shape
        py, px = _within("py", py, -0.5, height - 0.5), _within("px", px, -0.5, width - 0.5)
        (sy, sx), (h, w) = self.stride, self.grid_shape
        y, x = math.floor((py + 0.5) / sy + 1e-9), math.floor((px + 0.5) / sx + 1e-9)
        return min(y, h - 1), min(x, w - 1)

    def pixel_of_cell(self, y: float, x: float) -> tuple[float, float]:
        """Display centre of query cell (y, x)."""
        (sy, sx), (h, w) = self.stride, self.grid_shape
        y, x = _within("y", y, 0, h - 1), _within("x", x, 0, w - 1)
        return (y + 0.5) * sy - 0.5, (x + 0.5) * sx - 0.5

    def pixel_of_j(self, yj, xj) -> tuple[np.ndarray, np.ndarray]:
        """Display centres of cells (y', x') of the grid of j; an odd size's last is cut."""
        (_, height, width), (sy, sx), (py, px) = self.frames_shape, self.stride, self.pool
        for name, a in (("yj", np.asarray(yj)), ("xj", np.asarray(xj))):  # checked here: a click
            if a.dtype.kind not in "iu" or a.ndim > 1:
                raise ValueError(f"{name}: expected ints (at most 1-D), got {a.dtype} {a.shape}")
        y0, x0 = np.asarray(yj, float) * py * sy, np.asarray(xj, float) * px * sx
        y1, x1 = np.minimum(y0 + py * sy, height), np.minimum(x0 + px * sx, width)
        return (y0 + y1) / 2 - 0.5, (x0 + x1) / 2 - 0.5

    def check_weights(self, weights, name: str = "weights") -> np.ndarray:
        """The weights as a finite float64 array of ``j_shape`` (a batch of one is squeezed)."""
        _text(name=name)
        w = as_array(name, weights, (2, 3, 4)).astype(np.float64)
        w = w[0] if w.ndim == 4 and w.shape[0] == 1 else w
        w = w[None] if w.ndim == 2 and self.frames_shape[0] == 1 else w
        if w.shape != self.j_shape:
            raise ValueError(f"{name}: expected shape (T', h', w') = {self.j_shape} for frames "
                             f"{self.frames_shape}, grid {self.grid_shape}, pool {self.pool}, "
                             f"got {w.shape}")  # fmt: skip
        return w


@dataclass
class Source:
    """A query's weights, ``affinity_fn(t, y, x) -> (T, h', w')``, on ``geometry``'s grids."""

    frames: np.ndarray
    affinity_fn: Callable
    geometry: Geometry
    name: str = "affinity"  # titles the figures
    label: str = "weight f(x_i, x_j) / C(x)"  # names the weights on the colour bar
    model: object = None  # model, checkpoint, output: set by from_checkpoint
    checkpoint: dict | None = None
    output: object = None
    trusted: bool = False  # affinity_fn is nlviz's own: its weights need no check per click
    detail: str = ""  # where the weights come from

    def __post_init__(self) -> None:
        self.frames = as_array("frames", self.frames, (3,), channels=(3,))  # (T, H, W[, 3])
        if not callable(self.affinity_fn):
            raise TypeError(f"affinity_fn: expected a callable, got {self.affinity_fn!r:.60}")
        check_type("geometry", self.geometry, Geometry, "a Geometry")
        if self.geometry.frames_shape != self.frames.shape[:3]:
            raise ValueError(f"geometry: expected frames {self.frames.shape}, got {self.geometry}")
        _text(name=self.name, label=self.label, detail=self.detail)
        self.trusted = check_bool("trusted", self.trusted)
        if not isinstance(self.checkpoint, dict | None) or self.checkpoint == {}:
            raise TypeError(f"checkpoint: expected None or a dict, got {self.checkpoint!r:.60}")

    # "name [detail]": which model, block or filter the weights come from
    title = property(lambda self: f"{self.name} [{self.detail}]" if self.detail else self.name)

    @classmethod
    def create(cls, frames, affinity_fn, *, grid_shape=None, pool=(1, 1), name="affinity",
               label="weight f(x_i, x_j) / C(x)", grid_name="grid_shape", trusted=False,
               detail="") -> Source:  # fmt: skip
        """A source on ``frames`` (T, H, W[, 3]) or an image, its grid named ``grid_name``."""
        frames = _as_frames(frames)
        _text(grid_name=grid_name)
        geometry = Geometry(frames.shape[:3], grid_shape, pool, grid_name)
        return cls(frames, affinity_fn, geometry, name, label, trusted=trusted, detail=detail)

    def weights(self, t: int, y: int, x: int) -> np.ndarray:
        """The checked weights (T, h', w') of query (t, y, x) of the query grid."""
        return self._weights(self.geometry._cell(t, y, x))

    def _weights(self, query) -> np.ndarray:
        """A query known to be on the grid (a click): weights, checked unless ``trusted``."""
        w = self.affinity_fn(*query)
        return w if self.trusted else self.geometry.check_weights(w, "affinity_fn(t, y, x)")

    @classmethod
    def from_block(cls, block, features, frames, **kwargs) -> Source:
        """A ``NonLocalBlock`` (dim 2 or 3) on ``features`` (1, C, [T,] h, w) over ``frames``: rows
        of ``block.attention`` in float64 (float32 rounds a peaked softmax to 0), embedded once."""
        theta, phi, w_f = _embed64(block, features)
        if block.dim not in (2, 3):
            raise ValueError(f"block: expected dim 2 (images) or 3 (video), got dim={block.dim}")
        if features.shape[0] != 1:
            raise ValueError(f"features: expected (1, C, [T,] h, w), got {tuple(features.shape)}")
        frames, t_count = _as_frames(frames), features.shape[2] if block.dim == 3 else 1
        if frames.shape[0] != t_count:
            raise ValueError(f"features: expected T={frames.shape[0]} like frames, got T={t_count}")
        s = _check(block.pairwise, theta, phi, w_f=w_f, scale=block.scale)
        (h, w), pooled = features.shape[-2:], block.pooled_shape(features.shape[2:])[-2:]

        def fn(t, y, x):  # block.attention(x, query) without the embedding: one row i
            i = (t * h + y) * w + x
            row = _affinity(block.pairwise, theta[:, i : i + 1], phi, w_f, s)  # no gradients
            return row.reshape(-1, *pooled).cpu().numpy()  # (T, h', w'), one frame for dim 2

        kwargs.setdefault("name", f"{block.pairwise} non-local block")
        detail = f"{block.pairwise} block, C={block.in_channels}, C'={block.inter_channels}"
        return cls.create(frames, fn, grid_shape=features.shape[-2:], grid_name="features",
                          pool=(2, 2) if block.subsample else (1, 1), trusted=True,
                          detail=detail, **kwargs)  # fmt: skip

    @classmethod
    def from_nlm(cls, video, *, per_frame: bool = False, **kwargs) -> Source:
        """``nlm_weights`` of ``video`` (T, H, W[, 3]) or image (``per_frame``: its frame only)."""
        frames = _as_frames(video, "video")
        names = ("patch_size", "patch_distance", "h", "sigma")
        params = {k: kwargs.pop(k) for k in names if k in kwargs}
        channel = {"channel_axis": -1} if frames.ndim == 4 else {}
        per_frame = check_bool("per_frame", per_frame) or len(frames) == 1  # checked, padded here
        of_frame = [_weights_fn(f, **params, **channel) for f in frames] if per_frame else None
        of_video = None if per_frame else _weights_fn(frames, **params, **channel)

        def fn(t, y, x):
            if not per_frame:
                return of_video((t, y, x))
            w = np.zeros(frames.shape[:3])
            w[t] = of_frame[t]((y, x))
            return w

        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        kwargs.setdefault("name", f"non-local means ({shown})" if shown else "non-local means")
        kwargs.setdefault("label", "NLM weight w(i, j)")
        where = "in the query's frame" if per_frame else "over space and time"
        return cls.create(frames, fn, trusted=True, detail=f"search {where}", **kwargs)

    @classmethod
    def from_checkpoint(cls, path, batch, index: int = 0, *, block: int = 0, **kwargs) -> Source:
        """Block ``block`` (network order) of a spacetime checkpoint on video ``index`` of ``batch``
        (a ``VideoBatch`` of its task or, for "classify", a (T, H, W, 3) uint8 video)."""
        model, ckpt = load_checkpoint(path)
        if not isinstance(batch, VideoBatch | np.ndarray):
            raise TypeError(f"batch: expected a VideoBatch or a uint8 video, got {batch!r:.60}")
        blocks = model.nonlocal_blocks()
        if not blocks or model.variant != "spacetime":
            raise ValueError(f"path: expected a spacetime non-local model, got {model.variant!r}")
        number = check_int("block", block, minimum=0, maximum=len(blocks) - 1)
        one = batch
        if isinstance(batch, VideoBatch):
            one = batch[check_int("index", index, minimum=0, maximum=len(batch) - 1) :][:1]
        if ckpt.get("kind") == "track":
            if not isinstance(one, VideoBatch) or one.task != "track":
                raise ValueError(f"batch: expected a track VideoBatch, got {type(batch).__name__}")
            x, video = track_tensors(one.videos, one.masks, one.labels)[0], one.videos[0]
        else:
            video = one.videos[0] if isinstance(one, VideoBatch) else one
            x = to_tensor(video[None] if getattr(video, "ndim", 0) == 4 else video)
        nl, captured = blocks[number].block, {}
        handle = nl.register_forward_pre_hook(lambda _m, i: captured.update(x=i[0].detach()))
        try:
            with torch.no_grad():
                output = model(x)[0]
        finally:
            handle.remove()
        place = f"block {number} after {model.places[number]}"
        trained = f"trained, {place}" if len(blocks) > 1 else "trained"
        kwargs.setdefault("name", f"{nl.pairwise} ({trained})")
        source = cls.from_block(nl, captured["x"], video, **kwargs)
        source.model, source.checkpoint, source.output = model, ckpt, output
        source.detail = f"{Path(path).name}: {nl.pairwise}, {place}, task {ckpt.get('kind')}"
        return source


def _embed64(block: NonLocalBlock, features) -> tuple[Tensor, Tensor, Tensor | None]:
    """theta, the pooled phi and w_f of ``block`` on the first input of ``features``, float64."""
    check_type("block", block, NonLocalBlock, "an nlviz.NonLocalBlock")
    _check_tensor("features", features, block.dim + 2, "(B, C, *spatial)")
    if features.shape[1] != block.in_channels:
        raise ValueError(f"features: expected {block.in_channels} channels, got {features.shape}")
    block64 = copy.deepcopy(block).double().eval().requires_grad_(False)
    with torch.no_grad():
        return *block64.embed(features.detach().double()[:1])[:2], block64.w_f_vector


def attention_matrix(block: NonLocalBlock, features) -> np.ndarray:
    """Every query's weights f(x_i, x_j) / C(x) at once, float64 (N, N'), for one input."""
    theta, phi, w_f = _embed64(block, features)  # without gradients
    return affinity(block.pairwise, theta, phi, w_f=w_f, scale=block.scale)[0].numpy()


def cover(masks, objects: int, cell: int) -> np.ndarray:
    """Each object's share of each ``cell`` x ``cell`` cell: (T, H, W) masks (-1 background) ->
    (T, H / cell, W / cell, objects + 1), the background last."""
    masks, cell = as_array("masks", masks, (3,)), check_int("cell", cell, minimum=1)
    objects = check_int("objects", objects, minimum=0, maximum=255)
    lo, hi = masks.min(), masks.max()
    if masks.dtype.kind not in "iu" or lo < -1 or hi >= objects:
        raise ValueError(f"masks: expected ids in [-1, {objects}), got {masks.dtype} {lo}..{hi}")
    t, h, w = masks.shape
    if h % cell or w % cell:
        raise ValueError(f"cell: expected a divisor of the frames' {h} x {w}, got {cell}")
    onehot = np.eye(objects + 1)[np.where(masks < 0, objects, masks)]
    return onehot.reshape(t, h // cell, cell, w // cell, cell, objects + 1).mean((2, 4))


def masses(weights, cover_j) -> np.ndarray:
    """Each query's weight share per object: weights (Q, M), ``cover_j`` (M, K + 1) -> (Q, K + 1).
    Signed weights (dot product) count by their positive part, renormalised; none > 0: a NaN row."""
    weights, cover_j = as_array("weights", weights), as_array("cover_j", cover_j)
    if weights.shape[1] != cover_j.shape[0]:
        raise ValueError(f"cover_j: expected (M={weights.shape[1]}, K + 1), got {cover_j.shape}")
    positive = np.clip(weights, 0, None)
    total = positive.sum(1, keepdims=True)
    return np.where(total > 0, positive @ cover_j / np.where(total > 0, total, 1), np.nan)

"""Figure 3 of the paper, drawn: heatmaps of one query's weights over T frames, with arrows
from the query x_i to its top-k positions x_j (notebook 05).

Three grids meet here, and mixing them up is the question users keep asking of the official
code (video-nonlocal-net issues 71, 73; Non-local_pytorch issues 30, 37, 41):

- display pixels: the frames, (T, H, W); pixel (y, x) is centred at (y, x) as in ``imshow``.
- the query grid: the block's input features, (T, h, w); one cell covers a
  ``H / h`` x ``W / w`` block of pixels (the stride of the backbone). Queries i live here.
- the key grid: the pooled positions j, (T, h', w') with ``h' = ceil(h / 2)`` when the block
  subsamples (max-pool 1x2x2, ``ceil_mode=True``): key cell (y', x') covers query cells
  2y'..2y'+1 and 2x'..2x'+1, i.e. ``2 H / h`` pixels; the last one is cut by the frame edge
  when h is odd. The weights live here.

``FrameGeometry`` does these conversions; ``AffinityStrip`` draws one row of frames and keeps
its artists so that a new query only calls ``set_data`` (the arrows are the only artists
removed and re-created). ``affinity_strip``, ``figure3`` and ``save_figure`` are the static
helpers for slides and papers, re-exported by ``nlviz.plot``.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch
from matplotlib.ticker import MaxNLocator

from nlviz._checks import check_finite, check_int

WEIGHT_CMAP = "magma"


# --------------------------------------------------------------------------- input checks


def as_frames(frames, name: str = "frames") -> np.ndarray:
    """Frames as float (T, H, W) or (T, H, W, 3) (uint8 / 255); an image is a 1-frame video."""
    try:
        import torch

        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array, got {type(frames).__name__}")
    if not (np.issubdtype(frames.dtype, np.number) or frames.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {frames.dtype}")
    if frames.ndim == 2 or (frames.ndim == 3 and frames.shape[-1] == 3):
        frames = frames[None]  # one image, (H, W) or (H, W, 3), is a 1-frame video
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
        raise ValueError(
            f"{name}: expected (T, H, W), (T, H, W, 3), (H, W) or (H, W, 3), "
            f"got shape {frames.shape}"
        )
    if 0 in frames.shape:
        raise ValueError(f"{name}: expected no empty dimension, got shape {frames.shape}")
    frames = frames.astype(np.float64) / (255.0 if frames.dtype == np.uint8 else 1.0)
    check_finite(name, frames)
    return frames


def check_pair(name: str, value, minimum: int = 1) -> tuple[int, int]:
    """A pair of ints >= minimum, e.g. a grid shape or pool factors."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name}: expected a pair of integers, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(value))


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class FrameGeometry:
    """Maps between display pixels (T, H, W), the query grid (T, h, w) and the key grid.

    ``pool`` is the spatial pooling (ceil mode) of the key grid relative to the query grid:
    (2, 2) for a subsampling block, (1, 1) otherwise.
    """

    frames_shape: tuple[int, int, int]  # (T, H, W)
    grid_shape: tuple[int, int]  # (h, w) of the query grid
    pool: tuple[int, int] = (1, 1)

    @classmethod
    def create(cls, frames_shape, grid_shape=None, pool=(1, 1), *, grid_name="grid_shape"):
        t, height, width = (int(s) for s in frames_shape[:3])
        if grid_shape is None:
            grid_shape = (height, width)
        h, w = check_pair(grid_name, grid_shape)
        pool = check_pair("pool", pool)
        if height * w != width * h:
            raise ValueError(
                f"{grid_name}: expected the aspect of the frames, {height}x{width} (H x W), "
                f"got a {h}x{w} grid: frames and features disagree in aspect"
            )
        if h > height:
            raise ValueError(
                f"{grid_name}: expected a grid no finer than the frames {height}x{width}, "
                f"got {h}x{w}"
            )
        return cls((t, height, width), (h, w), pool)

    @property
    def stride(self) -> tuple[float, float]:
        """Display pixels per query cell, (sy, sx)."""
        return (
            self.frames_shape[1] / self.grid_shape[0],
            self.frames_shape[2] / self.grid_shape[1],
        )

    @property
    def key_shape(self) -> tuple[int, int, int]:
        """(T, h', w'): the shape the weights must have."""
        (h, w), (py, px) = self.grid_shape, self.pool
        return (self.frames_shape[0], math.ceil(h / py), math.ceil(w / px))

    @property
    def key_cell(self) -> tuple[float, float]:
        """Display pixels per key cell, (cy, cx)."""
        return (self.stride[0] * self.pool[0], self.stride[1] * self.pool[1])

    def cell_of_pixel(self, py: float, px: float) -> tuple[int, int]:
        """Query cell (y, x) holding display point (py, px) (imshow coords: pixel centres)."""
        sy, sx = self.stride
        h, w = self.grid_shape
        y = math.floor((py + 0.5) / sy + 1e-9)
        x = math.floor((px + 0.5) / sx + 1e-9)
        return min(max(y, 0), h - 1), min(max(x, 0), w - 1)

    def contains_pixel(self, py: float, px: float) -> bool:
        _, height, width = self.frames_shape
        return -0.5 <= py <= height - 0.5 and -0.5 <= px <= width - 0.5

    def pixel_of_cell(self, y: float, x: float) -> tuple[float, float]:
        """Display coordinates of the centre of query cell (y, x)."""
        sy, sx = self.stride
        return (y + 0.5) * sy - 0.5, (x + 0.5) * sx - 0.5

    def pixel_of_key(self, yk, xk) -> tuple[np.ndarray, np.ndarray]:
        """Display centres of key cells (y', x'); an odd size's last cell is cut at the edge."""
        _, height, width = self.frames_shape
        cy, cx = self.key_cell
        yk, xk = np.asarray(yk, float), np.asarray(xk, float)
        y0, x0 = yk * cy, xk * cx
        y1, x1 = np.minimum(y0 + cy, height), np.minimum(x0 + cx, width)
        return (y0 + y1) / 2 - 0.5, (x0 + x1) / 2 - 0.5

    @property
    def key_extent(self) -> tuple[float, float, float, float]:
        """imshow extent of the key grid in display coordinates (may overhang the frame)."""
        _, hk, wk = self.key_shape
        cy, cx = self.key_cell
        return (-0.5, -0.5 + wk * cx, -0.5 + hk * cy, -0.5)

    def check_query(self, query) -> tuple[int, int, int]:
        """(t, y, x) on the query grid, or ValueError naming ``query``."""
        if isinstance(query, str | bytes) or not isinstance(query, Sequence) or len(query) != 3:
            raise ValueError(f"query: expected (t, y, x), got {query!r}")
        t, y, x = (check_int(f"query[{i}]", q) for i, q in enumerate(query))
        tmax, (h, w) = self.frames_shape[0], self.grid_shape
        if not (0 <= t < tmax and 0 <= y < h and 0 <= x < w):
            raise ValueError(
                f"query: expected 0 <= t < {tmax}, 0 <= y < {h}, 0 <= x < {w} "
                f"(the query grid), got (t, y, x) = ({t}, {y}, {x})"
            )
        return t, y, x

    def check_weights(self, weights, name: str = "weights") -> np.ndarray:
        """The weights as a finite float array of ``key_shape``, or ValueError."""
        try:
            import torch

            if isinstance(weights, torch.Tensor):
                weights = weights.detach().cpu().numpy()
        except ImportError:  # pragma: no cover
            pass
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim == 4 and weights.shape[0] == 1:
            weights = weights[0]  # a batch of one, as NonLocalBlock.attention returns
        if weights.ndim == 2 and self.frames_shape[0] == 1:
            weights = weights[None]
        if weights.shape != self.key_shape:
            raise ValueError(
                f"{name}: expected shape (T', h', w') = {self.key_shape} for frames "
                f"{self.frames_shape} and a {self.grid_shape} grid pooled by {self.pool}, "
                f"got {weights.shape}"
            )
        check_finite(name, weights)
        return weights


def top_k(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, y', x', weight) of the k largest weights, largest first (ties by position)."""
    flat = weights.reshape(-1)
    k = min(k, flat.size)
    if k == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, empty, np.zeros(0)
    idx = np.argpartition(-flat, k - 1)[:k]
    idx = idx[np.lexsort((idx, -flat[idx]))]
    t, y, x = np.unravel_index(idx, weights.shape)
    return t, y, x, flat[idx]


# --------------------------------------------------------------------------- drawing


def heat_cmap(name: str = WEIGHT_CMAP, alpha: float = 0.85) -> ListedColormap:
    """``name`` with opacity rising from 0 (low weights: the frame shows as it is) to
    ``alpha`` (high weights), fast at first (square root) so that middle weights show."""
    colours = matplotlib.colormaps[name](np.linspace(0, 1, 256))
    colours[:, 3] = alpha * np.sqrt(np.linspace(0, 1, 256))
    return ListedColormap(colours, name=f"{name}_overlay")


def _gray_limits(frames: np.ndarray) -> tuple[float, float]:
    lo, hi = float(frames.min()), float(frames.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


class AffinityStrip:
    """One row of T frame Axes with a weight heatmap, a query marker and top-k arrows.

    Artists are made once; ``update`` changes their data (``set_data``), and only the arrows
    are removed and re-created.
    """

    def __init__(
        self,
        fig: Figure,
        axes: Sequence,
        frames: np.ndarray,
        geometry: FrameGeometry,
        *,
        cmap: str = WEIGHT_CMAP,
        alpha: float = 0.85,
        arrow_color: str = "#00e5ff",
    ) -> None:
        self.fig, self.axes, self.geometry = fig, list(axes), geometry
        self.arrow_color = arrow_color
        self.arrows: list[ConnectionPatch] = []
        t_count, height, width = geometry.frames_shape
        lo, hi = _gray_limits(frames)
        self.heat, self.markers, self.targets = [], [], []
        blank = np.zeros(geometry.key_shape[1:])
        for t, ax in enumerate(self.axes):
            frame = frames[t]
            if frame.ndim == 3:  # RGB in [0, 1] as is, anything else stretched to it
                rgb = frame if lo >= 0 and hi <= 1 else (frame - lo) / (hi - lo)
                ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
            else:
                ax.imshow(frame, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            im = ax.imshow(
                blank,
                cmap=heat_cmap(cmap, alpha),
                norm=Normalize(0.0, 1.0),
                extent=geometry.key_extent,
                interpolation="nearest",
            )
            self.heat.append(im)
            (marker,) = ax.plot([], [], marker="*", ms=13, color="#39ff14", mec="black", ls="")
            (dots,) = ax.plot([], [], marker="o", ms=3, color=arrow_color, ls="")
            self.markers.append(marker)
            self.targets.append(dots)
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            if t == 0:  # display pixel coordinates, labelled once (tick text costs draw time)
                ax.tick_params(labelsize=7, length=2)
                ax.xaxis.set_major_locator(MaxNLocator(3, integer=True))
                ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
                ax.set_xlabel("x (pixel)", fontsize=8, labelpad=1)
                ax.set_ylabel("y (pixel)", fontsize=8, labelpad=1)
            else:
                ax.xaxis.set_visible(False)
                ax.yaxis.set_visible(False)
            ax.set_title(f"t={t}", fontsize=9)

    def update(self, weights: np.ndarray, query, k: int, shared_scale: bool) -> tuple:
        """Draw ``weights`` (T', h', w') for ``query`` (t, y, x), arrows to the top-k keys
        (none to keys tied at the minimum weight: a constant map ranks nothing).

        Returns the colour range (vmin, vmax) a colorbar should show: all frames' when
        ``shared_scale``, else the query frame's (each frame then has its own range).
        """
        tq, yq, xq = query
        geo = self.geometry
        lo, hi = float(weights.min()), float(weights.max())
        if hi <= lo:
            hi = lo + 1.0  # a constant map: the bottom colour, a readable colorbar
        for t, (im, marker) in enumerate(zip(self.heat, self.markers, strict=True)):
            im.set_data(weights[t])
            if shared_scale:
                im.set_clim(lo, hi)
            else:
                wlo, whi = float(weights[t].min()), float(weights[t].max())
                im.set_clim(wlo, whi if whi > wlo else wlo + 1.0)
            marker.set_data([], [])
            self.axes[t].title.set_color("black")
            self.axes[t].title.set_fontweight("normal")
        qy, qx = geo.pixel_of_cell(yq, xq)
        self.markers[tq].set_data([qx], [qy])
        self.axes[tq].title.set_color("#c00000")
        self.axes[tq].title.set_fontweight("bold")
        # Arrows: remove the old ones, draw query -> top-k key cells (Figure 3).
        for arrow in self.arrows:
            arrow.remove()
        self.arrows = []
        tt, yk, xk, ww = top_k(weights, k)
        keep = ww > weights.min()  # ties at the minimum rank nothing (e.g. an all-zero map)
        tt, yk, xk, ww = tt[keep], yk[keep], xk[keep], ww[keep]
        ty, tx = geo.pixel_of_key(yk, xk)
        for t, dots in enumerate(self.targets):
            sel = tt == t
            dots.set_data(tx[sel], ty[sel])
        # Opacity and width by rank, strongest first: softmax weights are often so peaked that
        # a scale by weight would leave all but one arrow invisible.
        ranks = np.linspace(1.0, 0.0, len(ww)) if len(ww) > 1 else np.ones(len(ww))
        for t, y, x, rank in zip(tt, ty, tx, ranks, strict=True):
            strength = 0.45 + 0.55 * float(rank)
            arrow = ConnectionPatch(
                xyA=(qx, qy),
                coordsA="data",
                axesA=self.axes[tq],
                xyB=(x, y),
                coordsB="data",
                axesB=self.axes[int(t)],
                arrowstyle="-|>",
                mutation_scale=9,
                color=self.arrow_color,
                lw=0.7 + 0.9 * strength,
                alpha=float(strength),
                zorder=5,
            )
            self.fig.add_artist(arrow)
            self.arrows.append(arrow)
        return self.heat[tq].get_clim()


# Margins: fractions of the width, inches of the height (titles and tick labels have a size
# in inches, whatever the figure's height).
_LEFT, _RIGHT_CB, _RIGHT, _GAP = 0.08, 0.90, 0.98, 0.012
_TOP_IN, _BOTTOM_IN, _ROW_GAP_IN, _TITLE_LINE_IN = 0.55, 0.45, 0.65, 0.2


def layout_rows(
    fig: Figure, n_rows: int, n_cols: int, *, colorbar: bool = True, title_lines: int = 1
):
    """Axes for ``n_rows`` strips of ``n_cols`` frames and a colorbar Axes per row, below a
    title of ``title_lines`` lines.

    Fixed positions (no constrained layout): a redraw does not re-solve the layout.
    """
    fig_h = fig.get_size_inches()[1]
    top_in = _TOP_IN + _TITLE_LINE_IN * (title_lines - 1)
    right = _RIGHT_CB if colorbar else _RIGHT
    axes_h = (fig_h - top_in - _BOTTOM_IN - _ROW_GAP_IN * (n_rows - 1)) / n_rows
    col_w = (right - _LEFT - _GAP * (n_cols - 1)) / n_cols
    rows, bars = [], []
    for r in range(n_rows):
        top = fig_h - top_in - r * (axes_h + _ROW_GAP_IN)
        y0, h = (top - axes_h) / fig_h, axes_h / fig_h
        rows.append(
            [fig.add_axes((_LEFT + c * (col_w + _GAP), y0, col_w, h)) for c in range(n_cols)]
        )
        bars.append(fig.add_axes((right + 0.015, y0, 0.012, h)) if colorbar else None)
    return rows, bars


def strip_figsize(
    frames_shape, n_rows: int = 1, width: float = 10.5, title_lines: int = 1
) -> tuple[float, float]:
    """(width, height) in inches that makes the frame Axes of ``layout_rows`` keep the frames'
    aspect; ``width`` fits a notebook (10.5 in = 1050 pixels at 100 dpi); few frames are at
    most 3.5 in high."""
    t, height, frame_width = frames_shape[:3]
    share = (_RIGHT_CB - _LEFT - _GAP * (t - 1)) / t
    axes_w = min(width * share, 3.5 * frame_width / height)
    axes_h = axes_w * height / frame_width
    top_in = _TOP_IN + _TITLE_LINE_IN * (title_lines - 1)
    fig_h = top_in + _BOTTOM_IN + n_rows * axes_h + (n_rows - 1) * _ROW_GAP_IN
    return max(axes_w / share, 6.5), fig_h  # >= 6.5 in for the title; aspect centres the frame


# --------------------------------------------------------------------------- static helpers


def affinity_strip(
    frames,
    weights,
    query: Sequence[int],
    *,
    grid_shape: Sequence[int] | None = None,
    pool: Sequence[int] = (1, 1),
    k: int = 20,
    shared_scale: bool = True,
    title: str | None = None,
    weight_label: str = "weight f(x_i, x_j) / C(x)",
) -> tuple[Figure, list]:
    """Figure-3 strip for one query: T frames, the weights as heatmaps, arrows to the top-k.

    frames (T, H, W[, 3]); weights (T, h', w') on the key grid; query (t, y, x) on the query
    grid ``grid_shape`` (default: the pixels); ``pool`` the key grid's pooling, (2, 2) for a
    subsampling block. Returns ``(fig, axes)``: a ``matplotlib.figure.Figure`` (not managed
    by pyplot, so it shows as a static image even under ``%matplotlib widget``) and its T
    frame Axes.
    """
    frames = as_frames(frames)
    geo = FrameGeometry.create(frames.shape, grid_shape, pool)
    query = geo.check_query(query)
    row = (frames, geo, geo.check_weights(weights), query, weight_label, f"query {query}")
    fig, rows = _strips([row], k, shared_scale, title)
    return fig, rows[0]


def _check_explorers(explorers) -> list:
    from nlviz.explorer import AffinityExplorer

    if isinstance(explorers, AffinityExplorer):
        explorers = [explorers]
    if isinstance(explorers, str) or not isinstance(explorers, Sequence) or not explorers:
        raise TypeError(f"explorer: expected an AffinityExplorer, got {type(explorers).__name__}")
    for e in explorers:
        if not isinstance(e, AffinityExplorer):
            raise TypeError(f"explorer: expected an AffinityExplorer, got {type(e).__name__}")
    return list(explorers)


def figure3(
    explorer,
    queries: Sequence[Sequence[int]],
    *,
    k: int = 20,
    shared_scale: bool = True,
    title: str | None = None,
) -> tuple[Figure, list[list]]:
    """The paper's Figure 3 for an ``AffinityExplorer``: one row of T frames per query
    (t, y, x) of its query grid, arrows to the top-k weights.

    Returns ``(fig, rows)``, rows[r] the T frame Axes of query r.
    """
    (explorer,) = _check_explorers(explorer)
    if isinstance(queries, str) or not isinstance(queries, Sequence) or len(queries) == 0:
        raise ValueError(f"queries: expected a list of (t, y, x), got {queries!r}")
    rows = []
    for q in queries:
        q = explorer.geometry.check_query(q)
        weights = explorer.affinity(*q)
        rows.append(
            (explorer.frames, explorer.geometry, weights, q, explorer.weight_label, f"query {q}")
        )
    title = title or f"{explorer.source}: top-{k} weights of each query across frames"
    return _strips(rows, k, shared_scale, title)


def compare_sources(
    explorers: Sequence,
    query: Sequence[int],
    *,
    k: int = 20,
    shared_scale: bool = True,
    title: str | None = None,
) -> tuple[Figure, list[list]]:
    """One query under several sources, one row each (e.g. the four pairwise functions, or
    non-local means vs a learned block).

    ``query`` (t, y, x) is on the first explorer's query grid; it reaches the others as the
    display pixel at its centre (their grids may differ). All must show frames of one shape.
    Returns ``(fig, rows)``, rows[r] the T frame Axes of explorer r.
    """
    explorers = _check_explorers(explorers)
    first = explorers[0]
    t, y, x = first.geometry.check_query(query)
    py, px = first.geometry.pixel_of_cell(y, x)
    rows = []
    for e in explorers:
        if e.geometry.frames_shape != first.geometry.frames_shape:
            raise ValueError(
                f"explorers: expected frames of shape {first.geometry.frames_shape} in every "
                f"explorer, got {e.geometry.frames_shape}"
            )
        q = (t, *e.geometry.cell_of_pixel(py, px))
        rows.append((e.frames, e.geometry, e.affinity(*q), q, e.weight_label, e.source))
    title = title or f"one query, pixel (t, y, x) = ({t}, {py:.0f}, {px:.0f}), top-{k} weights"
    return _strips(rows, k, shared_scale, title)


def _strips(rows, k, shared_scale, title):
    """rows: (frames, geometry, weights, query, weight label, row label) each."""
    k = check_int("k", k, minimum=0)
    if not isinstance(shared_scale, bool):
        raise TypeError(f"shared_scale: expected True or False, got {shared_scale!r}")
    frames_shape = rows[0][1].frames_shape
    title = title or f"top-{k} weights of the query across frames"
    lines = title.count("\n") + 1
    fig = Figure(figsize=strip_figsize(frames_shape, len(rows), title_lines=lines))
    axes_rows, bars = layout_rows(fig, len(rows), frames_shape[0], title_lines=lines)
    for axes, bar, (frames, geo, w, q, label, row_label) in zip(axes_rows, bars, rows, strict=True):
        strip = AffinityStrip(fig, axes, frames, geo)
        strip.update(w, q, k, shared_scale)
        cb = fig.colorbar(strip.heat[q[0]], cax=bar)
        cb.set_label(label if shared_scale else f"{label}\n(scale of frame t={q[0]})", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        axes[0].set_ylabel(f"{textwrap.fill(row_label, 24)}\ny (pixel)", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig, axes_rows


def save_figure(fig: Figure, path, *, overwrite: bool = False, dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` (.png or .pdf) atomically; refuse to replace a file unless
    ``overwrite=True``. Returns the path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path: expected a str or Path, got {type(path).__name__}")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf"):
        raise ValueError(f"path: expected a .png or .pdf file name, got {str(path)!r}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise ValueError(f"path: the folder {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

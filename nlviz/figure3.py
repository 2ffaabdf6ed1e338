"""Figure 3 of the paper, drawn: one query's weights over T frames and its top-k positions j
(notebook 05). ``Strip`` draws one source's row of frames; the widget (``nlviz.explorer``) and
the static figures here share it, so both show the same picture and colours.

In every frame the query's position is marked (a filled star in its own frame, a hollow one
elsewhere) and its top-k positions j in that frame are circles with an area proportional to
the weight, joined to the star by arrows that stay inside the frame. The weights are drawn on a
log scale by default (``floor`` times the largest weight is transparent), or linear, or on a
signed scale centred on 0 (the dot product, Eq. 4, has negative weights).
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from nlviz.attention import Source, as_frames
from nlviz.plot import SCALES, color_scale, weight_cmap
from nlviz.utils import check_bool, check_int

__all__ = [
    "SCALES",
    "top_k",
    "Strip",
    "colorbar",
    "layout",
    "figsize",
    "affinity_strip",
    "figure3",
    "compare_sources",
]

ARROW = "#00e5ff"


def top_k(weights: np.ndarray, k: int):
    """(t, y', x', weight) of the k largest weights, largest first, none tied at the minimum."""
    flat = weights.reshape(-1)
    idx = np.argsort(-flat, kind="stable")[: min(k, flat.size)]
    idx = idx[flat[idx] > flat.min()]  # a constant map (e.g. all zero) ranks nothing
    return (*np.unravel_index(idx, weights.shape), flat[idx])


class Strip:
    """One source's frames (``axes``, one per frame) with the weight heatmaps, the query and
    its top-k positions j. ``update`` redraws a new query; artists are reused."""

    def __init__(self, fig: Figure, axes, source: Source) -> None:
        self.fig, self.axes, self.source, self.geometry = fig, list(axes), source, source.geometry
        frames, (_, height, width) = source.frames, source.geometry.frames_shape
        lo, hi = float(frames.min()), float(frames.max())
        self.heat, self.stars, self.circles, self.arrows = [], [], [], []
        for t, ax in enumerate(self.axes):
            if frames.ndim == 4:
                rgb = frames[t] if lo >= 0 and hi <= 1 else (frames[t] - lo) / max(hi - lo, 1e-12)
                ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
            else:
                ax.imshow(
                    frames[t],
                    cmap="gray",
                    vmin=lo,
                    vmax=max(hi, lo + 1e-12),
                    interpolation="nearest",
                )
            blank = np.zeros(source.geometry.j_shape[1:])
            self.heat.append(
                ax.imshow(
                    blank,
                    cmap=weight_cmap(overlay=True),
                    extent=source.geometry.j_extent,
                    interpolation="nearest",
                )
            )
            self.circles.append(
                ax.scatter(
                    [], [], s=[], facecolors="none", edgecolors=ARROW, linewidths=1.2, zorder=4
                )
            )
            self.stars.append(
                ax.plot([], [], marker="*", ms=13, mec="black", mew=0.8, ls="", zorder=6)[0]
            )
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])

    def update(
        self, weights: np.ndarray, query, k: int, scale: str = "auto", shared_scale: bool = True
    ):
        """Draw ``weights`` (T, h', w') of ``query`` (t, y, x); returns the colour norm of the
        query's frame (all frames' if ``shared_scale``) and the scale used."""
        tq, yq, xq = query
        norm, used, _ = color_scale(weights, scale)
        for t, im in enumerate(self.heat):
            im.set_cmap(weight_cmap(used == "signed", overlay=True))
            im.set_norm(norm if shared_scale else color_scale(weights[t], used)[0])
            im.set_data(np.ma.masked_less_equal(weights[t], 0) if used == "log" else weights[t])
        qy, qx = self.geometry.pixel_of_cell(yq, xq)
        for t, (ax, star) in enumerate(zip(self.axes, self.stars, strict=True)):
            star.set_data([qx], [qy])
            star.set_markerfacecolor("#39ff14" if t == tq else "none")
            star.set_markeredgecolor("black" if t == tq else "#39ff14")
            total = np.abs(weights).sum() or 1.0
            ax.set_title(f"t={t}: {100 * np.abs(weights[t]).sum() / total:.0f}%", fontsize=9,
                         color="#c00000" if t == tq else "black", fontweight="bold" if t == tq else "normal")  # fmt: skip
        for arrow in self.arrows:
            arrow.remove()
        self.arrows = []
        tt, yj, xj, ww = top_k(np.abs(weights) if used == "signed" else weights, k)
        ty, tx = self.geometry.pixel_of_j(yj, xj)
        size = 300 * np.abs(ww) / (np.abs(ww).max() if len(ww) else 1.0)
        for t, circles in enumerate(self.circles):
            sel = tt == t
            circles.set_offsets(np.c_[tx[sel], ty[sel]] if sel.any() else np.empty((0, 2)))
            circles.set_sizes(size[sel])
        for t, y, x, s in zip(tt, ty, tx, size, strict=True):  # largest weight first
            style = {"arrowstyle": "-|>", "color": ARROW, "lw": 0.6 + 1.2 * s / 300,
                     "alpha": 0.5 + 0.5 * s / 300, "shrinkA": 4, "shrinkB": 3}  # fmt: skip
            self.arrows.append(self.axes[t].annotate("", (x, y), (qx, qy), arrowprops=style))
        return self.heat[tq].norm, used


def colorbar(fig: Figure, cax, norm, scale: str, label: str):
    """The colour bar of a strip: the opaque colours of the heatmaps, the scale in the label."""
    note = color_scale(np.ones(1), scale)[2] if scale != "signed" else " (signed)"
    bar = fig.colorbar(ScalarMappable(norm, weight_cmap(scale == "signed")), cax=cax)
    bar.set_label(label + note, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return bar


def layout(fig: Figure, n_rows: int, n_frames: int, ncols: int):
    """For each of ``n_rows`` sources: a list of ``n_frames`` frame Axes (``ncols`` per line)
    and one colour-bar Axes; fixed positions, so a redraw never re-solves a layout."""
    lines = -(-n_frames // ncols)
    width, height = fig.get_size_inches()
    top, bottom, gap = 0.6 / height, 0.15 / height, 0.35 / height
    cell_h = (1 - top - bottom - gap * (n_rows * lines - 1)) / (n_rows * lines)
    cell_w = (0.88 - 0.04) / ncols
    rows, bars = [], []
    for r in range(n_rows):
        axes = []
        for f in range(n_frames):
            line = r * lines + f // ncols
            y0 = 1 - top - (line + 1) * cell_h - line * gap
            axes.append(fig.add_axes((0.04 + (f % ncols) * cell_w, y0, cell_w * 0.96, cell_h)))
        y_last = 1 - top - (r + 1) * lines * cell_h - ((r + 1) * lines - 1) * gap
        rows.append(axes)
        bars.append(fig.add_axes((0.9, y_last, 0.015, lines * cell_h + (lines - 1) * gap)))
    return rows, bars


def figsize(frames_shape, n_rows: int = 1, ncols: int | None = None, width: float = 10.5):
    """(width, height) in inches that keeps the frames' aspect, frames at most 3 in wide."""
    t, height, frame_w = frames_shape[:3]
    ncols = ncols or t
    lines = -(-t // ncols)
    cell_w = min(width * 0.84 / ncols, 3.0)
    fig_w = max(cell_w * ncols / 0.84, 6.5)
    return fig_w, 0.75 + n_rows * lines * (cell_w * height / frame_w + 0.35)


def sources_of(obj) -> list[Source]:
    items = getattr(obj, "sources", obj)  # an explorer's sources, or sources
    items = [items] if isinstance(items, Source) else items
    if isinstance(items, str) or not isinstance(items, list | tuple) or not items:
        raise TypeError(
            f"explorer: expected an AffinityExplorer or Source(s), got {type(obj).__name__}"
        )
    for s in items:
        if not isinstance(s, Source):
            raise TypeError(
                f"explorer: expected an AffinityExplorer or Source(s), got {type(s).__name__}"
            )
    return list(items)


def _figure(rows, k, scale, shared_scale, title, ncols):
    """rows: (source, query) each. A static Figure (not managed by pyplot) and its frame Axes."""
    k = check_int("k", k, minimum=0, maximum=1000)
    check_bool("shared_scale", shared_scale)
    shape = rows[0][0].geometry.frames_shape
    ncols = check_int("ncols", ncols or min(shape[0], 8), minimum=1)
    fig = Figure(figsize=figsize(shape, len(rows), ncols))
    axes_rows, bars = layout(fig, len(rows), shape[0], ncols)
    for axes, bar, (source, query) in zip(axes_rows, bars, rows, strict=True):
        norm, used = Strip(fig, axes, source).update(
            source.weights(*query), query, k, scale, shared_scale
        )
        colorbar(fig, bar, norm, used, source.label)
        axes[0].set_ylabel(textwrap.fill(f"{source.name}, query {query}", 28), fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig, axes_rows


def affinity_strip(frames, weights, query, *, grid_shape=None, pool=(1, 1), k=20, scale="auto",
                   shared_scale=True, title=None, ncols=None):  # fmt: skip
    """Figure-3 strip of given ``weights`` (T, h', w') for ``query`` (t, y, x) of the query grid
    ``grid_shape`` (default: the pixels); returns ``(fig, axes)`` (one Axes per frame)."""
    source = Source.create(
        as_frames(frames), lambda t, y, x: weights, grid_shape=grid_shape, pool=pool
    )
    source.geometry.check_weights(weights)
    query = source.geometry.check_query(query)
    fig, rows = _figure([(source, query)], k, scale, shared_scale, title or f"query {query}", ncols)
    return fig, rows[0]


def figure3(explorer, queries, *, k=20, scale="auto", shared_scale=True, title=None, ncols=None):
    """The paper's Figure 3: one row of frames per query (t, y, x) of one source (an
    ``AffinityExplorer``'s first, or a ``Source``). Returns ``(fig, rows)``."""
    source = sources_of(explorer)[0]
    if isinstance(queries, str) or not isinstance(queries, list | tuple) or not queries:
        raise ValueError(f"queries: expected a list of (t, y, x), got {queries!r}")
    rows = [(source, source.geometry.check_query(q)) for q in queries]
    title = title or f"{source.name}: top-{k} positions j of each query"
    return _figure(rows, k, scale, shared_scale, title, ncols)


def compare_sources(
    explorers, query, *, k=20, scale="auto", shared_scale=True, title=None, ncols=None
):
    """One query under several sources, one row each; ``query`` is on the first source's grid
    and reaches the others as the display pixel at its centre. Returns ``(fig, rows)``."""
    sources = [
        s
        for e in (explorers if isinstance(explorers, list | tuple) else [explorers])
        for s in sources_of(e)
    ]
    first = sources[0].geometry
    t, y, x = first.check_query(query)
    py, px = first.pixel_of_cell(y, x)
    for s in sources:
        if s.geometry.frames_shape != first.frames_shape:
            raise ValueError(
                f"explorers: expected frames {first.frames_shape} in every source, got {s.geometry.frames_shape}"
            )
    rows = [(s, (t, *s.geometry.cell_of_pixel(py, px))) for s in sources]
    title = title or f"one query, pixel (t, y, x) = ({t}, {py:.0f}, {px:.0f}), top-{k} weights"
    return _figure(rows, k, scale, shared_scale, title, ncols)

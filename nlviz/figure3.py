"""Figure 3 of the paper, drawn: one query's weights over T frames and its top-k positions j
(notebook 05). ``Strip`` draws one source's frames; the widget (``nlviz.explorer``) and the
static ``figure3`` share it, so both show the same picture in the same colours.

In every frame the query's position is a star (filled in its own frame, hollow elsewhere) and
the query's top-k positions j in that frame are circles of area proportional to the weight,
joined to the star by arrows that stay inside their frame. Positions with less than ``FLOOR``
(1e-3) times the largest weight are not marked: a peaked softmax marks only what one can see.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from nlviz.attention import Source, as_frames
from nlviz.plot import FLOOR, SCALES, color_scale, weight_cmap
from nlviz.utils import check_bool, check_int

__all__ = ["SCALES", "top_k", "Strip", "colorbar", "frame_grid", "sources_of", "figure3",
           "compare_sources", "affinity_strip"]  # fmt: skip

ARROW, STAR = "#00e5ff", "#39ff14"
NEAREST = {"interpolation": "nearest"}


def top_k(weights: np.ndarray, k: int):
    """(t, y', x', weight) of the k largest weights, largest first; none tied at the minimum."""
    flat = weights.reshape(-1)
    idx = np.argsort(-flat, kind="stable")[: min(k, flat.size)]
    idx = idx[flat[idx] > flat.min()]  # a constant map (e.g. all zero) ranks nothing
    return (*np.unravel_index(idx, weights.shape), flat[idx])


class Strip:
    """The frames of one source (``axes``, one per frame): heatmaps of the weights, the query
    and its top-k positions j. ``update`` draws a new query, reusing the artists."""

    def __init__(self, fig: Figure, axes, source: Source) -> None:
        self.fig, self.axes, self.source, self.geometry = fig, list(axes), source, source.geometry
        frames, (_, height, width) = source.frames, source.geometry.frames_shape
        lo, hi = float(frames.min()), max(float(frames.max()), float(frames.min()) + 1e-12)
        shown = frames if frames.ndim == 3 or (lo >= 0 and hi <= 1) else (frames - lo) / (hi - lo)
        grey = {"cmap": "gray", "vmin": lo, "vmax": hi} if frames.ndim == 3 else {}
        blank, extent = np.zeros(self.geometry.j_shape[1:]), self.geometry.j_extent
        self.heat, self.stars, self.circles, self.arrows = [], [], [], []
        for t, ax in enumerate(self.axes):  # colour in [0, 1] as it is, else stretched to it
            ax.imshow(np.clip(shown[t], 0, 1) if frames.ndim == 4 else shown[t], **grey, **NEAREST)
            heat = ax.imshow(blank, cmap=weight_cmap(overlay=True), extent=extent, **NEAREST)
            self.heat.append(heat)
            self.circles.append(ax.scatter([], [], s=[], fc="none", ec=ARROW, lw=1.2, zorder=4))
            self.stars.append(ax.plot([], [], marker="*", ms=13, mew=0.8, ls="", zorder=6)[0])
            ax.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), xticks=[], yticks=[])

    def update(self, weights: np.ndarray, query, k: int, scale="auto", shared_scale=True):
        """Draw ``weights`` (T, h', w') of ``query`` (t, y, x). Returns the norm of the
        query's frame (of all frames if ``shared_scale``) and the scale used."""
        tq, yq, xq = query
        norm, used, _ = color_scale(weights, scale)
        qy, qx = self.geometry.pixel_of_cell(yq, xq)
        total = np.abs(weights).sum() or 1.0
        for t, (ax, im, star) in enumerate(zip(self.axes, self.heat, self.stars, strict=True)):
            im.set(cmap=weight_cmap(used == "signed", overlay=True))
            im.set_norm(norm if shared_scale else color_scale(weights[t], used)[0])
            im.set_data(np.ma.masked_less_equal(weights[t], 0) if used == "log" else weights[t])
            star.set(
                data=([qx], [qy]), mfc=STAR if t == tq else "none", mec="black" if t == tq else STAR
            )
            share = 100 * np.abs(weights[t]).sum() / total  # of all the weight, in this frame
            ax.set_title(
                f"t={t}: {share:.0f}%", fontsize=9, color="#c00000" if t == tq else "black"
            )
        for arrow in self.arrows:
            arrow.remove()
        tt, yj, xj, ww = top_k(np.abs(weights) if used == "signed" else weights, k)
        keep = np.abs(ww) >= FLOOR * np.abs(ww).max(initial=0)  # marks only weights one can see
        tt, yj, xj, ww = tt[keep], yj[keep], xj[keep], ww[keep]
        ty, tx = self.geometry.pixel_of_j(yj, xj)
        size = 300 * np.abs(ww) / (np.abs(ww).max() if len(ww) else 1.0)
        for t, circles in enumerate(self.circles):
            circles.set_offsets(np.c_[tx[tt == t], ty[tt == t]].reshape(-1, 2))
            circles.set_sizes(size[tt == t])
        self.arrows = []
        for t, y, x, s in zip(tt, ty, tx, size / 300, strict=True):  # largest weight first
            style = {"arrowstyle": "-|>", "color": ARROW, "lw": 0.6 + 1.2 * s, "alpha": 0.5 + s / 2}
            self.arrows.append(self.axes[t].annotate("", (x, y), (qx, qy), arrowprops=style))
        return self.heat[tq].norm, used


def colorbar(fig: Figure, cax, norm, scale: str, label: str):
    """A strip's colour bar: the heatmaps' colours, opaque; the scale named in the label."""
    note = {"signed": " (signed)", "linear": ""}.get(scale, color_scale(np.ones(1), "log")[2])
    bar = fig.colorbar(ScalarMappable(norm, weight_cmap(scale == "signed")), cax=cax)
    bar.set_label(label + note, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return bar


def frame_grid(fig: Figure, frames_shape, n_rows: int, ncols: int):
    """Size ``fig`` and give it, per source row, its frame Axes (``ncols`` to a line) and a
    colour-bar Axes. A gridspec without constrained layout: redraws solve nothing."""
    t, height, width = frames_shape[:3]
    lines = -(-t // ncols)
    cell = min(9.0 / ncols, 3.0)
    fig.set_size_inches(
        max(cell * ncols + 1.5, 6.5), 0.8 + n_rows * lines * (cell * height / width + 0.3)
    )
    top, bottom = 1 - 0.55 / fig.get_size_inches()[1], 0.1 / fig.get_size_inches()[1]
    box = {"left": 0.06, "right": 0.92, "top": top, "bottom": bottom, "wspace": 0.06, "hspace": 0.3}
    gs = fig.add_gridspec(n_rows * lines, ncols + 1, width_ratios=[1] * ncols + [0.05], **box)
    rows = [
        [fig.add_subplot(gs[r * lines + f // ncols, f % ncols]) for f in range(t)]
        for r in range(n_rows)
    ]
    return rows, [fig.add_subplot(gs[r * lines : (r + 1) * lines, ncols]) for r in range(n_rows)]


def sources_of(obj) -> list[Source]:
    """The sources of an explorer, or a Source, or a list of them."""
    items = getattr(obj, "sources", obj)
    items = [items] if isinstance(items, Source) else items
    if isinstance(items, list | tuple) and items and all(isinstance(s, Source) for s in items):
        return list(items)
    raise TypeError(
        f"explorer: expected an AffinityExplorer or Source(s), got {type(obj).__name__}"
    )


def _figure(rows, k, scale, shared_scale, title, ncols):
    """rows: (source, query) each -> a static Figure (not pyplot's) and its rows of Axes."""
    k, shape = check_int("k", k, minimum=0, maximum=1000), rows[0][0].geometry.frames_shape
    check_bool("shared_scale", shared_scale)
    fig = Figure()
    axes_rows, bars = frame_grid(
        fig, shape, len(rows), check_int("ncols", ncols or min(shape[0], 4), minimum=1)
    )
    for axes, bar, (source, query) in zip(axes_rows, bars, rows, strict=True):
        norm, used = Strip(fig, axes, source).update(
            source.weights(*query), query, k, scale, shared_scale
        )
        colorbar(fig, bar, norm, used, source.label)
        axes[0].set_ylabel(textwrap.fill(f"{source.name}, query {query}", 28), fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig, axes_rows


def figure3(explorer, queries, *, k=20, scale="auto", shared_scale=True, title=None, ncols=None):
    """The paper's Figure 3: a row of frames per query (t, y, x) of one source (a ``Source``
    or an ``AffinityExplorer``'s first). Returns ``(fig, rows)``, rows[r] the Axes of row r."""
    source = sources_of(explorer)[0]
    if isinstance(queries, str) or not isinstance(queries, list | tuple) or not queries:
        raise ValueError(f"queries: expected a list of (t, y, x), got {queries!r}")
    rows = [(source, source.geometry.check_query(q)) for q in queries]
    return _figure(
        rows, k, scale, shared_scale, title or f"{source.name}: top-{k} positions j", ncols
    )


def compare_sources(
    explorers, query, *, k=20, scale="auto", shared_scale=True, title=None, ncols=None
):
    """One query under several sources, a row each: ``query`` (t, y, x) is on the first
    source's grid and reaches the others as the display pixel at its centre."""
    items = explorers if isinstance(explorers, list | tuple) else [explorers]
    sources = [s for e in items for s in sources_of(e)]
    first = sources[0].geometry
    t, y, x = first.check_query(query)
    py, px = first.pixel_of_cell(y, x)
    shapes = {s.geometry.frames_shape for s in sources}
    if len(shapes) > 1:
        raise ValueError(f"explorers: expected frames of one shape in all, got {sorted(shapes)}")
    rows = [(s, (t, *s.geometry.cell_of_pixel(py, px))) for s in sources]
    title = title or f"one query, pixel (t, y, x) = ({t}, {py:.0f}, {px:.0f}), top-{k} weights"
    return _figure(rows, k, scale, shared_scale, title, ncols)


def affinity_strip(frames, weights, query, *, grid_shape=None, pool=(1, 1), **options):
    """``figure3`` of given ``weights`` (T, h', w') for ``query`` on the grid ``grid_shape``."""
    source = Source.create(
        as_frames(frames), lambda t, y, x: weights, grid_shape=grid_shape, pool=pool
    )
    source.geometry.check_weights(weights)
    fig, rows = figure3(source, [query], **options)
    return fig, rows[0]

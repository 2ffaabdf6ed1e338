"""Figure 3 of the paper (notebook 05): one query's weights over T frames, the query a star
(filled in its own frame), its top-k j circles of area ~ weight, arrows to them in their frame,
none below ``FLOOR`` times the largest; ``_Strip`` draws them for ``figure3`` and the explorer."""

import textwrap

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nlviz.attention import Source
from nlviz.mass import _mass_set, _outline
from nlviz.plot import FLOOR, NEAREST, SCALES, _color_scale, _text, weight_cmap
from nlviz.utils import check_bool, check_choice, check_int

__all__ = ["SCALES", "figure3"]
ARROW, STAR, OUTLINE, QUERY_FRAME = "#00e5ff", "#39ff14", "#ffe600", "#c00000"
HEAD = (4.0, 2.0)  # arrow head length and half-width, points (matplotlib's "-|>" at 10 pt)


def _top_k(weights: np.ndarray, k: int):
    """(t, y', x', weight) of the k largest weights, largest first; none tied at the minimum."""
    flat, k = weights.reshape(-1), min(k, weights.size)
    # candidates: all >= the k-th largest (ties too), ranked as a stable sort (a click: ~k, not N')
    cand = np.flatnonzero(flat >= np.partition(flat, flat.size - k)[flat.size - k]) if k else []
    idx = np.asarray(cand, int)[np.argsort(-flat[cand], kind="stable")][:k]
    idx = idx[flat[idx] > flat.min()]  # a constant map (e.g. all zero) ranks nothing
    return (*np.unravel_index(idx, weights.shape), flat[idx])


def _colours(weights: np.ndarray, norm, scale: str) -> np.ndarray:
    """The heatmaps' RGBA bytes (..., 4): looked up once per query, not at every redraw."""
    flat = weights.reshape(-1)
    if scale == "log":  # log(0) is undefined: zeros are made transparent by the caller
        flat = np.where(flat > 0, flat, norm.vmin)
    cmap = weight_cmap(scale == "signed", overlay=True)
    return cmap(norm(flat), bytes=True).reshape(*weights.shape, 4)


def _arrow(start, end, shaft: float, head: tuple[float, float]) -> np.ndarray:
    """Polygon (7, 2) of an arrow start -> end, ``shaft`` wide, ``head`` (length, half-width)."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    length = float(np.hypot(*(end - start))) or 1e-9
    along = (end - start) / length
    across = np.array([-along[1], along[0]])
    neck = end - along * min(head[0], length)
    a, b = across * shaft / 2, across * head[1]
    return np.array([start + a, neck + a, neck + b, end, neck - b, neck - a, start - a])


class _Strip:
    """The frames of one source (``axes``): heatmaps, the query, its top-k j, redrawn by ``update``.
    Attributes: ``heat`` (RGBA images), ``weights``, ``visible`` (drawn), ``shown``, ``arrows``
    ((t, start, end, weight), largest first), ``mask`` and ``inside`` (mass view), ``changing``."""

    def __init__(self, fig: Figure, axes, source: Source) -> None:
        self.fig, self.axes, self.source, self.geometry = fig, list(axes), source, source.geometry
        frames, (_, height, width) = source.frames, source.geometry.frames_shape
        lo, hi = float(frames.min()), max(float(frames.max()), float(frames.min()) + 1e-12)
        shown = frames if frames.ndim == 3 or (lo >= 0 and hi <= 1) else (frames - lo) / (hi - lo)
        grey = {"cmap": "gray", "vmin": lo, "vmax": hi} if frames.ndim == 3 else {}
        blank, extent = np.zeros((*self.geometry.j_shape[1:], 4), np.uint8), self.geometry.j_extent
        self.heat, self.stars, self.circles, self.outlines, self.fans = [], [], [], [], []
        self.arrows, self.weights, self.visible, self.mask, self.inside = [], None, None, None, None
        for t, ax in enumerate(self.axes):  # colour in [0, 1] as it is, else stretched to it
            ax.imshow(np.clip(shown[t], 0, 1) if frames.ndim == 4 else shown[t], **grey, **NEAREST)
            self.heat.append(ax.imshow(blank, extent=extent, zorder=1, **NEAREST))
            for spine in ax.spines.values():  # under the frame (half shows): never redrawn,
                spine.set(zorder=-1, lw=1.6)  # and a frame exports as one image
            self.outlines.append(ax.add_collection(LineCollection([], colors=OUTLINE, lw=1.6)))
            fan = PolyCollection([], ec="none", zorder=3, gid="arrows")
            self.fans.append(ax.add_collection(fan))
            self.circles.append(ax.scatter([], [], s=[], fc="none", ec=ARROW, lw=1.2, zorder=4))
            self.stars.append(ax.plot([], [], marker="*", ms=13, mew=0.8, ls="", zorder=6)[0])
            ax.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), xticks=[], yticks=[])
        moving = {*self.heat, *self.outlines, *self.fans, *self.circles, *self.stars}
        self.changing = [a for ax in self.axes for a in sorted(  # the order of Axes.draw
            (a for a in ax.get_children() if a in moving), key=lambda a: a.zorder)]  # fmt: skip
        box = {"fill": False, "ec": QUERY_FRAME, "lw": 2.5, "clip_on": False, "visible": False}
        self.box = fig.add_artist(Rectangle((0, 0), 1, 1, **box))  # the query's frame, by update

    def update(self, weights: np.ndarray, query, k: int, scale="auto", shared_scale=True,
               mass=None, shares=True):  # fmt: skip
        """Draw ``weights`` (T, h', w') of ``query`` (t, y, x), with ``mass`` only the fewest j
        holding it; titles: shares (``shares=False``: a box). Returns (its frame's norm, scale)."""
        tq, (qy, qx) = query[0], self.geometry.pixel_of_cell(*query[1:])
        norm, used, _ = _color_scale(weights, scale)
        self.weights, total = weights, np.abs(weights).sum() or 1.0
        self.mask, self.inside = _mass_set(weights, mass) if mass else (None, None)
        self.visible = (weights > 0) if used == "log" else np.ones(weights.shape, bool)
        self.visible &= True if self.mask is None else self.mask
        colours = _colours(weights, norm, used) if shared_scale else np.stack(
            [_colours(w, _color_scale(w, used)[0], used) for w in weights])  # fmt: skip
        colours[~self.visible] = 0  # transparent: a log scale's zeros, outside the mass view
        cell = np.array(self.geometry.pool[::-1]) * self.geometry.stride[::-1]  # (x, y) pixels
        for t, (ax, im, star) in enumerate(zip(self.axes, self.heat, self.stars, strict=True)):
            im.set_data(colours[t])
            own = t == tq
            star.set(data=([qx], [qy]), mfc=STAR if own else "none", mec="black" if own else STAR)
            if self.mask is None:
                share = f": {100 * np.abs(weights[t]).sum() / total:.0f}%" if shares else ""
                title = f"t={t}{share}"  # of all the weight
                self.outlines[t].set_visible(False)  # not drawn at all: a click is cheaper
            else:
                inside = self.inside[t]
                title = f"t={t}: " + ("no weight" if np.isnan(inside) else f"{inside:.0%} in mask")
                self.outlines[t].set_segments(_outline(self.mask[t]) * cell - 0.5)
                self.outlines[t].set_visible(bool(self.mask[t].any()))
            colour = QUERY_FRAME if t == tq and (shares or self.mask is not None) else "black"
            if (ax.get_title(), ax.title.get_color()) != (title, colour):
                ax.set_title(title, fontsize=9, color=colour)
        self.box.set(transform=self.axes[tq].transAxes, visible=not shares and self.mask is None)
        self._mark(weights, used, k, (qx, qy))
        return norm if shared_scale else _color_scale(weights[tq], used)[0], used

    @property
    def shown(self) -> list[np.ndarray]:
        """The weights of each frame as drawn: masked where the heatmap is transparent."""
        return [np.ma.masked_array(w, ~v) for w, v in zip(self.weights, self.visible, strict=True)]

    def _mark(self, weights, used, k, start) -> None:  # top-k j: circles, arrows from start
        tt, yj, xj, ww = _top_k(np.abs(weights) if used == "signed" else weights, k)
        keep = np.abs(ww) >= FLOOR * np.abs(ww).max(initial=0)  # marks only weights one can see
        tt, yj, xj, ww = tt[keep], yj[keep], xj[keep], ww[keep]
        ty, tx = self.geometry.pixel_of_j(yj, xj)
        size = np.abs(ww) / (np.abs(ww).max() if len(ww) else 1.0)
        (_, height, width), ax = self.geometry.frames_shape, self.axes[0]
        points = min(ax.bbox.width / width, ax.bbox.height / height) * 72 / self.fig.dpi
        head, shafts = (HEAD[0] / points, HEAD[1] / points), (0.6 + 1.2 * size) / points  # pixels
        self.arrows = [(int(t), start, (float(x), float(y)), float(w))
                       for t, x, y, w in zip(tt, tx, ty, ww, strict=True)]  # fmt: skip
        for t, (circles, fan) in enumerate(zip(self.circles, self.fans, strict=True)):
            here = tt == t
            circles.set_visible(here.any())
            fan.set_visible(here.any())
            circles.set_offsets(np.c_[tx[here], ty[here]].reshape(-1, 2))
            circles.set_sizes(300 * size[here])
            ends = zip(tx[here], ty[here], shafts[here], strict=True)
            fan.set_verts([_arrow(start, (x, y), shaft, head) for x, y, shaft in ends])
            fan.set_facecolors([(*to_rgb(ARROW), 0.5 + s / 2) for s in size[here]])


def _colorbar(fig: Figure, cax, norm, scale: str, label: str):  # opaque; label names the scale
    note = {"signed": " (signed)", "linear": ""}.get(scale, _color_scale(np.ones(1), "log")[2])
    bar = fig.colorbar(ScalarMappable(norm, weight_cmap(scale == "signed")), cax=cax)
    bar.set_label(textwrap.fill(label + note, 22), fontsize=9)
    return bar


def _frame_grid(fig: Figure, frames_shape, n_rows: int, ncols=None, header: float = 0.55):
    """Size ``fig``; per source row its frame Axes (``ncols`` to a line, default up to 4) and a
    colour-bar Axes, ``header`` inches above; a plain gridspec: redraws solve no layout."""
    t, height, width = frames_shape[:3]
    ncols = min(t, 4) if ncols is None else ncols
    lines, cell = -(-t // ncols), min(5.0 / ncols, 3.0)  # <= 6.5 in wide
    fig_height = 0.25 + header + n_rows * lines * (cell * height / width + 0.3)
    fig.set_size_inches(max(cell * ncols + 1.5, 6.5), fig_height)
    top, bottom = 1 - header / fig.get_size_inches()[1], 0.1 / fig.get_size_inches()[1]
    box = {"left": 0.12, "right": 0.86, "top": top, "bottom": bottom, "wspace": 0.06, "hspace": 0.3}
    gs = fig.add_gridspec(n_rows * lines, ncols + 1, width_ratios=[1] * ncols + [0.05], **box)
    rows = [[fig.add_subplot(gs[r * lines + f // ncols, f % ncols]) for f in range(t)]
            for r in range(n_rows)]  # fmt: skip
    return rows, [fig.add_subplot(gs[r * lines : (r + 1) * lines, ncols]) for r in range(n_rows)]


def _sources_of(obj, name: str) -> list[Source]:
    """The sources of an explorer, or a Source, or a list of them; else TypeError naming it."""
    items = getattr(obj, "sources", obj)
    items = [items] if isinstance(items, Source) else items
    if isinstance(items, list | tuple) and items and all(isinstance(s, Source) for s in items):
        return list(items)
    raise TypeError(f"{name}: expected an AffinityExplorer or Source(s), got {obj!r:.60}")


def figure3(explorer, queries, *, k=20, scale="auto", shared_scale=True, title=None, ncols=None):
    """Figure 3: a row per query (t, y, x) of a ``Source`` or an explorer's first, ``ncols`` frames
    a line (default up to 4). Returns ``(fig, rows)``, fig not pyplot's, rows[r] row r's Axes."""
    source = _sources_of(explorer, "explorer")[0]
    if isinstance(queries, str) or not isinstance(queries, list | tuple) or not queries:
        raise ValueError(f"queries: expected a list of (t, y, x), got {queries!r}")
    queries = [source.geometry.check_query(q) for q in queries]
    k, scale = check_int("k", k, minimum=0, maximum=1000), check_choice("scale", scale, SCALES)
    check_bool("shared_scale", shared_scale)
    ncols = None if ncols is None else check_int("ncols", ncols, minimum=1, maximum=100)
    _text(title=title)
    title = title or f"{source.name}: top-{k} positions j"
    fig = Figure()
    axes_rows, bars = _frame_grid(fig, source.geometry.frames_shape, len(queries), ncols)
    for axes, bar, query in zip(axes_rows, bars, queries, strict=True):
        strip = _Strip(fig, axes, source)
        norm, used = strip.update(source.weights(*query), query, k, scale, shared_scale)
        _colorbar(fig, bar, norm, used, source.label)
        axes[0].set_ylabel(textwrap.fill(f"{source.name}, query {query}", 22), fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig, axes_rows

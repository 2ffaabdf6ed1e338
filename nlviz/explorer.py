"""``AffinityExplorer``: click a pixel of any frame, see where it attends in every frame (notebook
05), a row of frames per ``nlviz.attention.Source``. Clicks and keys need ipympl; the sliders and
``select(t, y, x)`` take their path. Keys: arrows move the query, ``[ ]`` its frame, ``m`` mass."""

import base64
import io
from textwrap import fill

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.backend_bases import FigureCanvasBase

from nlviz.attention import Source
from nlviz.blit import _Blitter
from nlviz.controls import _Controls
from nlviz.figure3 import SCALES, _colorbar, _frame_grid, _sources_of, _Strip
from nlviz.mass import _describe
from nlviz.plot import _color_scale, save_figure
from nlviz.utils import check_bool, check_choice, check_int, check_real

__all__ = ["AffinityExplorer", "STATUS_CLASS", "ERROR_CLASS"]
STATUS_CLASS, ERROR_CLASS = "nlviz-explorer-status", "nlviz-explorer-error"
SOURCE_KEYS = ("name", "label", "grid_shape", "pool", "patch_size", "patch_distance", "h", "sigma",
               "per_frame", "block")  # fmt: skip
MOVES = {"up": (0, -1, 0), "down": (0, 1, 0), "left": (0, 0, -1), "right": (0, 0, 1),
         "[": (-1, 0, 0), "]": (1, 0, 0)}  # fmt: skip


def _mass(name: str, value) -> float | None:
    """The mass view's share in (0, 1], or None (given None or 0) for the weights themselves."""
    return None if value is None else (check_real(name, value, minimum=0, maximum=1) or None)


def _option(name: str, check):  # a property whose new value is checked, then drawn

    def set_value(self, value):
        setattr(self, f"_{name}", check(name, value))
        self._draw(self.queries, self.all_weights)

    return property(lambda self: getattr(self, f"_{name}"), set_value)


class AffinityExplorer:
    """Frames in a row per source; a click at (t, y, x) draws that query's weights everywhere.

    ``frames`` (T, H, W[, 3]) or an image; ``affinity_fn(t, y, x) -> (T, h', w')``: the weights of
    query (t, y, x) of the query grid (``grid_shape``, default: pixels) over j's grid (by ``pool``);
    ``k`` top j are marked (Figure 3: 20); ``scale``: "auto" (signed if a weight is < 0, else log),
    "log", "linear" or "signed"; ``shared_scale``: one colour range for all frames, or per frame;
    ``query``: the first (default: the middle frame's centre); ``mass``: the mass view's share.
    Attributes: ``fig``, ``sources``, ``strips``; ``frame_axes``, ``query``, ``weights`` (row 0);
    ``queries``, ``all_weights`` (all rows); ``mass``, ``status``, ``widget``, ``controls``."""

    k = _option("k", lambda n, v: check_int(n, v, minimum=0, maximum=1000))
    scale = _option("scale", lambda n, v: check_choice(n, v, SCALES))
    shared_scale = _option("shared_scale", check_bool)
    mass = _option("mass", _mass)  # the mass view's share; None (or 0): the weights

    def __init__(self, frames, affinity_fn, *, grid_shape=None, pool=(1, 1), name="affinity",
                 label="weight f(x_i, x_j) / C(x)", **options) -> None:  # fmt: skip
        kw = {"grid_shape": grid_shape, "pool": pool, "name": name, "label": label}
        self._setup([Source.create(frames, affinity_fn, **kw)], **options)

    @classmethod
    def from_sources(cls, sources, **options) -> "AffinityExplorer":
        """An explorer with one row per ``Source`` (on frames of one shape)."""
        explorer = cls.__new__(cls)
        explorer._setup(_sources_of(sources, "sources"), **options)
        return explorer

    @classmethod
    def _from(cls, make, *args, **kwargs) -> "AffinityExplorer":
        source = make(*args, **{k: v for k, v in kwargs.items() if k in SOURCE_KEYS})
        options = {k: v for k, v in kwargs.items() if k not in SOURCE_KEYS}
        return cls.from_sources([source], **options)

    @classmethod
    def from_block(cls, block, features, frames, **kwargs) -> "AffinityExplorer":
        """A ``NonLocalBlock`` on its input features (``Source.from_block``)."""
        return cls._from(Source.from_block, block, features, frames, **kwargs)

    @classmethod
    def from_nlm(cls, video, **kwargs) -> "AffinityExplorer":
        """Non-local means weights of each pixel (``Source.from_nlm``)."""
        return cls._from(Source.from_nlm, video, **kwargs)

    @classmethod
    def from_checkpoint(cls, path, batch, index=0, *, block=0, **kwargs) -> "AffinityExplorer":
        """A trained block (``Source.from_checkpoint``); sets ``model``, ``checkpoint``, logits."""
        explorer = cls._from(Source.from_checkpoint, path, batch, index, block=block, **kwargs)
        s = explorer.sources[0]
        explorer.model, explorer.checkpoint, explorer.logits = s.model, s.checkpoint, s.output
        return explorer

    @classmethod
    def compare(cls, *explorers, **options) -> "AffinityExplorer":
        """The rows of all ``explorers`` in one: a click queries each at the same display pixel."""
        sources = [s for e in explorers or [explorers] for s in _sources_of(e, "explorers")]
        shapes = {s.geometry.frames_shape for s in sources}
        if len(shapes) > 1:
            raise ValueError(f"explorers: expected frames of one shape, got {sorted(shapes)}")
        return cls.from_sources(sources, **{"k": getattr(explorers[0], "k", 20), **options})

    def _setup(self, sources, *, k=20, scale="auto", shared_scale=True, query=None, ncols=None,
               mass=None):  # fmt: skip
        self.sources, self.queries, self.all_weights = sources, None, None
        self._k = check_int("k", k, minimum=0, maximum=1000)
        self._scale = check_choice("scale", scale, SCALES)
        self._shared_scale = check_bool("shared_scale", shared_scale)
        self._mass, self.last_mass = _mass("mass", mass), 0.6
        geo, (t_count, h, w) = sources[0].geometry, self._grid
        query = (t_count // 2, h // 2, w // 2) if query is None else geo.check_query(query)
        queries = self._queries(*query)
        weights = [s._weights(q) for s, q in zip(sources, queries, strict=True)]  # before drawing
        ncols = None if ncols is None else check_int("ncols", ncols, minimum=1, maximum=100)
        with plt.ioff():
            self.fig = plt.figure()
        rows, self._bars = _frame_grid(self.fig, geo.frames_shape, len(sources), ncols, header=0.9)
        height = self.fig.get_size_inches()[1]
        self.strips = [_Strip(self.fig, axes, s) for axes, s in zip(rows, sources, strict=True)]
        title = sources[0].title if len(sources) == 1 else "one pixel queried in every row"
        self.fig.suptitle(fill(title, 80), fontsize=10, y=1 - 0.06 / height)
        if len(sources) > 1:
            for strip in self.strips:  # name each row, in at most 4 lines
                strip.axes[0].set_ylabel(fill(strip.source.title, 24, max_lines=4), fontsize=9)
        # the title's changing line: the query, its largest weight, the mass view
        self._where = self.fig.text(0.5, 1 - 0.4 / height, "", ha="center", va="top", fontsize=9)
        self.frame_axes, self.controls = rows[0], None
        self.colorbars, self._bar_keys = [None] * len(sources), [None] * len(sources)
        self._blitter, self._shown = _Blitter(self.fig, []), False
        self.status = widgets.Label().add_class(STATUS_CLASS)
        canvas = self.fig.canvas
        canvas.mpl_connect("button_press_event", self._on_press)
        canvas.mpl_connect("key_press_event", self._on_key)
        canvas.mpl_connect("draw_event", lambda _: setattr(self, "_shown", True))
        manager = getattr(canvas, "manager", None)  # matplotlib's keys (left = back, l = log y)
        if getattr(manager, "key_press_handler_id", None) is not None:
            canvas.mpl_disconnect(manager.key_press_handler_id)
        self._draw(queries, weights)

    # the first row's query (t, y, x), weights (T, h', w'), arrows (largest first), bar, ...
    query = property(lambda self: self.queries[0])
    weights = property(lambda self: self.all_weights[0])
    arrows = property(lambda self: list(self.strips[0].arrows))
    geometry = property(lambda self: self.sources[0].geometry)
    _grid = property(lambda self: (self.geometry.frames_shape[0], *self.geometry.grid_shape))
    heatmaps = property(lambda self: list(self.strips[0].heat))
    colorbar = property(lambda self: self.colorbars[0])

    def affinity(self, t: int, y: int, x: int):
        """The first source's weights of query (t, y, x), checked; draws nothing."""
        return self.sources[0].weights(t, y, x)

    def _queries(self, t, y, x) -> list[tuple[int, int, int]]:
        """Checked query (t, y, x) of the first grid, and the same display pixel on the others."""
        py, px = self.sources[0].geometry.pixel_of_cell(y, x)
        return [(t, y, x)] + [(t, *s.geometry.cell_of_pixel(py, px)) for s in self.sources[1:]]

    def select(self, t: int, y: int, x: int, *, mass=None):
        """Draw query (t, y, x) of the first grid, return its weights; ``mass``: a share, 0: off."""
        queries = self._queries(*self.geometry._cell(t, y, x))
        self._mass = self._mass if mass is None else _mass("mass", mass)
        return self._pick(queries)

    def select_pixel(self, t: int, py: float, px: float):
        """Like ``select`` for the display pixel (py, px) of frame t, in every row."""
        _, height, width = self.geometry.frames_shape
        py = check_real("py", py, minimum=-0.5, maximum=height - 0.5)
        px = check_real("px", px, minimum=-0.5, maximum=width - 0.5)
        return self._at_pixel(self.geometry._cell(t, 0, 0)[0], py, px)

    def _at_pixel(self, t, py, px) -> np.ndarray:  # a click: t is the frame clicked
        return self._pick([(t, *s.geometry.cell_of_pixel(py, px)) for s in self.sources])

    def _pick(self, queries) -> np.ndarray:
        """Draw checked queries (t, y, x), one per row: the path of clicks, keys and code."""
        self._draw(queries, [s._weights(q) for s, q in zip(self.sources, queries, strict=True)])
        return self.weights

    def click_fraction(self, t: int, y: int, x: int) -> tuple[float, float]:
        """Where query cell (t, y, x) is on the canvas, as fractions (from left, from top)."""
        t, y, x = self.geometry._cell(t, y, x)
        self.fig.draw_without_rendering()  # applies the aspect; not canvas.draw (ipympl 472)
        point = self.frame_axes[t].transData.transform(self.geometry.pixel_of_cell(y, x)[::-1])
        fx, fy = self.fig.transFigure.inverted().transform(point)
        return float(fx), float(1.0 - fy)

    def png(self) -> bytes:
        """The current picture as PNG bytes, at the canvas's resolution."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.fig.dpi)
        return buf.getvalue()

    def save(self, path, *, dpi: int = 200, overwrite: bool = False):
        """Write the drawing as it is to ``path``: ``nlviz.plot.save_figure`` (.png, .svg, .pdf)."""
        return save_figure(self.fig, path, overwrite=overwrite, dpi=dpi)

    def close(self) -> None:
        plt.close(self.fig)

    @property
    def widget(self):
        """The status label, the canvas (ipympl) or a picture of it, and the controls."""
        if self.controls is None:
            self.controls = _Controls(self)
            self._show()
        return self.controls.widget

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        bundle["text/plain"] = f"AffinityExplorer: {self.status.value}"
        bundle["image/png"] = base64.b64encode(self.png()).decode()
        return bundle

    def _on_press(self, event) -> None:  # a click: the query cell of every row at that pixel
        axes = [ax for s in self.strips for ax in s.axes]
        if event.button != 1 or event.inaxes not in axes or event.xdata is None:
            return
        if getattr(getattr(self.fig.canvas, "toolbar", None), "mode", ""):
            return  # pan or zoom is on: the click is theirs
        t = axes.index(event.inaxes) % len(self.frame_axes)
        self._safe(self._at_pixel, t, event.ydata, event.xdata)

    def _on_key(self, event) -> None:  # the keys of the module's docstring
        if event.key == "m":  # the share in use was checked when it was set
            self._mass = None if self._mass else self.last_mass
            self._safe(self._pick, self.queries)
        elif event.key in MOVES:
            tops, step = [n - 1 for n in self._grid], MOVES[event.key]
            moved = [min(max(q + d, 0), n) for q, d, n in zip(self.query, step, tops, strict=True)]
            self._safe(lambda: self._pick(self._queries(*moved)))

    def _safe(self, fn, *args) -> None:  # for a click or a slider: errors go to status
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - the event loop must not see it
            self.status.value = f"error: {err} (the drawing shows the last good query)"
            self.status.add_class(ERROR_CLASS)
            self._sync()

    def _sync(self) -> None:
        if self.controls is not None:  # the controls back on the drawn state
            self.controls.sync()

    def _draw(self, queries, weights) -> None:  # new queries or options; then _show
        options = (self._k, self._scale, self._shared_scale, self._mass, False)
        for r, (strip, q, w) in enumerate(zip(self.strips, queries, weights, strict=True)):
            _, used = strip.update(w, q, *options)
            self._colour_bar(r, used, strip.source.label)
        self.queries, self.all_weights = queries, weights
        self.last_mass = self._mass or self.last_mass  # what the key m turns back on
        strip = self.strips[0]
        mass = _describe(strip.mask, strip.inside, self._mass, (weights[0] < 0).any())
        py, px = self.geometry.pixel_of_cell(*queries[0][1:])
        where = f"query (t, y, x) = {queries[0]}"
        largest = " | ".join(f"{np.abs(w).max():.3g}" for w in weights)
        self._where.set_text(f"{where}: largest weight {largest}" + (f"\n{mass}" if mass else ""))
        names = " | ".join(s.name for s in self.sources)
        frames = " ".join(f"{v:.0f}" for v in 100 * np.abs(weights[0]).sum((1, 2))
                          / (np.abs(weights[0]).sum() or 1))  # fmt: skip
        self.status.value = (f"{names}: {where}, pixel (y, x) = ({py:.0f}, {px:.0f}); top-{self._k}"
                             f" j, max weight {weights[0].max():.3g}; weight per frame {frames} %"
                             + (f"; {mass}" if mass else ""))  # fmt: skip
        self.status.remove_class(ERROR_CLASS)
        self._sync()
        self._show()

    def _colour_bar(self, r: int, used: str, label: str) -> None:  # redrawn for a new scale only
        shared = self._shared_scale
        if self._bar_keys[r] != (used, shared):
            self._bars[r].clear()
            norm = _color_scale(np.ones(1), used)[0]
            self.colorbars[r] = _colorbar(self.fig, self._bars[r], norm, used, label)
            kind = {"log": ", log", "signed": ", signed"}.get(used, "")
            each = "its max" if shared else "each frame's max"
            self.colorbars[r].set_label(fill(f"{label} ÷ {each}{kind}", 22), fontsize=9)
            self._bar_keys[r] = (used, shared)
            self._blitter.invalidate()

    def redraw(self) -> None:
        """Put the last drawing on the canvas as a click does, drawing only what changed (blit)."""
        changing = [a for strip in self.strips for a in strip.changing]
        if self._mass:  # the frames' titles give the share in the mask
            changing += [ax.title for strip in self.strips for ax in strip.axes]
        changing += [strip.box for strip in self.strips] + [self._where]
        if changing != self._blitter.changing:  # a new view (the mass view's titles change)
            self._blitter = _Blitter(self.fig, changing)
        if hasattr(self.fig.canvas, "copy_from_bbox"):  # Agg and its kin (ipympl, Qt, Tk)
            self._blitter.redraw()
        else:
            self.fig.canvas.draw_idle()

    def _show(self) -> None:
        """Show a change: redraw a live canvas, or a new picture (under Agg the caller draws)."""
        if type(self.fig.canvas).draw_idle is not FigureCanvasBase.draw_idle:
            if self._shown and not getattr(self.fig.canvas, "syncing_data_url", False):
                self.redraw()
            else:  # not drawn yet, or ipympl's page not there yet: it draws it all once there
                self.fig.canvas.draw_idle()
        if self.controls is not None and self.controls.picture is not None:
            with self.controls.picture:
                self.controls.picture.clear_output(wait=True)
                display(self.fig)
